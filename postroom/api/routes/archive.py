"""``/v1/archive``: auditors search, download and verify archived documents.

Every search, download and verification is chained into the archive's event log with the
key's id. A key restricted to a date range or document types (``ArchiveRestriction``) sees
nothing outside it: such a document answers 404, as if it did not exist.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from postroom.api.auth import require
from postroom.api.problems import ProblemError
from postroom.core import archive_index, event_chain
from postroom.core.archive_index import AccessLimits, ArchiveFilter, InvalidCursor, SortField
from postroom.core.archive_verification import Verification, verify_entry
from postroom.core.models import ArchiveEntry, ArchiveExport
from postroom.einvoice.read import extract_cii
from postroom.jobs import archive_exports
from postroom.runtime import Runtime
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/archive", tags=["archive"])
Auditor = Annotated[ApiKey, Depends(require("archive:read"))]


class ArchiveEntryView(BaseModel):
    """An archived document as the index records it (no personal data beyond the customer id)."""

    id: uuid.UUID
    document_type: str
    number: str
    issue_date: date
    customer_id: str | None
    order_reference: str | None
    currency: str | None
    net_total: Decimal | None
    tax_total: Decimal | None
    gross_total: Decimal | None
    sha256: str
    size_bytes: int
    has_einvoice: bool
    retention_class: str
    retain_until: datetime
    legal_hold: bool
    archived_at: datetime
    location: str

    @classmethod
    def of(cls, entry: ArchiveEntry) -> ArchiveEntryView:
        """The view of an index row."""
        return cls.model_validate(entry, from_attributes=True)


class ArchivePage(BaseModel):
    """One page of a search; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[ArchiveEntryView]
    next_cursor: str | None = None


class LegalHoldRequest(BaseModel):
    """Place (``hold: true``) or lift a legal hold. ``reference`` names the case (a file or court
    reference, no names: it goes into the event chain)."""

    hold: bool
    reference: str = Field(pattern=r"^[A-Za-z0-9 ._/:#-]{3,100}$")


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def visible_entry(rt: Runtime, entry_id: uuid.UUID, key: ApiKey) -> ArchiveEntry:
    """The index row ``entry_id`` if ``key`` may see it; 404 otherwise."""
    with rt.db.session() as session:
        entry = session.get(ArchiveEntry, entry_id)
        if entry is None or entry.deleted_at is not None or not AccessLimits.of(key.archive).admits(entry):
            raise ProblemError(404, "Not found", f"no archived document {entry_id}", slug="not-found")
        session.expunge(entry)
    return entry


def log_access(rt: Runtime, kind: str, key: ApiKey, subject: str | None = None, **detail: Any) -> None:
    """Chain an auditor's access (its own transaction, committed before the answer goes out)."""
    with rt.db.session() as session:
        event_chain.append(session, kind, key.id, subject, **detail)


@router.get("", response_model=ArchivePage)
def search_archive(
    request: Request,
    key: Auditor,
    number: str | None = None,
    document_type: Annotated[str | None, Query(alias="type")] = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    customer_id: str | None = None,
    order_reference: str | None = None,
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
    sort: SortField = "issue_date",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ArchivePage:
    """Archived documents by business keys, ``limit`` per page, ordered by ``sort``."""
    rt = _runtime(request)
    criteria = ArchiveFilter(
        number, document_type, issued_from, issued_to, customer_id, order_reference, amount_min, amount_max
    )
    with rt.db.session() as session:
        try:
            page = archive_index.search(
                session,
                criteria,
                AccessLimits.of(key.archive),
                sort=sort,
                descending=order == "desc",
                limit=limit,
                cursor=cursor,
            )
        except InvalidCursor as error:
            raise ProblemError(422, "Invalid cursor", str(error), slug="validation") from None
        view = ArchivePage(items=[ArchiveEntryView.of(e) for e in page.entries], next_cursor=page.next_cursor)
    criteria_used = {name: str(value) for name, value in vars_of(criteria).items() if value is not None}
    log_access(rt, "archive.search", key, None, criteria=criteria_used, results=len(view.items))
    return view


def stored_file(
    rt: Runtime, archive_key: str, sha256: str, media_type: str, disposition: str
) -> StreamingResponse:
    """An archived object streamed from the store, its recorded SHA-256 in ``X-Content-SHA256``."""
    headers = {
        "X-Content-SHA256": sha256,
        "Content-Disposition": f'{disposition}; filename="{archive_key.rsplit("/", 1)[-1]}"',
    }
    return StreamingResponse(rt.archive.stream(archive_key), media_type=media_type, headers=headers)


def vars_of(criteria: ArchiveFilter) -> dict[str, Any]:
    """The filter's fields by name."""
    return {name: getattr(criteria, name) for name in ArchiveFilter.__slots__}


class ExportRequest(BaseModel):
    """A GoBD Z3 export of the documents issued in a period (both days included)."""

    period_from: date
    period_to: date
    include_pdfs: bool = False


class ExportView(BaseModel):
    """An export's progress; once ``finished``, its ZIP is archived and can be downloaded."""

    id: uuid.UUID
    status: str
    period_from: date
    period_to: date
    include_pdfs: bool
    documents_total: int
    documents_done: int
    lines: int
    sha256: str | None
    size_bytes: int | None
    error_detail: str | None
    created_at: datetime
    finished_at: datetime | None


def _own_export(rt: Runtime, export_id: uuid.UUID, key: ApiKey) -> ArchiveExport:
    with rt.db.session() as session:
        export = session.get(ArchiveExport, export_id)
        if export is None or (export.api_key_id != key.id and "admin" not in key.scopes):
            raise ProblemError(404, "Not found", f"no export {export_id}", slug="not-found")
        session.expunge(export)
    return export


@router.post("/exports", response_model=ExportView, status_code=202)
def request_export(request: Request, body: ExportRequest, key: Auditor) -> ExportView:
    """Start a GoBD Z3 export (ZIP of CSV files, ``index.xml`` after the GDPdU DTD and optionally
    the PDFs) of what this key may see; follow it at ``GET /v1/archive/exports/{id}``."""
    rt = _runtime(request)
    try:
        export_id = archive_exports.request_export(
            rt, key, body.period_from, body.period_to, body.include_pdfs
        )
    except archive_exports.InvalidPeriod as error:
        raise ProblemError(422, "Invalid period", str(error), slug="validation") from None
    request.app.state.enqueue_export(export_id)
    return ExportView.model_validate(_own_export(rt, export_id, key), from_attributes=True)


@router.get("/exports/{export_id}", response_model=ExportView)
def export_status(request: Request, export_id: uuid.UUID, key: Auditor) -> ExportView:
    """An export's progress (only the key that requested it, or an admin, sees it)."""
    export = _own_export(_runtime(request), export_id, key)
    return ExportView.model_validate(export, from_attributes=True)


@router.get(
    "/exports/{export_id}/zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The archived export"}},
)
def download_export(request: Request, export_id: uuid.UUID, key: Auditor) -> StreamingResponse:
    """The finished export's ZIP, streamed from the archive; its SHA-256 in ``X-Content-SHA256``."""
    rt = _runtime(request)
    export = _own_export(rt, export_id, key)
    if export.status != archive_exports.FINISHED or export.archive_key is None or export.sha256 is None:
        raise ProblemError(409, "Not finished", f"export {export_id} is {export.status}", slug="not-ready")
    log_access(rt, "archive.export_download", key, str(export_id))
    return stored_file(rt, export.archive_key, export.sha256, "application/zip", "attachment")


@router.get("/{entry_id}", response_model=ArchiveEntryView)
def archived_document(request: Request, entry_id: uuid.UUID, key: Auditor) -> ArchiveEntryView:
    """What the index records of one archived document."""
    rt = _runtime(request)
    entry = visible_entry(rt, entry_id, key)
    log_access(rt, "archive.read", key, str(entry_id))
    return ArchiveEntryView.of(entry)


@router.get(
    "/{entry_id}/pdf",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/pdf": {}}, "description": "The archived original"}},
)
def download_pdf(request: Request, entry_id: uuid.UUID, key: Auditor) -> StreamingResponse:
    """The archived original, streamed from the store (never re-rendered); its SHA-256 as
    recorded at archiving is in ``X-Content-SHA256``."""
    rt = _runtime(request)
    entry = visible_entry(rt, entry_id, key)
    log_access(rt, "archive.download", key, str(entry_id), key_in_store=entry.archive_key)
    return stored_file(rt, entry.archive_key, entry.sha256, "application/pdf", "inline")


@router.get(
    "/{entry_id}/xml",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "The embedded e-invoice"}},
)
def download_xml(request: Request, entry_id: uuid.UUID, key: Auditor) -> Response:
    """The EN 16931 CII XML embedded in the archived PDF (``factur-x.xml``)."""
    rt = _runtime(request)
    entry = visible_entry(rt, entry_id, key)
    xml = extract_cii(rt.archive.get(entry.archive_key)) if entry.has_einvoice else None
    if xml is None:
        detail = f"document {entry_id} carries no e-invoice XML"
        raise ProblemError(404, "No e-invoice", detail, slug="not-found")
    log_access(rt, "archive.download_xml", key, str(entry_id))
    return Response(xml, media_type="application/xml")


@router.get("/{entry_id}/verify", response_model=Verification)
def verify(request: Request, entry_id: uuid.UUID, key: Auditor) -> Verification:
    """Recompute the stored object's SHA-256 against the index and the chained ``archive.write``
    event; report retention mode and date as the store states them."""
    rt = _runtime(request)
    entry = visible_entry(rt, entry_id, key)
    with rt.db.session() as session:
        result = verify_entry(session, rt.archive, entry)
    log_access(rt, "archive.verify", key, str(entry_id), verified=result.verified)
    return result


@router.post("/{entry_id}/legal-hold", response_model=ArchiveEntryView)
def legal_hold(
    request: Request,
    entry_id: uuid.UUID,
    body: LegalHoldRequest,
    key: Annotated[ApiKey, Depends(require("admin"))],
) -> ArchiveEntryView:
    """Place or lift a legal hold: a held document is not deleted when its retention ends."""
    rt = _runtime(request)
    with rt.db.session() as session:
        entry = session.get(ArchiveEntry, entry_id)
        if entry is None or entry.deleted_at is not None:
            raise ProblemError(404, "Not found", f"no archived document {entry_id}", slug="not-found")
        if entry.legal_hold != body.hold:
            entry.legal_hold = body.hold
            kind = "archive.legal_hold" if body.hold else "archive.legal_hold_lifted"
            event_chain.append(session, kind, key.id, str(entry_id), reference=body.reference)
        return ArchiveEntryView.of(entry)
