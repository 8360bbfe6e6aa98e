"""State of bulk runs: a batch is opened, receives its lines (each a queued document or a
rejection naming the line and the fields), is closed, then its documents are rendered and
delivered like single ones.

Batch statuses: ``receiving`` while the upload streams in, ``running`` once closed with at
least one document, ``finished`` when every document is final, ``rejected`` when it holds no
document (all-or-nothing with a bad line, or no valid line at all), ``cancelled``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from postroom.core.documents import locked, new_document
from postroom.core.models import Batch, BatchRejection, Delivery, Document, PrintPiece, utcnow
from postroom.core.states import FINAL_DOCUMENT_STATES, DeliveryStatus, DocumentStatus
from postroom.documents.request import DocumentRequest

RECEIVING, RUNNING, FINISHED, REJECTED, CANCELLED = (
    "receiving",
    "running",
    "finished",
    "rejected",
    "cancelled",
)


def batch_print_group(batch_id: uuid.UUID) -> str:
    """The print group of a bulk run: its letters go to the letter shop as batches of their own."""
    return f"batch-{batch_id}"


@dataclass(frozen=True, slots=True)
class AcceptedLine:
    """A line that passed validation."""

    line: int
    request: DocumentRequest


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """A line that did not: each error as ``{"field", "message", "type"}``, never the input."""

    line: int
    errors: list[dict[str, str]]


def open_batch(
    session: Session, *, api_key_id: str, source_format: str, all_or_nothing: bool, callback_url: str | None
) -> uuid.UUID:
    """A new batch in ``receiving``."""
    batch = Batch(
        id=uuid.uuid4(),
        api_key_id=api_key_id,
        status=RECEIVING,
        all_or_nothing=all_or_nothing,
        source_format=source_format,
        callback_url=callback_url,
    )
    session.add(batch)
    return batch.id


def add_lines(
    session: Session, batch_id: uuid.UUID, accepted: Sequence[AcceptedLine], rejected: Sequence[RejectedLine]
) -> None:
    """Record one chunk of lines: a ``queued`` document per accepted line (not yet enqueued: the
    batch's expansion sends them once it is closed), a rejection per rejected one."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status != RECEIVING:
        raise ValueError(f"batch {batch_id} is not receiving lines")
    for item in accepted:
        document = new_document(item.request, api_key_id=batch.api_key_id)
        document.batch_id, document.batch_line = batch_id, item.line
        session.add(document)
    session.add_all(
        BatchRejection(batch_id=batch_id, line=item.line, errors=item.errors) for item in rejected
    )
    batch.accepted += len(accepted)
    batch.rejected += len(rejected)
    batch.lines = max([batch.lines, *(i.line for i in accepted), *(i.line for i in rejected)])


def close_batch(session: Session, batch_id: uuid.UUID) -> Batch:
    """The upload is complete: ``running``, or ``rejected`` (its documents removed) when it is
    all-or-nothing with a rejected line or holds no document."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status != RECEIVING:
        raise ValueError(f"batch {batch_id} is not receiving lines")
    batch.received_at = utcnow()
    if batch.accepted == 0 or (batch.all_or_nothing and batch.rejected):
        session.execute(delete(Document).where(Document.batch_id == batch_id))
        batch.status, batch.finished_at = REJECTED, utcnow()
    else:
        batch.status = RUNNING
    return batch


def abort_batch(session: Session, batch_id: uuid.UUID) -> None:
    """An upload that broke off: the batch keeps no document and is ``rejected``."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status != RECEIVING:
        return
    session.execute(delete(Document).where(Document.batch_id == batch_id))
    batch.accepted = 0
    batch.status, batch.received_at, batch.finished_at = REJECTED, utcnow(), utcnow()


def documents_in(
    session: Session, batch_id: uuid.UUID, status: DocumentStatus, after_line: int, limit: int
) -> list[tuple[int, uuid.UUID]]:
    """``(line, document id)`` of the batch's documents in ``status`` after ``after_line``, in line order."""
    query = (
        select(Document.batch_line, Document.id)
        .where(Document.batch_id == batch_id, Document.batch_line > after_line, Document.status == status)
        .order_by(Document.batch_line)
        .limit(limit)
    )
    return [(line or 0, document_id) for line, document_id in session.execute(query)]


def unexpanded_core_runs(session: Session, recorded_before: datetime) -> list[uuid.UUID]:
    """Runs the core recorded (``source_format`` core) before ``recorded_before`` that are
    running with every document still ``queued``: their expansion message never arrived."""
    moved = select(Document.id).where(Document.batch_id == Batch.id, Document.status != DocumentStatus.QUEUED)
    query = select(Batch.id).where(
        Batch.source_format == "core",
        Batch.status == RUNNING,
        Batch.created_at < recorded_before,
        ~exists(moved),
    )
    return list(session.scalars(query))


def reopen_batch(session: Session, batch_id: uuid.UUID) -> bool:
    """A finished run whose failed documents are retried is ``running`` again; ``False`` when the
    run is not one that can be retried (still receiving, rejected or cancelled)."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status not in (RUNNING, FINISHED):
        return False
    batch.status, batch.finished_at, batch.callback_sent_at = RUNNING, None, None
    return True


def record_batch_callback(session: Session, batch_id: uuid.UUID) -> None:
    """The run's callback receiver acknowledged its final state."""
    batch = locked(session, Batch, batch_id)
    if batch is not None:
        batch.callback_sent_at = utcnow()


def document_counts(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    """The batch's documents by status (every status present, zero or not)."""
    query = (
        select(Document.status, func.count()).where(Document.batch_id == batch_id).group_by(Document.status)
    )
    counts = {status.value: 0 for status in DocumentStatus}
    counts.update({status.value: count for status, count in session.execute(query)})
    return counts


def print_cut_due(session: Session, batch_id: uuid.UUID) -> bool:
    """Whether every print delivery of the run is in its print queue (none still to render or
    send) while some wait for a batch: then the run's print batch can be cut."""
    unfinished = (
        select(Delivery.id)
        .join(Document, Document.id == Delivery.document_id)
        .where(
            Document.batch_id == batch_id,
            Delivery.channel == "print",
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
        )
    )
    unrendered = select(Document.id).where(
        Document.batch_id == batch_id,
        Document.status.in_((DocumentStatus.QUEUED, DocumentStatus.RENDERING, DocumentStatus.RENDERED)),
    )
    waiting = select(PrintPiece.delivery_id).where(
        PrintPiece.group_key == batch_print_group(batch_id), PrintPiece.batch_id.is_(None)
    )
    return bool(
        session.scalar(select(exists(waiting)))
        and not session.scalar(select(exists(unfinished)))
        and not session.scalar(select(exists(unrendered)))
    )


def settle_batch(session: Session, batch_id: uuid.UUID) -> bool:
    """Finish a running batch whose documents are all final; ``True`` if this call finished it."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status != RUNNING:
        return False
    counts = document_counts(session, batch_id)
    if any(counts[status.value] for status in DocumentStatus if status not in FINAL_DOCUMENT_STATES):
        return False
    batch.status, batch.finished_at = FINISHED, utcnow()
    return True


def cancel_batch(session: Session, batch_id: uuid.UUID) -> int:
    """Cancel a batch: its documents not yet rendering fail as ``cancelled``; the count."""
    batch = locked(session, Batch, batch_id)
    if batch is None or batch.status not in (RECEIVING, RUNNING):
        return 0
    result = session.execute(
        update(Document)
        .where(Document.batch_id == batch_id, Document.status == DocumentStatus.QUEUED)
        .values(
            status=DocumentStatus.FAILED,
            error_code="cancelled",
            error_detail="the batch was cancelled",
            updated_at=utcnow(),
        )
    )
    batch.status, batch.finished_at = CANCELLED, utcnow()
    return int(getattr(result, "rowcount", 0) or 0)


def manifest_page(session: Session, batch_id: uuid.UUID, after_line: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` lines of the run's result after ``after_line``: each line's document (id,
    number, status, error code, each channel's status and reference) or its rejection."""
    documents = session.scalars(
        select(Document)
        .where(Document.batch_id == batch_id, Document.batch_line > after_line)
        .options(selectinload(Document.deliveries))
        .order_by(Document.batch_line)
        .limit(limit)
    ).all()
    rejections = session.scalars(
        select(BatchRejection)
        .where(BatchRejection.batch_id == batch_id, BatchRejection.line > after_line)
        .order_by(BatchRejection.line)
        .limit(limit)
    ).all()
    rows: list[dict[str, Any]] = [
        {
            "line": document.batch_line,
            "document_id": str(document.id),
            "number": document.number,
            "status": document.status.value,
            "error": document.error_code,
            "deliveries": {
                d.channel: {"status": d.status.value, "external_ref": d.external_ref}
                for d in document.deliveries
            },
        }
        for document in documents
    ]
    rows += [{"line": r.line, "rejected": r.errors} for r in rejections]
    rows.sort(key=lambda row: int(row["line"]))
    return rows[:limit]
