"""Rendering time per document with warm engines, one thread: the shipped templates and each engine."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from typing import Any

from postroom.documents.catalogue import document_type
from postroom.renderer.docx import DocxEngine
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer
from postroom.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
TIMESTAMP = datetime(2026, 11, 20, 12, tzinfo=UTC)
_NUMBERS = itertools.count()
"""Document numbers never repeat within a bench process, so no case measures Typst's memo of another."""


def timings(seconds: list[float]) -> dict[str, float]:
    """Throughput and latency figures of a list of durations."""
    ordered = sorted(seconds)
    return {
        "docs_per_second": len(seconds) / sum(seconds),
        "mean_ms": statistics.fmean(seconds) * 1000,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000,
    }


def bench_render(
    renderer: Renderer, example: str, variant: Variant | list[Variant], count: int, engine: str = "typst"
) -> dict[str, Any]:
    """Validate, build the context and render ``example`` ``count`` times after one warm-up.

    Each round carries a new document number: Typst memoises unchanged inputs, and a
    bench that renders identical data measures that cache, not rendering. For docx the
    warm-up also starts the LibreOffice process the rounds reuse.
    """
    variants = variant if isinstance(variant, list) else [variant]
    body = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    doc_type = document_type(body["type"])
    renderer.render(doc_type, doc_type.parse(body), variants, timestamp=TIMESTAMP, engine=engine)
    seconds, pages = [], 0
    for _ in range(count):
        body["data"]["number"] = f"RE-BENCH-{next(_NUMBERS):06d}"
        started = time.perf_counter()
        request = doc_type.parse(body)
        rendering = renderer.render(doc_type, request, variants, timestamp=TIMESTAMP, engine=engine)
        seconds.append(time.perf_counter() - started)
        pages = rendering.pdfs[variants[0]].pages
    return {
        "name": f"render {example} ({engine}, {' + '.join(variants)})",
        "count": count,
        "pages": pages,
        **timings(seconds),
    }


def _render_in_process(count: int, offset: int) -> float:
    """Warm up, then render ``count`` reference invoices (archive and print) in this process; the
    moment it finished (``time.time``, comparable across processes)."""
    renderer = Renderer.for_folder(PROJECT_ROOT / "templates")
    body = json.loads((EXAMPLES / "reference_invoice.json").read_text(encoding="utf-8"))
    doc_type = document_type(body["type"])
    renderer.render(doc_type, doc_type.parse(body), ["archive", "print"], timestamp=TIMESTAMP)
    _ready.wait()  # every process warmed up: the clock starts
    for index in range(count):
        body["data"]["number"] = f"RE-PAR-{offset + index:07d}"
        renderer.render(doc_type, doc_type.parse(body), ["archive", "print"], timestamp=TIMESTAMP)
    return time.time()


_ready: Barrier


def _hold(barrier: Barrier) -> None:
    global _ready
    _ready = barrier


def parallel(count: int, processes: int) -> dict[str, Any]:
    """Pure rendering in ``processes`` processes at once, ``count`` reference invoices (archive and
    print variants) in all: what a bulk run's workers could do with no queue, database or channel.
    This is the bulk bench's yardstick."""
    # Fresh interpreters: a process forked after Typst ran here can inherit its locks held.
    each, context = count // processes, multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_hold, initargs=(ready,)) as pool:
        futures = [pool.submit(_render_in_process, each, n * each) for n in range(processes)]
        ready.wait()
        started = time.time()
        finished = max(future.result() for future in futures)
    return {
        "name": f"render reference_invoice (typst, archive + print), {processes} processes at once",
        "count": each * processes,
        "docs_per_second": each * processes / (finished - started),
        "total_seconds": finished - started,
    }


def run(count: int, engine_count: int) -> list[dict[str, Any]]:
    """The shipped Typst templates, then the reference invoice through every engine."""
    renderer = Renderer.for_folder(PROJECT_ROOT / "templates")
    try:
        rows = [
            bench_render(renderer, "invoice", "email", count),
            bench_render(renderer, "reference_invoice", "email", count),
            bench_render(renderer, "reference_invoice", "archive", count),
            # What a bulk run to print and archive renders per document.
            bench_render(renderer, "reference_invoice", ["archive", "print"], count),
            bench_render(renderer, "dunning_letter", "print", count),
        ]
        rows += [
            bench_render(renderer, "reference_invoice", "email", engine_count, e) for e in ("html", "docx")
        ]
        return rows
    finally:
        docx = renderer.engines.get("docx")
        if isinstance(docx, DocxEngine):
            docx.close()
