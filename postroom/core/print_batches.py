"""State of the print channel: pieces waiting for a batch, batches handed off and acknowledged.

A piece joins the queue when its delivery is handed to the print channel (delivery
``sent``). A cut-off moves the waiting pieces of a group into a new batch, numbered in
postcode order; once the letter shop acknowledges the batch file, its deliveries are
confirmed (or, for pieces it rejects, failed).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import String, cast, insert, literal, select, update
from sqlalchemy.orm import Session

from postroom.core.documents import Fallback, confirm_locked_delivery, fail_delivery, lock_documents, locked
from postroom.core.models import Delivery, DeliveryEvent, PrintBatch, PrintPiece, utcnow
from postroom.core.states import FINAL_DOCUMENT_STATES, DeliveryStatus

BUILDING, HANDED_OFF, ACKNOWLEDGED = "building", "handed_off", "acknowledged"
DEFAULT_GROUP = "cutoff"
"""The group of single documents, batched at the configured cut-off times."""


@dataclass(frozen=True, slots=True)
class QueuedPiece:
    """What the batch needs to know of a piece: where it goes and how long it is."""

    delivery_id: uuid.UUID
    document_id: uuid.UUID
    country: str
    postcode: str
    pages: int
    sha256: str


@dataclass(frozen=True, slots=True)
class AcknowledgementOutcome:
    """What an acknowledgement (or a dropped piece) settled: documents now final and fallback
    deliveries to send."""

    final_documents: list[uuid.UUID]
    replacements: list[uuid.UUID]
    complete: bool = True
    """``False`` while pieces of an acknowledged batch are still to be settled (see :func:`acknowledge`)."""


def sort_key(country: str, postcode: str, home_country: str = "DE") -> tuple[bool, str, str, str]:
    """Domestic pieces first, by Leitregion (first two digits) and postcode; then abroad by country."""
    abroad = country != home_country
    return abroad, country if abroad else "", postcode[:2], postcode


def queue_piece(session: Session, piece: QueuedPiece, group: str = DEFAULT_GROUP) -> None:
    """Put a print delivery in the queue of ``group``; repeating it changes nothing."""
    if session.get(PrintPiece, piece.delivery_id) is None:
        session.add(
            PrintPiece(
                delivery_id=piece.delivery_id,
                document_id=piece.document_id,
                group_key=group,
                country=piece.country,
                postcode=piece.postcode,
                pages=piece.pages,
                sha256=piece.sha256,
            )
        )


def waiting_groups(session: Session) -> list[str]:
    """Groups that have pieces waiting for a batch."""
    query = select(PrintPiece.group_key).where(PrintPiece.batch_id.is_(None)).distinct()
    return list(session.scalars(query))


def cut_batch(session: Session, group: str, max_pieces: int) -> uuid.UUID | None:
    """Move up to ``max_pieces`` waiting pieces of ``group`` into a new batch, numbered in
    postcode order; ``None`` when none are waiting."""
    # Plain rows, not ORM objects: a cut of 10,000 pieces must not hold 10,000 entities in memory.
    query = (
        select(PrintPiece.delivery_id, PrintPiece.country, PrintPiece.postcode)
        .where(PrintPiece.group_key == group, PrintPiece.batch_id.is_(None))
        .order_by(PrintPiece.queued_at, PrintPiece.delivery_id)
        .limit(max_pieces)
        .with_for_update(skip_locked=True)
    )
    pieces = session.execute(query).all()
    if not pieces:
        return None
    batch = PrintBatch(id=uuid.uuid4(), group_key=group, status=BUILDING, pieces=len(pieces))
    session.add(batch)
    session.flush()
    in_order = sorted(pieces, key=lambda piece: sort_key(piece.country, piece.postcode))
    session.execute(
        update(PrintPiece),
        [
            {"delivery_id": piece.delivery_id, "batch_id": batch.id, "piece_no": number}
            for number, piece in enumerate(in_order, 1)
        ],
    )
    return batch.id


def unfinished_batches(session: Session) -> list[uuid.UUID]:
    """Batches cut but not yet handed off (their builder may have died)."""
    return list(session.scalars(select(PrintBatch.id).where(PrintBatch.status == BUILDING)))


def batch_pieces(session: Session, batch_id: uuid.UUID) -> list[tuple[int, QueuedPiece]]:
    """The pieces of a batch in print order, with their piece numbers."""
    query = (
        select(
            PrintPiece.piece_no,
            PrintPiece.delivery_id,
            PrintPiece.document_id,
            PrintPiece.country,
            PrintPiece.postcode,
            PrintPiece.pages,
            PrintPiece.sha256,
        )
        .where(PrintPiece.batch_id == batch_id)
        .order_by(PrintPiece.piece_no)
    )
    return [
        (
            row.piece_no or 0,
            QueuedPiece(row.delivery_id, row.document_id, row.country, row.postcode, row.pages, row.sha256),
        )
        for row in session.execute(query)
    ]


def record_handed_off(
    session: Session, batch_id: uuid.UUID, file_name: str, sha256: str, sheets: int, pages: int
) -> None:
    """The batch file is in the letter shop's folder; each piece's history says so."""
    batch = locked(session, PrintBatch, batch_id)
    if batch is None or batch.status != BUILDING:
        return
    batch.status, batch.file_name, batch.sha256 = HANDED_OFF, file_name, sha256
    batch.sheets, batch.pages, batch.handed_off_at = sheets, pages, utcnow()
    # Two statements for the whole batch rather than an entity (and its history) per piece: a batch
    # of 10,000 pieces loaded 10,000 deliveries and, one query each, their events.
    in_batch = select(PrintPiece.delivery_id).where(PrintPiece.batch_id == batch_id)
    sent = (Delivery.id.in_(in_batch), Delivery.status == DeliveryStatus.SENT)
    session.execute(
        insert(DeliveryEvent).from_select(
            ["delivery_id", "at", "status", "event", "detail"],
            select(
                Delivery.id,
                literal(utcnow(), DeliveryEvent.at.type),
                Delivery.status,
                literal("batch_handed_off", DeliveryEvent.event.type),
                literal(f"print batch {batch_id}", DeliveryEvent.detail.type),
            )
            .where(*sent)
            .order_by(Delivery.id),
        )
    )
    piece_no = select(PrintPiece.piece_no).where(PrintPiece.delivery_id == Delivery.id).scalar_subquery()
    session.execute(
        update(Delivery)
        .where(*sent)
        .values(external_ref=literal(f"{file_name}#piece=") + cast(piece_no, String))
        .execution_options(synchronize_session=False)
    )


def batch_by_file(session: Session, file_stem: str) -> PrintBatch | None:
    """The batch whose print file is ``<file_stem>.pdf``."""
    return session.scalar(select(PrintBatch).where(PrintBatch.file_name == f"{file_stem}.pdf"))


ACKNOWLEDGE_CHUNK = 500
"""Pieces one call of :func:`acknowledge` settles: a 10,000-piece batch is applied in steps, each
its own transaction, so that a worker never holds (or locks) a whole batch's documents at once."""


def acknowledge(
    session: Session,
    batch_id: uuid.UUID,
    rejected_pieces: Collection[int] = (),
    *,
    whole_batch_rejected: bool = False,
    fallbacks: Mapping[str, Fallback] | None = None,
    limit: int = ACKNOWLEDGE_CHUNK,
) -> AcknowledgementOutcome:
    """The letter shop took the batch: confirm the deliveries of up to ``limit`` of its pieces,
    fail those of rejected pieces (every piece when ``whole_batch_rejected``), and delete their
    queue rows (with their postcodes).

    Call it again, in a new transaction, until the outcome is ``complete``: the call that settles
    the last piece marks the batch ``acknowledged``. A step that dies is repeated from the pieces
    still queued; repeating a finished acknowledgement changes nothing.
    """
    batch = locked(session, PrintBatch, batch_id)
    if batch is None or batch.status != HANDED_OFF:
        return AcknowledgementOutcome([], [])
    in_batch = select(PrintPiece).where(PrintPiece.batch_id == batch_id)
    pieces = session.scalars(in_batch.order_by(PrintPiece.piece_no).limit(limit + 1)).all()
    step, more = pieces[:limit], len(pieces) > limit
    final: list[uuid.UUID] = []
    replacements: list[uuid.UUID] = []
    # Every document of the step and all their deliveries locked and loaded in two queries; the
    # pieces are then settled in memory (the rejected ones as before, one by one).
    documents = lock_documents(session, {piece.document_id for piece in step})
    for piece in step:
        if whole_batch_rejected or piece.piece_no in rejected_pieces:
            batch.rejected += 1
            replacement = fail_delivery(
                session,
                piece.delivery_id,
                "print_rejected",
                f"letter shop rejected piece {piece.piece_no}",
                fallbacks=fallbacks,
            )
            if replacement is not None:
                replacements.append(replacement.id)
            delivery = session.get(Delivery, piece.delivery_id)
        else:
            locked_document = documents.get(piece.document_id)
            delivery = locked_document.delivery(piece.delivery_id) if locked_document is not None else None
            if locked_document is not None and delivery is not None:
                confirm_locked_delivery(
                    session, locked_document, delivery, "acknowledged", f"print batch {batch_id}"
                )
        if delivery is not None and delivery.document.status in FINAL_DOCUMENT_STATES:
            final.append(delivery.document_id)
        session.delete(piece)
    if more:
        return AcknowledgementOutcome(final, replacements, complete=False)
    batch.status, batch.acknowledged_at = ACKNOWLEDGED, utcnow()
    if batch.rejected:
        batch.error_detail = f"{batch.rejected} piece(s) rejected"
    return AcknowledgementOutcome(final, replacements)


def drop_piece(
    session: Session,
    batch_id: uuid.UUID,
    delivery_id: uuid.UUID,
    reason: str,
    *,
    fallbacks: Mapping[str, Fallback] | None = None,
) -> AcknowledgementOutcome:
    """Take a piece that cannot be printed out of a batch still being built and fail its delivery
    (into its fallback, if it has one). The remaining pieces are renumbered in order; a batch left
    empty is deleted."""
    batch = locked(session, PrintBatch, batch_id)
    piece = session.get(PrintPiece, delivery_id)
    if batch is None or batch.status != BUILDING or piece is None or piece.batch_id != batch_id:
        return AcknowledgementOutcome([], [])
    session.delete(piece)
    replacement = fail_delivery(session, delivery_id, "print_unusable", reason, fallbacks=fallbacks)
    delivery = session.get(Delivery, delivery_id)
    final = [delivery.document_id] if delivery and delivery.document.status in FINAL_DOCUMENT_STATES else []
    session.flush()
    rest = list(
        session.scalars(
            select(PrintPiece).where(PrintPiece.batch_id == batch_id).order_by(PrintPiece.piece_no)
        )
    )
    for number, remaining in enumerate(rest, 1):
        remaining.piece_no = number
    batch.pieces = len(rest)
    if not rest:
        session.delete(batch)
    return AcknowledgementOutcome(final, [replacement.id] if replacement is not None else [])
