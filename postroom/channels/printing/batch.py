"""Building a print batch: banner sheet, pieces in postcode order padded for duplex, an inserter
code on every sheet, one merged PDF and its manifest (CSV and JSON)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pikepdf
import typst

from postroom.channels.printing.fold_marks import fold_marks
from postroom.channels.printing.inserter import InserterMark, stamp
from postroom.channels.printing.print_file import PrintFileWriter
from postroom.core.files import write_atomically
from postroom.core.print_batches import QueuedPiece


class UnusablePiece(Exception):
    """A piece's print variant cannot go into the batch (missing, altered or not a readable PDF).

    The message holds the piece number and the kind of fault, never document content.
    """

    def __init__(self, number: int, piece: QueuedPiece, reason: str) -> None:
        super().__init__(f"piece {number} of the batch is unusable: {reason}")
        self.number, self.piece, self.reason = number, piece, reason


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One piece of the batch as the letter shop sees it."""

    piece: int
    document_id: str
    first_page: int
    pages: int
    sheets: int
    postcode: str
    country: str
    envelope: str


@dataclass(frozen=True, slots=True)
class BatchFiles:
    """The files of a built batch (in the staging folder) and their figures."""

    pdf: Path
    manifest_csv: Path
    manifest_json: Path
    sha256: str
    sheets: int
    pages: int
    rows: list[ManifestRow]


@dataclass(frozen=True, slots=True)
class BatchLayout:
    """How pieces go on paper."""

    duplex: bool = True
    dl_max_sheets: int = 5
    """More sheets than this do not fold into a DL envelope: they go flat in C4."""


def file_stem(batch_id: uuid.UUID, created: datetime) -> str:
    """``postroom-<yyyymmdd-hhmm>-<batch 8>``: sortable and unique."""
    return f"postroom-{created:%Y%m%d-%H%M}-{batch_id.hex[:8]}"


def sheets_of(pages: int, duplex: bool) -> int:
    """Sheets of paper a piece of ``pages`` pages takes."""
    return (pages + 1) // 2 if duplex else pages


def build_batch(
    batch_id: uuid.UUID,
    group: str,
    pieces: Sequence[tuple[int, QueuedPiece]],
    read_pdf: Callable[[QueuedPiece], bytes],
    staging: Path,
    *,
    created: datetime,
    templates_dir: Path,
    layout: BatchLayout = BatchLayout(),
) -> BatchFiles:
    """Write the batch's print file and manifests into ``staging``; pieces are read one at a time.

    ``read_pdf`` must return the PDF whose SHA-256 the piece recorded (or raise ``OSError`` or
    ``LookupError`` when it has none). A piece that cannot be read, does not match or does not
    open raises :class:`UnusablePiece` and leaves nothing behind.
    """
    stem = file_stem(batch_id, created)
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    pdf_path = staging / f"{stem}.pdf"
    partial = pdf_path.with_suffix(".pdf.part")
    rows: list[ManifestRow] = []
    envelopes: Counter[str] = Counter()
    try:
        code = batch_id.hex[:8]
        with partial.open("wb") as out:
            writer = PrintFileWriter(out, title=f"postroom print batch {batch_id}")
            banner = _banner(batch_id, group, pieces, created, stem, templates_dir, layout)
            _add(writer, banner, InserterMark(code, 0, 1, 1), layout.duplex, letter=False)
            for number, piece in pieces:
                try:
                    data = read_pdf(piece)
                except (OSError, LookupError) as error:
                    raise UnusablePiece(number, piece, "its print variant is not held") from error
                if hashlib.sha256(data).hexdigest() != piece.sha256:
                    raise UnusablePiece(
                        number, piece, "its print variant does not match the recorded SHA-256"
                    )
                first_page = writer.page_count + 1
                sheets = sheets_of(piece.pages, layout.duplex)
                try:
                    _add(writer, data, InserterMark(code, number, 1, sheets), layout.duplex)
                except pikepdf.PdfError as error:
                    raise UnusablePiece(number, piece, "its print variant is not a readable PDF") from error
                envelope = "DL" if sheets <= layout.dl_max_sheets else "C4"
                envelopes[envelope] += 1
                rows.append(
                    ManifestRow(
                        number,
                        str(piece.document_id),
                        first_page,
                        piece.pages,
                        sheets,
                        piece.postcode,
                        piece.country,
                        envelope,
                    )
                )
            writer.close()
            pages = writer.page_count
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(pdf_path)
    with pdf_path.open("rb") as written:
        sha256 = hashlib.file_digest(written, "sha256").hexdigest()
    sheets = sum(row.sheets for row in rows)
    csv_path, json_path = staging / f"{stem}.manifest.csv", staging / f"{stem}.manifest.json"
    write_atomically(csv_path, _csv(rows), mode=0o600)
    manifest = {
        "batch": str(batch_id),
        "group": group,
        "created": created.isoformat(),
        "file": pdf_path.name,
        "sha256": sha256,
        "pieces": len(rows),
        "sheets": sheets,
        "pages": pages,
        "duplex": layout.duplex,
        "envelopes": dict(envelopes),
        "rows": [asdict(row) for row in rows],
    }
    write_atomically(json_path, json.dumps(manifest, indent=1).encode(), mode=0o600)
    return BatchFiles(pdf_path, csv_path, json_path, sha256, sheets, pages, rows)


def _add(
    writer: PrintFileWriter, data: bytes, first: InserterMark, duplex: bool, *, letter: bool = True
) -> None:
    """One set: its pages, a code on the front of each sheet, a blank back to even it out; a
    ``letter`` (not the banner) has the fold and hole marks on its first page."""
    with pikepdf.Pdf.open(io.BytesIO(data)) as pdf:
        count = len(pdf.pages)
        per_sheet = 2 if duplex else 1
        sheets = sheets_of(count, duplex)
        stamps = [
            stamp(InserterMark(first.batch, first.piece, index // per_sheet + 1, sheets))
            if index % per_sheet == 0
            else None
            for index in range(count)
        ]
        if letter and stamps:
            box = pdf.pages[0].mediabox
            stamps[0] = (stamps[0] or b"") + fold_marks(float(box[3]) - float(box[1]))
        writer.add_pages(pdf, stamps)
    if duplex and count % 2:
        writer.add_blank_page()


def _banner(
    batch_id: uuid.UUID,
    group: str,
    pieces: Sequence[tuple[int, QueuedPiece]],
    created: datetime,
    stem: str,
    templates_dir: Path,
    layout: BatchLayout,
) -> bytes:
    sheets = [sheets_of(piece.pages, layout.duplex) for _, piece in pieces]
    envelopes = Counter("DL" if count <= layout.dl_max_sheets else "C4" for count in sheets)
    data = {
        "batch": str(batch_id),
        "group": group,
        "created": f"{created:%Y-%m-%d %H:%M}",
        "pieces": str(len(pieces)),
        "sheets": str(sum(sheets)),
        "pages": str(sum(piece.pages for _, piece in pieces)),
        "duplex": "true" if layout.duplex else "false",
        "envelopes": ", ".join(f"{count} × {size}" for size, count in sorted(envelopes.items())) or "none",
        "file": f"{stem}.pdf",
        "ack": f"{stem}.ack.json",
    }
    pdf = typst.compile(
        str(templates_dir / "_print" / "banner.typ"),
        root=str(templates_dir),
        font_paths=[str(templates_dir / "fonts")],
        ignore_system_fonts=True,
        sys_inputs={"batch": json.dumps(data)},
    )
    assert isinstance(pdf, bytes)
    return pdf


def _csv(rows: Sequence[ManifestRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["piece", "document_id", "first_page", "pages", "sheets", "postcode", "country", "envelope"]
    )
    for row in rows:
        writer.writerow(
            [
                row.piece,
                row.document_id,
                row.first_page,
                row.pages,
                row.sheets,
                row.postcode,
                row.country,
                row.envelope,
            ]
        )
    return buffer.getvalue().encode()
