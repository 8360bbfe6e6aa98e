"""``/v1/batches``: bulk runs uploaded as NDJSON, one document request per line, streamed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select

from postroom.api.auth import require
from postroom.api.csv_source import (
    CellError,
    Column,
    Constant,
    MappingError,
    body_of,
    csv_rows,
    parse_mapping,
)
from postroom.api.problems import FieldError, ProblemError, validation_problem
from postroom.api.routes.documents import callback_problems, parse_document_request
from postroom.core.batches import (
    REJECTED,
    AcceptedLine,
    RejectedLine,
    abort_batch,
    add_lines,
    cancel_batch,
    close_batch,
    document_counts,
    manifest_page,
    open_batch,
    reopen_batch,
)
from postroom.core.models import Batch, BatchRejection, utcnow
from postroom.log import get_logger
from postroom.runtime import Runtime
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/batches", tags=["batches"])
log = get_logger(__name__)

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")
CSV_TYPE = "text/csv"
CHUNK_LINES = 500
"""Lines validated and stored per transaction while the upload streams in."""
MAX_LINE_BYTES = 1024 * 1024
REJECTIONS_SHOWN = 1000


class BatchView(BaseModel):
    """A bulk run: its lines, its documents by status, its progress."""

    id: uuid.UUID
    status: str
    lines: int
    accepted: int
    rejected: int
    documents: dict[str, int]
    rejected_lines: list[dict[str, Any]]
    created_at: datetime
    received_at: datetime | None
    finished_at: datetime | None
    documents_per_second: float | None
    eta_seconds: float | None


async def _lines(request: Request) -> AsyncIterator[tuple[int, bytes]]:
    """The body's lines with their numbers (from 1), read chunk by chunk, never the whole body."""
    pending, number = b"", 0
    async for chunk in request.stream():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > MAX_LINE_BYTES:
            raise ProblemError(413, "Line too long", f"line {number + len(complete) + 1} exceeds 1 MiB")
        for line in complete:
            number += 1
            yield number, line
    if pending:
        yield number + 1, pending


async def _ndjson_bodies(lines: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, object]]:
    """``(line, body)`` of each non-blank NDJSON line; a body that is not JSON is ``None``."""
    async for number, raw in lines:
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except ValueError:  # UnicodeDecodeError included
            yield number, None


async def _csv_bodies(
    lines: AsyncIterator[tuple[int, bytes]], mapping: dict[str, Column | Constant]
) -> AsyncIterator[tuple[int, object]]:
    """``(line, body)`` of each CSV row through the column mapping; an unreadable row is an
    :class:`Unreadable` naming why."""
    async for number, row in csv_rows(lines):
        if row is None:
            yield number, Unreadable("row", "not a CSV row with the header's columns")
            continue
        try:
            yield number, body_of(row, mapping)
        except CellError as error:
            yield number, Unreadable("row", str(error))


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line that yields no request body at all."""

    field: str
    message: str


def _validate(number: int, body: object, rt: Runtime) -> AcceptedLine | RejectedLine:
    """One line's body checked as ``POST /v1/documents`` checks a body."""
    if isinstance(body, Unreadable):
        return RejectedLine(number, [{"field": body.field, "message": body.message, "type": "format"}])
    if not isinstance(body, dict):
        return RejectedLine(number, [{"field": "body", "message": "not a JSON object", "type": "json"}])
    try:
        return AcceptedLine(number, parse_document_request(body, rt))
    except ProblemError as problem:
        errors = problem.problem.errors or [FieldError(field="body", message="invalid", type="invalid")]
        return RejectedLine(number, [error.model_dump() for error in errors])


def _store(rt: Runtime, batch_id: uuid.UUID, lines: list[tuple[int, object]]) -> None:
    checked = [_validate(number, body, rt) for number, body in lines]
    with rt.db.session() as session:
        add_lines(
            session,
            batch_id,
            [item for item in checked if isinstance(item, AcceptedLine)],
            [item for item in checked if isinstance(item, RejectedLine)],
        )


@router.post("", status_code=202, response_model=BatchView)
async def create_batch(
    request: Request,
    response: Response,
    key: Annotated[ApiKey, Depends(require("batches:write"))],
    mode: Annotated[Literal["partial", "all-or-nothing"], Query()] = "partial",
    callback_url: Annotated[
        str | None, Query(max_length=2000, description="POSTed a signed event when the run finishes")
    ] = None,
    mapping: Annotated[
        str | None,
        Query(max_length=100_000, description="CSV only: JSON object from request field path to column"),
    ] = None,
) -> BatchView:
    """Accept a bulk run, streamed: NDJSON, one ``POST /v1/documents`` body per line, or CSV, one
    document per row, with ``mapping`` naming the column (or constant) of each request field.

    Each line is validated on its own; rejected lines are reported with their number and the
    invalid fields while the valid ones proceed (``mode=all-or-nothing``: nothing proceeds
    when a line is rejected, and the answer is 422).
    """
    rt: Runtime = request.app.state.runtime
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == CSV_TYPE:
        if mapping is None:
            raise validation_problem(
                [FieldError(field="mapping", message="a CSV run needs a column mapping", type="missing")]
            )
        try:
            columns = parse_mapping(mapping)
        except MappingError as error:
            raise validation_problem(
                [FieldError(field="mapping", message=str(error), type="mapping")]
            ) from None
        bodies = _csv_bodies(_lines(request), columns)
    elif media_type in NDJSON_TYPES:
        bodies = _ndjson_bodies(_lines(request))
    else:
        raise ProblemError(
            415,
            "Unsupported media type",
            f"send the run as {NDJSON_TYPES[0]} (one JSON document request per line) or as {CSV_TYPE}"
            " with a column mapping",
            slug="unsupported-media-type",
        )
    if callback_url is not None and (problems := callback_problems(callback_url, rt)):
        raise validation_problem(problems)
    with rt.db.session() as session:
        batch_id = open_batch(
            session,
            api_key_id=key.id,
            source_format="csv" if media_type == CSV_TYPE else "ndjson",
            all_or_nothing=mode == "all-or-nothing",
            callback_url=callback_url,
        )
    try:
        chunk: list[tuple[int, object]] = []
        async for number, body in bodies:
            chunk.append((number, body))
            if len(chunk) == CHUNK_LINES:
                await asyncio.to_thread(_store, rt, batch_id, chunk)
                chunk = []
        await asyncio.to_thread(_store, rt, batch_id, chunk)
    except BaseException:
        # A broken upload leaves nothing half-written: the batch keeps no document.
        with rt.db.session() as session:
            abort_batch(session, batch_id)
        raise
    try:
        # Before closing: if the queue is unreachable the batch is still open and can be aborted.
        # Expanding a batch that closing then rejects finds no document to send.
        request.app.state.expand_batch(batch_id)
    except Exception as error:
        with rt.db.session() as session:
            abort_batch(session, batch_id)
        log.error("enqueue failed", batch_id=str(batch_id), error=type(error).__name__)
        raise ProblemError(
            503,
            "Queue unavailable",
            "the batch was not accepted; retry later",
            slug="queue-unavailable",
            headers={"Retry-After": "5"},
        ) from None
    with rt.db.session() as session:
        status = close_batch(session, batch_id).status
    log.info("batch accepted", batch_id=str(batch_id), status=status, api_key=key.id)
    view = _view(rt, batch_id)
    if status == REJECTED and view.rejected:
        raise ProblemError(
            422,
            "Batch rejected",
            f"{view.rejected} line(s) rejected; nothing was queued",
            slug="batch-rejected",
            errors=[
                FieldError(
                    field=f"line {item['line']}: {error['field']}",
                    message=error["message"],
                    type=error["type"],
                )
                for item in view.rejected_lines
                for error in item["errors"]
            ],
        )
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    return view


def _view(rt: Runtime, batch_id: uuid.UUID) -> BatchView:
    with rt.db.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise ProblemError(404, "Not found", f"no batch {batch_id}", slug="not-found")
        counts = document_counts(session, batch_id)
        rejections = session.scalars(
            select(BatchRejection)
            .where(BatchRejection.batch_id == batch_id)
            .order_by(BatchRejection.line)
            .limit(REJECTIONS_SHOWN)
        )
        shown = [{"line": r.line, "errors": r.errors} for r in rejections]
        final = counts["delivered"] + counts["failed"]
        rate = eta = None
        if batch.received_at is not None and final:
            elapsed = ((batch.finished_at or utcnow()) - batch.received_at).total_seconds()
            rate = final / elapsed if elapsed > 0 else None
            eta = (batch.accepted - final) / rate if rate else None
        return BatchView(
            id=batch.id,
            status=batch.status,
            lines=batch.lines,
            accepted=batch.accepted,
            rejected=batch.rejected,
            documents=counts,
            rejected_lines=shown,
            created_at=batch.created_at,
            received_at=batch.received_at,
            finished_at=batch.finished_at,
            documents_per_second=rate,
            eta_seconds=eta,
        )


@router.get("/{batch_id}", response_model=BatchView)
def get_batch(
    request: Request, batch_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("batches:write"))]
) -> BatchView:
    """Counts per state, rejected lines (the first 1,000) with reasons, throughput and ETA."""
    return _view(request.app.state.runtime, batch_id)


@router.post("/{batch_id}/cancel", response_model=BatchView)
def cancel(
    request: Request, batch_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("batches:write"))]
) -> BatchView:
    """Stop a run: documents not yet rendering fail as ``cancelled``; those under way finish."""
    rt: Runtime = request.app.state.runtime
    with rt.db.session() as session:
        cancelled = cancel_batch(session, batch_id)
    log.info("batch cancelled", batch_id=str(batch_id), documents=cancelled)
    return _view(rt, batch_id)


@router.post("/{batch_id}/retry-failed", status_code=202, response_model=BatchView)
def retry_failed(
    request: Request, batch_id: uuid.UUID, key: Annotated[ApiKey, Depends(require("batches:write"))]
) -> BatchView:
    """Give the run's failed documents another run: those that failed before rendering are
    rendered again, the others retry only their failed deliveries (confirmed ones are never sent
    twice). Cancelled documents and documents whose personal data was purged stay failed."""
    rt: Runtime = request.app.state.runtime
    with rt.db.session() as session:
        if session.get(Batch, batch_id) is None:
            raise ProblemError(404, "Not found", f"no batch {batch_id}", slug="not-found")
        if not reopen_batch(session, batch_id):
            raise ProblemError(
                409, "Conflict", "only a running or finished batch can be retried", slug="conflict"
            )
    request.app.state.retry_batch(batch_id, key.id)
    log.info("batch retry", batch_id=str(batch_id), api_key=key.id)
    return _view(rt, batch_id)


MANIFEST_PAGE = 1000


def _manifest_rows(rt: Runtime, batch_id: uuid.UUID) -> Iterator[bytes]:
    """One JSON line per line of the run, in line order, read a page at a time."""
    after = 0
    while True:
        with rt.db.session() as session:
            page = manifest_page(session, batch_id, after, MANIFEST_PAGE)
        for row in page:
            yield json.dumps(row, separators=(",", ":")).encode() + b"\n"
        if len(page) < MANIFEST_PAGE:
            return
        after = page[-1]["line"]


@router.get(
    "/{batch_id}/manifest",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One line per line"}},
)
def manifest(
    request: Request, batch_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("batches:write"))]
) -> StreamingResponse:
    """The run's result, one JSON line per uploaded line: a document (id, number, status, each
    channel's status and reference) or a rejection (its errors)."""
    rt: Runtime = request.app.state.runtime
    with rt.db.session() as session:
        if session.get(Batch, batch_id) is None:
            raise ProblemError(404, "Not found", f"no batch {batch_id}", slug="not-found")
    return StreamingResponse(_manifest_rows(rt, batch_id), media_type="application/x-ndjson")
