"""What the core's routes share: the business day, enqueuing the core's documents after commit,
history views and the mapping of core errors to problem details."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from postroom.api.problems import FieldError, Problem, field_errors, problem_response
from postroom.core.billing import history
from postroom.core.billing.collection import CollectionRefused
from postroom.core.billing.commissions import CommissionStateError
from postroom.core.billing.followups import FollowupError
from postroom.core.billing.invoices import InvoiceStateError
from postroom.core.billing.orders import OrderStateError
from postroom.core.billing.outbox import DocumentRefused, IssuerMissing, Outbox
from postroom.core.billing.parties import PartyPurged
from postroom.core.billing.payments import PaymentError
from postroom.core.camt import CamtError
from postroom.core.documents import IdempotencyConflict
from postroom.core.states import IllegalTransition
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)


def runtime_of(request: Request) -> Runtime:
    """This app's runtime."""
    rt: Runtime = request.app.state.runtime
    return rt


def business_day(rt: Runtime) -> date:
    """Today in the business's time zone: the issue date of what the core issues now."""
    return rt.settings.business_day()


def enqueue(request: Request, outbox: Outbox) -> None:
    """Send the core's committed documents to rendering and its bulk runs to expansion. A
    document that cannot be enqueued now stays ``queued`` and is picked up by the scheduler's
    sweep of stale queued documents, a run by the sweep of unexpanded runs."""
    for document_id in outbox.document_ids:
        try:
            request.app.state.enqueue_render(document_id)
        except Exception as error:
            log.error("enqueue failed", document_id=str(document_id), error=type(error).__name__)
    for batch_id in outbox.batch_ids:
        try:
            request.app.state.expand_batch(batch_id)
        except Exception as error:
            log.error("enqueue failed", batch_id=str(batch_id), error=type(error).__name__)


class HistoryEntry(BaseModel):
    """One recorded transition."""

    at: datetime
    action: str
    actor: str
    reason: str | None
    before: str | None
    after: str | None
    detail: dict[str, Any]


def history_view(session: Session, entity: str, entity_id: uuid.UUID) -> list[HistoryEntry]:
    """An entity's history, oldest first."""
    return [
        HistoryEntry(
            at=event.at,
            action=event.action,
            actor=event.actor,
            reason=event.reason,
            before=event.before,
            after=event.after,
            detail=event.detail,
        )
        for event in history.history(session, entity, entity_id)
    ]


_CONFLICTS: tuple[type[Exception], ...] = (
    OrderStateError,
    InvoiceStateError,
    PaymentError,
    CommissionStateError,
    FollowupError,
    IllegalTransition,
    IssuerMissing,
    PartyPurged,
    IdempotencyConflict,
    CollectionRefused,
)


def install_core_errors(app: FastAPI) -> None:
    """Answer the core's refusals as problem details: 409 for a state that forbids the step,
    422 for content the document or the bank file lacks."""

    async def on_conflict(_: Request, error: Exception) -> JSONResponse:
        findings = getattr(error, "findings", [])
        errors = [
            FieldError(field=f["field"], message=f["message"], type=f["code"]) for f in findings
        ] or None
        slug = type(error).__name__.lower()
        return problem_response(
            Problem(
                type=f"urn:postroom:problem:{slug}",
                title="Conflict",
                status=409,
                detail=str(error),
                errors=errors,
            )
        )

    async def on_refused(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DocumentRefused)
        errors = field_errors(error.errors)
        return problem_response(
            Problem(
                type="urn:postroom:problem:document-content",
                title="Document content missing",
                status=422,
                detail=str(error),
                errors=errors,
            )
        )

    async def on_camt(_: Request, error: Exception) -> JSONResponse:
        return problem_response(
            Problem(
                type="urn:postroom:problem:bank-file",
                title="Unreadable bank file",
                status=422,
                detail=str(error),
            )
        )

    for kind in _CONFLICTS:
        app.add_exception_handler(kind, on_conflict)
    app.add_exception_handler(DocumentRefused, on_refused)
    app.add_exception_handler(CamtError, on_camt)
