"""Print-batch build: the merged print file of 1,000 and 10,000 pieces, each size in a fresh process.

The print file is written page by page, so peak memory should stay flat as the batch
grows; each size runs in its own spawned process so that its peak RSS is its own. The
pieces are the reference invoice's print variant (rendered once, in this process) cut
to one, two and three pages, with seeded random postcodes, numbered in postcode order
as a cut-off numbers them. The batch is built into a temporary folder that is deleted.

Peak RSS is the child's ``VmHWM`` from ``/proc/self/status``: on Linux, ``ru_maxrss``
of a freshly executed process carries the high-water mark of the process it was forked
from (``exec`` keeps it), so in a child of ``python -m bench`` it would report the
parent's rendering engines rather than the batch. ``ru_maxrss`` is the fallback where
there is no ``/proc``.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import random
import re
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf

from postroom.channels.printing.batch import build_batch
from postroom.core.print_batches import QueuedPiece, sort_key
from postroom.settings import PROJECT_ROOT

DEFAULT_SIZES = (1_000, 10_000)
CREATED = datetime(2026, 11, 23, 16, tzinfo=UTC)
SEED = 7
MIB = 1024 * 1024


def piece_pdfs() -> dict[int, bytes]:
    """The reference invoice's print variant, rendered once, as pieces of 1, 2 and 3 pages.

    The rendering is cut to its first page, or extended by its first page again, so the
    three variants cost one render; the key is each PDF's actual page count.
    """
    # Imported here: the spawned children need only the batch builder, not the renderer.
    from bench.render import EXAMPLES, TIMESTAMP
    from postroom.documents.catalogue import document_type
    from postroom.renderer.service import Renderer

    body = json.loads((EXAMPLES / "reference_invoice.json").read_text(encoding="utf-8"))
    doc_type = document_type(body["type"])
    renderer = Renderer.for_folder(PROJECT_ROOT / "templates")
    rendering = renderer.render(doc_type, doc_type.parse(body), ["print"], timestamp=TIMESTAMP)
    rendered = rendering.pdfs["print"].data
    variants = [rendered]
    with pikepdf.Pdf.open(io.BytesIO(rendered)) as pdf:
        del pdf.pages[1:]
        variants.append(_saved(pdf))
    with pikepdf.Pdf.open(io.BytesIO(rendered)) as pdf, pikepdf.Pdf.open(io.BytesIO(rendered)) as again:
        pdf.pages.append(again.pages[0])
        variants.append(_saved(pdf))
    pdfs: dict[int, bytes] = {}
    for data in variants:
        with pikepdf.Pdf.open(io.BytesIO(data)) as pdf:
            pdfs.setdefault(len(pdf.pages), data)
    return pdfs


def queued_pieces(count: int, pdfs: dict[int, bytes], seed: int = SEED) -> list[tuple[int, QueuedPiece]]:
    """``count`` pieces with seeded random lengths and postcodes (about 5 % to Austria),
    numbered in print order as a cut-off numbers them."""
    rng = random.Random(seed)
    digests = {pages: hashlib.sha256(data).hexdigest() for pages, data in pdfs.items()}
    lengths = sorted(pdfs)
    pieces: list[QueuedPiece] = []
    for _ in range(count):
        pages = rng.choice(lengths)
        if rng.random() < 0.95:
            country, postcode = "DE", f"{rng.randrange(1067, 99999):05d}"
        else:
            country, postcode = "AT", f"{rng.randrange(1010, 9999)}"
        delivery_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        document_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        pieces.append(QueuedPiece(delivery_id, document_id, country, postcode, pages, digests[pages]))
    pieces.sort(key=lambda piece: sort_key(piece.country, piece.postcode))
    return list(enumerate(pieces, 1))


def _saved(pdf: pikepdf.Pdf) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, deterministic_id=True)
    return buffer.getvalue()


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB (``VmHWM``; ``ru_maxrss`` without ``/proc``)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        status = ""
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    if found:
        return int(found.group(1))
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss  # bytes on macOS, KiB elsewhere


def build_once(count: int, pdfs: dict[int, bytes], staging: str) -> dict[str, Any]:
    """Build one batch of ``count`` pieces into ``staging`` and measure it (runs in the child)."""
    pieces = queued_pieces(count, pdfs)
    start_rss = peak_rss_kib()
    started = time.perf_counter()
    files = build_batch(
        uuid.UUID(int=SEED, version=4),
        "bench",
        pieces,
        lambda piece: pdfs[piece.pages],
        Path(staging),
        created=CREATED,
        templates_dir=PROJECT_ROOT / "templates",
    )
    seconds = time.perf_counter() - started
    return {
        "name": "print batch build",
        "count": count,
        "docs_per_second": count / seconds,
        "total_seconds": seconds,
        "pages": files.pages,
        "sheets": files.sheets,
        "peak_rss_mb": peak_rss_kib() / 1024,
        "start_rss_mb": start_rss / 1024,
        "file_mb": files.pdf.stat().st_size / MIB,
    }


def run(sizes: Sequence[int] = DEFAULT_SIZES) -> list[dict[str, Any]]:
    """One print batch per size, each built in a fresh spawned process; one row per size.

    ``docs_per_second`` and ``total_seconds`` time :func:`build_batch` alone (not the
    one-time render nor the process start); ``peak_rss_mb`` is the child's peak RSS and
    ``file_mb`` the size of the print file, both in MiB.
    """
    pdfs = piece_pdfs()
    context = multiprocessing.get_context("spawn")
    rows: list[dict[str, Any]] = []
    for count in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="postroom-bench-print-") as staging,
            ProcessPoolExecutor(max_workers=1, mp_context=context) as pool,
        ):
            rows.append(pool.submit(build_once, count, pdfs, staging).result())
    return rows


if __name__ == "__main__":
    # python -m bench.print_batch [SIZE ...]: just this case, rows as JSON.
    sizes = [int(argument) for argument in sys.argv[1:]] or list(DEFAULT_SIZES)
    print(json.dumps(run(sizes), indent=1))
