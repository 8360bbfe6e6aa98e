"""``/v1/booking-exports`` (the daily file for the accounting system and its acknowledgement) and
``/v1/journal`` (the balanced entries behind it)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import business_day, runtime_of
from postroom.api.problems import FieldError, ProblemError, validation_problem
from postroom.core.billing import booking_export
from postroom.core.billing.models import BookingExport, JournalEntry, JournalLine
from postroom.documents.fields import IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(tags=["core"])


class ExportRequest(StrictModel):
    """Export one booking day (today's business day when omitted)."""

    day: IsoDate | None = None


class ExportView(BaseModel):
    """A daily booking export."""

    id: uuid.UUID
    day: date
    entries: int
    debit_total: Decimal
    credit_total: Decimal
    sha256: str
    status: str
    created_at: datetime
    acknowledged_at: datetime | None


class LineView(BaseModel):
    """One side of an entry."""

    account: str
    debit: Decimal
    credit: Decimal


class EntryView(BaseModel):
    """A balanced journal entry."""

    id: int
    day: date
    event: str
    voucher: str
    invoice_id: uuid.UUID | None
    party_reference: str | None
    text: str
    export_id: uuid.UUID | None
    lines: list[LineView]


def _export(session: Session, export_id: uuid.UUID) -> BookingExport:
    export = session.get(BookingExport, export_id)
    if export is None:
        raise ProblemError(404, "Not found", f"no booking export {export_id}", slug="not-found")
    return export


@router.post("/v1/booking-exports", response_model=ExportView)
def export_bookings(
    request: Request,
    body: ExportRequest,
    response: Response,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> ExportView:
    """Write the day's booking file (201); a day exported before is returned as it was (200).
    A day still to come is refused: its bookings are not complete."""
    rt = runtime_of(request)
    today = business_day(rt)
    day = body.day or today
    if day > today:
        error = FieldError(field="day", message=f"must not be after today ({today})", type="value_error")
        raise validation_problem([error])
    with rt.db.session() as session:
        known = session.scalar(select(BookingExport.id).where(BookingExport.day == day)) is not None
        export = booking_export.export_day(session, rt.settings, day, actor=key.id)
        response.status_code = 200 if known else 201
        return ExportView.model_validate(export, from_attributes=True)


@router.get("/v1/booking-exports", response_model=list[ExportView])
def list_exports(
    request: Request,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    status: Annotated[str | None, Query(pattern="^(exported|acknowledged)$")] = None,
    limit: Annotated[int, Query(ge=1, le=366)] = 31,
) -> list[ExportView]:
    """The latest exports, newest first; ``status=exported`` lists those awaiting acknowledgement."""
    query = select(BookingExport).order_by(BookingExport.day.desc()).limit(limit)
    if status is not None:
        query = query.where(BookingExport.status == status)
    with runtime_of(request).db.session() as session:
        return [ExportView.model_validate(e, from_attributes=True) for e in session.scalars(query)]


@router.get("/v1/booking-exports/{export_id}", response_model=ExportView)
def get_export(
    request: Request, export_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> ExportView:
    """One export's figures."""
    with runtime_of(request).db.session() as session:
        return ExportView.model_validate(_export(session, export_id), from_attributes=True)


@router.get("/v1/booking-exports/{export_id}/file", response_class=FileResponse)
def export_file(
    request: Request, export_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> FileResponse:
    """The CSV file (layout in the README, section *Booking export*)."""
    with runtime_of(request).db.session() as session:
        export = _export(session, export_id)
        return FileResponse(
            export.file,
            media_type="text/csv; charset=utf-8",
            filename=f"bookings-{export.day.isoformat()}.csv",
            headers={"X-Content-SHA256": export.sha256},
        )


@router.post("/v1/booking-exports/{export_id}/acknowledge", response_model=ExportView)
def acknowledge_export(
    request: Request, export_id: uuid.UUID, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> ExportView:
    """The accounting system took the file: the hand-off that lets the core purge personal data."""
    with runtime_of(request).db.session() as session:
        try:
            export = booking_export.acknowledge(session, export_id, actor=key.id)
        except booking_export.ExportNotFound as error:
            raise ProblemError(404, "Not found", str(error), slug="not-found") from error
        return ExportView.model_validate(export, from_attributes=True)


@router.get("/v1/journal", response_model=list[EntryView])
def journal(
    request: Request,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    day: IsoDate | None = None,
    invoice_id: uuid.UUID | None = None,
    export_id: uuid.UUID | None = None,
    voucher: Annotated[str | None, Query(max_length=35)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    after: Annotated[int, Query(ge=0, description="Entries after this entry number (paging).")] = 0,
) -> list[EntryView]:
    """Journal entries with their lines, oldest first, filtered by day, invoice, export or voucher."""
    query = select(JournalEntry).where(JournalEntry.id > after).order_by(JournalEntry.id).limit(limit)
    if day is not None:
        query = query.where(JournalEntry.day == day)
    if invoice_id is not None:
        query = query.where(JournalEntry.invoice_id == invoice_id)
    if export_id is not None:
        query = query.where(JournalEntry.export_id == export_id)
    if voucher is not None:
        query = query.where(JournalEntry.voucher == voucher)
    with runtime_of(request).db.session() as session:
        entries = list(session.scalars(query))
        lines: dict[int, list[LineView]] = {entry.id: [] for entry in entries}
        for line in session.scalars(
            select(JournalLine).where(JournalLine.entry_id.in_(lines)).order_by(JournalLine.id)
        ):
            lines[line.entry_id].append(LineView.model_validate(line, from_attributes=True))
        return [
            EntryView(
                id=entry.id,
                day=entry.day,
                event=entry.event,
                voucher=entry.voucher,
                invoice_id=entry.invoice_id,
                party_reference=entry.party_reference,
                text=entry.text,
                export_id=entry.export_id,
                lines=lines[entry.id],
            )
            for entry in entries
        ]
