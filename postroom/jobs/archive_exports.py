"""GoBD Z3 exports of a period: requested by an auditor, built by a job, archived, downloaded.

The export sees what the requesting key sees (its ``ArchiveRestriction``). The finished ZIP is
written into the archive store (kept as long as books, 10 years) and the export is chained into
the event log; the download streams it from there.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from postroom.channels.archive import retention_end
from postroom.core import event_chain
from postroom.core.archive_index import AccessLimits, ArchiveFilter, filtered, search
from postroom.core.models import ArchiveEntry, ArchiveExport, utcnow
from postroom.documents.doctype import RETENTION_YEARS
from postroom.jobs.z3 import ExportDocument, Z3ExportError, write_z3_export
from postroom.log import get_logger
from postroom.runtime import Runtime
from postroom.settings import ApiKey

log = get_logger(__name__)

QUEUED, RUNNING, FINISHED, FAILED = "queued", "running", "finished", "failed"
MAX_PERIOD_DAYS = 3660
"""Ten years and a little: the longest period the retention rules can ask for."""


class InvalidPeriod(ValueError):
    """The export period is empty, reversed or longer than retention."""


def request_export(
    rt: Runtime, key: ApiKey, period_from: date, period_to: date, include_pdfs: bool
) -> uuid.UUID:
    """Record an export of the documents issued from ``period_from`` to ``period_to`` (inclusive)
    that ``key`` may see; the caller enqueues :func:`build_export` with the returned id."""
    if period_to < period_from:
        raise InvalidPeriod("period_to lies before period_from")
    if (period_to - period_from).days > MAX_PERIOD_DAYS:
        raise InvalidPeriod(f"an export covers at most {MAX_PERIOD_DAYS} days")
    with rt.db.session() as session:
        export = ArchiveExport(
            api_key_id=key.id, period_from=period_from, period_to=period_to, include_pdfs=include_pdfs
        )
        session.add(export)
        session.flush()
        event_chain.append(
            session,
            "archive.export_requested",
            key.id,
            str(export.id),
            period_from=period_from.isoformat(),
            period_to=period_to.isoformat(),
            include_pdfs=include_pdfs,
        )
        return export.id


def export_key(export: ArchiveExport) -> str:
    """Where the finished ZIP is archived."""
    period = f"{export.period_from:%Y%m%d}-{export.period_to:%Y%m%d}"
    return f"exports/{export.created_at:%Y}/z3-{period}-{export.id}.zip"


def build_export(rt: Runtime, export_id: uuid.UUID) -> None:
    """Build, archive and record the export; repeating a finished one does nothing."""
    with rt.db.session() as session:
        export = session.get(ArchiveExport, export_id)
        if export is None or export.status == FINISHED:
            return
        key = rt.settings.api_key_by_id(export.api_key_id)
        if key is None:
            export.status, export.error_detail = FAILED, "the requesting API key no longer exists"
            return
        limits = AccessLimits.of(key.archive)
        period, include_pdfs = (export.period_from, export.period_to), export.include_pdfs
        archive_key = export_key(export)
        export.status, export.documents_done = RUNNING, 0
        export.documents_total = (
            session.scalar(filtered(select(func.count()).select_from(ArchiveEntry), _in(period), limits)) or 0
        )

    def progress(done: int) -> None:
        with rt.db.session() as session:
            row = session.get_one(ArchiveExport, export_id)
            row.documents_done = done

    with tempfile.TemporaryDirectory(prefix="postroom-z3-", dir=rt.settings.var_dir) as folder:
        target = Path(folder) / "export.zip"
        try:
            summary = write_z3_export(
                _documents(rt, period, limits),
                lambda document: rt.archive.get(document.archive_key),
                target,
                period=period,
                supplier=rt.settings.archive_supplier_name,
                include_pdfs=include_pdfs,
                progress=progress,
            )
        except Z3ExportError as error:
            # An archived PDF that no longer matches its SHA-256 must not leave in an export
            # unnoticed; the message names the document id, nothing personal.
            fail_export(rt, export_id, str(error))
            log.warning("archive export failed", export_id=str(export_id), error=str(error))
            return
        retain_until = retention_end(utcnow().date(), RETENTION_YEARS["books"])
        metadata = {"document-type": "z3-export", "retention-class": "books", "export-id": str(export_id)}
        rt.archive.put(archive_key, target.read_bytes(), summary.sha256, metadata, retain_until)
    with rt.db.session() as session:
        row = session.get_one(ArchiveExport, export_id)
        row.status, row.finished_at = FINISHED, utcnow()
        row.documents_done, row.lines = summary.documents, summary.lines
        row.archive_key, row.sha256, row.size_bytes = archive_key, summary.sha256, summary.size
        event_chain.append(
            session,
            "archive.export",
            row.api_key_id,
            str(export_id),
            key=archive_key,
            sha256=summary.sha256,
            documents=summary.documents,
            lines=summary.lines,
            pdfs=summary.pdfs,
        )
    log.info("archive export finished", export_id=str(export_id), documents=summary.documents)


def fail_export(rt: Runtime, export_id: uuid.UUID, reason: str) -> None:
    """Mark an export failed for good and chain that; ``reason`` names ids, never personal data."""
    with rt.db.session() as session:
        row = session.get(ArchiveExport, export_id)
        if row is not None and row.status != FINISHED:
            row.status, row.error_detail = FAILED, reason[:1000]
            event_chain.append(
                session, "archive.export_failed", row.api_key_id, str(export_id), reason=reason[:200]
            )


def _in(period: tuple[date, date]) -> ArchiveFilter:
    return ArchiveFilter(issued_from=period[0], issued_to=period[1])


def _documents(
    rt: Runtime, period: tuple[date, date], limits: AccessLimits, chunk: int = 500
) -> Iterator[ExportDocument]:
    """The period's documents by issue date, read a search page of ``chunk`` at a time."""
    cursor: str | None = None
    while True:
        with rt.db.session() as session:
            page = search(session, _in(period), limits, limit=chunk, cursor=cursor)
            documents = [_export_document(entry) for entry in page.entries]
        yield from documents
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


_ZERO = Decimal("0.00")


def _export_document(entry: ArchiveEntry) -> ExportDocument:
    return ExportDocument(
        document_id=entry.id,
        number=entry.number,
        document_type=entry.document_type,
        issue_date=entry.issue_date,
        customer_id=entry.customer_id,
        order_reference=entry.order_reference,
        currency=entry.currency or "",
        net_total=entry.net_total if entry.net_total is not None else _ZERO,
        tax_total=entry.tax_total if entry.tax_total is not None else _ZERO,
        gross_total=entry.gross_total if entry.gross_total is not None else _ZERO,
        sha256=entry.sha256,
        archive_key=entry.archive_key,
        retain_until=entry.retain_until,
    )
