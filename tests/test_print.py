"""The print channel: preflight, 1,000-piece print batches, inserter codes, hand-off, acknowledgement."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pdfplumber
import pdfplumber.page
import pikepdf
import pypdfium2 as pdfium
import pytest
from pylibdmtx import pylibdmtx
from sqlalchemy import delete, func, select

from postroom.channels.preflight import PreflightFailed, preflight
from postroom.channels.printing.batch import build_batch
from postroom.channels.printing.channel import PrintChannel
from postroom.channels.printing.fold_marks import fold_marks
from postroom.channels.printing.inserter import MM, InserterMark, parse_mark, stamp
from postroom.channels.printing.letter_shop import HotFolder
from postroom.core.db import database
from postroom.core.models import Delivery, Document, PrintBatch, PrintPiece
from postroom.core.print_batches import (
    AcknowledgementOutcome,
    QueuedPiece,
    acknowledge,
    batch_pieces,
    cut_batch,
    queue_piece,
    record_handed_off,
    sort_key,
)
from postroom.core.states import DeliveryStatus, DocumentStatus
from postroom.documents.catalogue import document_type
from postroom.settings import PROJECT_ROOT
from tests.conftest import example, example_handoff
from tests.pdf_checks import render_example

CREATED = datetime(2026, 11, 23, 16, tzinfo=UTC)
A4_HEIGHT = 297 * MM


def pieces_of_1_2_and_3_pages() -> dict[int, bytes]:
    one = render_example(example("invoice"), "print")
    two = render_example(example("reference_invoice"), "print")
    with pikepdf.Pdf.open(io.BytesIO(one)) as first, pikepdf.Pdf.open(io.BytesIO(two)) as second:
        first.pages.extend(second.pages)
        buffer = io.BytesIO()
        first.save(buffer, deterministic_id=True)
    return {1: one, 2: two, 3: buffer.getvalue()}


def margin_marks(page: pdfplumber.page.Page) -> set[float]:
    """Where horizontal lines start in the left margin (x < 10 mm): mm from the top, to 0.5 mm."""
    return {round(line["top"] / MM * 2) / 2 for line in page.lines if line["x0"] < 10 * MM}


def decode_code(page: pdfium.PdfPage) -> str | None:
    """Read the inserter code from the left margin of a rendered page."""
    image = page.render(scale=150 / 72, crop=(3 * MM, 52 * MM, 210 * MM - 20 * MM, A4_HEIGHT - 72 * MM))
    found = pylibdmtx.decode(image.to_pil(), max_count=1, timeout=500)
    return found[0].data.decode() if found else None


def test_preflight_accepts_every_example_and_refuses_a_wrong_address() -> None:
    for name in ("invoice", "reference_invoice", "dunning_letter", "payment_plan"):
        body = example(name)
        request = document_type(body["type"]).parse(body)
        report = preflight(render_example(body, "print"), request.recipient, request.data.seller)
        assert report.pages >= 1
    body = example("invoice")
    body["recipient"]["name"] = "Jemand Anderes"
    request = document_type("invoice").parse(body)
    with pytest.raises(PreflightFailed, match="window") as caught:
        preflight(render_example(example("invoice"), "print"), request.recipient, request.data.seller)
    assert "Mustermann" not in str(caught.value)  # the message never quotes the document


def test_preflight_refuses_letter_size_pages_and_limits() -> None:
    body = example("invoice")
    request = document_type("invoice").parse(body)
    with pikepdf.Pdf.open(io.BytesIO(render_example(body, "print"))) as pdf:
        pdf.pages[0].mediabox = pikepdf.Array([0, 0, 612, 792])
        buffer = io.BytesIO()
        pdf.save(buffer)
    with pytest.raises(PreflightFailed, match="not A4"):
        preflight(buffer.getvalue(), request.recipient, request.data.seller)
    from postroom.channels.preflight import PreflightLimits

    with pytest.raises(PreflightFailed, match="exceed"):
        preflight(
            render_example(body, "print"),
            request.recipient,
            request.data.seller,
            limits=PreflightLimits(max_bytes=1000),
        )


def test_inserter_codes_round_trip() -> None:
    mark = InserterMark("3f2a9c1b", 42, 2, 3)
    assert parse_mark(mark.payload()) == mark
    assert not mark.ends_set
    assert InserterMark("3f2a9c1b", 42, 3, 3).payload().endswith("-E")
    with pytest.raises(ValueError, match="inconsistent"):
        parse_mark("3f2a9c1b-000042-0303-C")


def test_a_batch_of_1000_pieces(
    hub_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Queued in random order: the print file is in postcode order, every piece has an even page
    count, and every sheet carries a DataMatrix that decodes to its piece and sheet."""
    pdfs = pieces_of_1_2_and_3_pages()
    db = database(hub_env["POSTROOM_DATABASE_URL"])
    rng = random.Random(7)
    group = f"test-{uuid.uuid4().hex[:8]}"
    by_delivery: dict[uuid.UUID, bytes] = {}
    with db.session() as session:
        for _ in range(1000):
            pages = rng.choice((1, 2, 3))
            document = _document(session)
            delivery = document.deliveries[0]
            postcode = f"{rng.randrange(1000, 99999):05d}"
            country = "DE" if rng.random() < 0.95 else "AT"
            pdf = pdfs[pages]
            by_delivery[delivery.id] = pdf
            piece = QueuedPiece(
                delivery.id, document.id, country, postcode, pages, hashlib.sha256(pdf).hexdigest()
            )
            queue_piece(session, piece, group)
    with db.session() as session:
        batch_id = cut_batch(session, group, 10_000)
        assert batch_id is not None
        pieces = batch_pieces(session, batch_id)

    def forget_batch() -> None:  # left cut, a later print round would hand it off
        with db.session() as session:
            session.execute(delete(PrintPiece).where(PrintPiece.batch_id == batch_id))
            session.execute(delete(PrintBatch).where(PrintBatch.id == batch_id))

    request.addfinalizer(forget_batch)
    assert [number for number, _ in pieces] == list(range(1, 1001))
    keys = [sort_key(piece.country, piece.postcode) for _, piece in pieces]
    assert keys == sorted(keys)

    files = build_batch(
        batch_id,
        group,
        pieces,
        lambda piece: by_delivery[piece.delivery_id],
        tmp_path,
        created=CREATED,
        templates_dir=PROJECT_ROOT / "templates",
    )
    with open(files.manifest_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["piece"]) for row in rows] == list(range(1, 1001))
    assert [row["postcode"] for row in rows] == [piece.postcode for _, piece in pieces]
    manifest = json.loads(files.manifest_json.read_bytes())
    assert manifest["pieces"] == 1000
    assert manifest["sha256"] == hashlib.sha256(files.pdf.read_bytes()).hexdigest()

    document = pdfium.PdfDocument(files.pdf)
    request.addfinalizer(document.close)
    assert len(document) == files.pages == 2 + sum(2 * int(row["sheets"]) for row in rows)
    assert decode_code(document[0]) == InserterMark(batch_id.hex[:8], 0, 1, 1).payload()  # the banner
    code = batch_id.hex[:8]
    with pikepdf.Pdf.open(files.pdf) as merged:
        for row in rows:
            first, sheets = int(row["first_page"]) - 1, int(row["sheets"])
            assert int(row["pages"]) <= 2 * sheets  # padded to an even page count
            for sheet in range(sheets):
                front = merged.pages[first + 2 * sheet]
                expected = InserterMark(code, int(row["piece"]), sheet + 1, sheets)
                # The last content stream of every front is exactly the code of its piece and sheet
                # (and on a letter's first sheet the fold and hole marks) ...
                overlay = stamp(expected) + (fold_marks(A4_HEIGHT) if sheet == 0 else b"")
                assert front.obj.Contents[-1].read_bytes().endswith(overlay)
                # ... the back (a blank padding page or a printed one) carries none.
                back = merged.pages[first + 2 * sheet + 1].obj.Contents
                assert len(back) == 0 or not back[-1].read_bytes().strip(b"\nQ")
    # ... the marks are where DIN 5008 puts them: on each letter's first page, not on the banner ...
    with pdfplumber.open(files.pdf) as merged_pages:
        assert not margin_marks(merged_pages.pages[0])
        for row in rows[:3]:
            first = int(row["first_page"]) - 1
            assert margin_marks(merged_pages.pages[first]) == {105.0, 148.5, 210.0}
            if int(row["sheets"]) > 1:
                assert not margin_marks(merged_pages.pages[first + 2])
    # ... and the codes decode off the rendered page (a sample of 60 sheets across the file).
    for row in rows[::17]:
        first, sheets = int(row["first_page"]) - 1, int(row["sheets"])
        mark = parse_mark(decode_code(document[first + 2 * (sheets - 1)]) or "")
        assert (mark.piece, mark.sheet, mark.sheets, mark.ends_set) == (
            int(row["piece"]),
            sheets,
            sheets,
            True,
        )


def _document(session: object) -> Document:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    document = Document(
        type="invoice",
        number="RE-1",
        issue_date=CREATED.date(),
        locale="de",
        channels=["print"],
        api_key_id="test",
        request_sha256="0" * 64,
    )
    document.deliveries.append(Delivery(id=uuid.uuid4(), channel="print", variant="print"))
    session.add(document)
    session.flush()
    return document


def test_no_batch_without_waiting_pieces(hub_env: dict[str, str]) -> None:
    db = database(hub_env["POSTROOM_DATABASE_URL"])
    with db.session() as session:
        assert cut_batch(session, f"empty-{uuid.uuid4().hex[:6]}", 10) is None
        assert session.scalar(select(PrintBatch).where(PrintBatch.group_key == "never")) is None


@pytest.mark.parametrize(("duplex", "pages"), [(True, 199), (False, 100)])
def test_a_piece_longer_than_the_inserter_code_counts_is_refused(
    hub_env: dict[str, str], tmp_path: Path, duplex: bool, pages: int
) -> None:
    """The code counts sheets with two digits: 99 sheets is the most one piece may have."""
    one = render_example(example("invoice"), "print")
    with pikepdf.Pdf.open(io.BytesIO(one)) as pdf, pikepdf.Pdf.open(io.BytesIO(one)) as source:
        while len(pdf.pages) < pages:
            pdf.pages.append(source.pages[-1])
        del pdf.pages[pages:]
        buffer = io.BytesIO()
        pdf.save(buffer)
    long_pdf = buffer.getvalue()
    channel = PrintChannel(database(hub_env["POSTROOM_DATABASE_URL"]), HotFolder(tmp_path), duplex=duplex)
    handoff = example_handoff(long_pdf)
    with pytest.raises(PreflightFailed, match=f"{pages} pages exceed the limit of {pages - 1}"):
        asyncio.run(channel.send(handoff))


def test_a_large_acknowledgement_is_applied_in_steps(hub_env: dict[str, str]) -> None:
    """Each step is its own transaction over at most ``limit`` pieces; the step that settles the
    last piece marks the batch acknowledged, with the rejections of every step counted."""
    db = database(hub_env["POSTROOM_DATABASE_URL"])
    group = f"steps-{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        for index in range(7):
            document = _document(session)
            document.status = DocumentStatus.DELIVERING
            delivery = document.deliveries[0]
            delivery.status = DeliveryStatus.SENT
            piece = QueuedPiece(delivery.id, document.id, "DE", f"{10115 + index}", 1, "0" * 64)
            queue_piece(session, piece, group)
    with db.session() as session:
        batch_id = cut_batch(session, group, 100)
        assert batch_id is not None
        record_handed_off(session, batch_id, f"{group}.pdf", "0" * 64, 7, 14)
        deliveries = [piece.delivery_id for _, piece in batch_pieces(session, batch_id)]

    steps = []
    while True:
        with db.session() as session:
            outcome = acknowledge(session, batch_id, rejected_pieces={2, 6}, limit=3)
            steps.append((len(outcome.final_documents), outcome.complete))
            remaining = session.scalar(select(func.count()).where(PrintPiece.batch_id == batch_id))
        if outcome.complete:
            break
        assert remaining in (4, 1)
        with db.session() as session:
            assert session.get_one(PrintBatch, batch_id).status == "handed_off"
    assert steps == [(3, False), (3, False), (1, True)]

    with db.session() as session:
        batch = session.get_one(PrintBatch, batch_id)
        assert (batch.status, batch.rejected, batch.error_detail) == (
            "acknowledged",
            2,
            "2 piece(s) rejected",
        )
        statuses = [session.get_one(Delivery, delivery_id).status for delivery_id in deliveries]
        assert statuses == [
            DeliveryStatus.CONFIRMED if n not in (2, 6) else DeliveryStatus.FAILED for n in range(1, 8)
        ]
        assert acknowledge(session, batch_id, rejected_pieces={2, 6}) == AcknowledgementOutcome([], [])
