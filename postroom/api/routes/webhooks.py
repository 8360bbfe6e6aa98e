"""``/v1/webhooks``: status reports pushed by delivery providers (the e-letter provider's letters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from postroom.api.problems import ProblemError, field_errors, validation_problem
from postroom.channels.eletter import SIGNATURE_HEADER, LetterStatus
from postroom.jobs.eletter import Change, apply_report
from postroom.runtime import Runtime
from postroom.webhooks import verify

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 64 * 1024
_ID = r"^[A-Za-z0-9_.:-]+$"

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"content": {"application/problem+json": {}}, "description": text}
    for status, text in {
        401: f"`{SIGNATURE_HEADER}` missing, wrong or stale",
        404: "No e-letter provider of that name is configured",
        409: "The delivery's hand-off is not recorded yet; send the event again later",
        413: "Body too large",
        422: "The event is malformed",
    }.items()
}


class LetterEvent(BaseModel):
    """A provider's status report of one letter (``reference`` is the delivery id given at submit)."""

    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(min_length=1, max_length=100, pattern=_ID)
    letter_id: str = Field(min_length=1, max_length=200, pattern=_ID)
    reference: str | None = Field(default=None, max_length=100)
    status: str = Field(min_length=1, max_length=40)
    occurred_at: datetime | None = None


@router.post(
    "/eletter/{provider}",
    status_code=204,
    response_class=Response,
    responses=_PROBLEMS,
    summary="E-letter status webhook",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LetterEvent.model_json_schema()}},
        }
    },
)
async def eletter_webhook(provider: str, request: Request) -> Response:
    """Apply a signed status report of the e-letter provider.

    The body is signed as ``Eletter-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
    with ``POSTROOM_ELETTER_WEBHOOK_SECRET``. Reports are idempotent: a duplicate or one that arrives
    after a later status changes nothing and is still answered 204.
    """
    rt: Runtime = request.app.state.runtime
    settings = rt.settings
    secret = settings.eletter_webhook_secret
    if not settings.eletter_url or secret is None or provider != settings.eletter_provider:
        raise ProblemError(404, "Not found", "no e-letter provider of that name", slug="unknown_provider")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ProblemError(413, "Body too large", f"at most {MAX_BODY_BYTES} bytes", slug="too_large")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    tolerance = settings.eletter_webhook_tolerance_seconds
    if not verify(secret.get_secret_value(), body, signature, tolerance=tolerance):
        raise ProblemError(
            401, "Invalid signature", f"{SIGNATURE_HEADER} is missing, wrong or stale", slug="signature"
        )
    try:
        event = LetterEvent.model_validate_json(body)
    except ValidationError as error:
        raise validation_problem(field_errors(error.errors(include_input=False))) from None
    report = LetterStatus(letter_id=event.letter_id, reference=event.reference, status=event.status)
    outcome = await run_in_threadpool(apply_report, rt, report, event.event_id)
    if outcome is not None and outcome.change is Change.NOT_READY:
        raise ProblemError(
            409,
            "Not ready",
            "the delivery's hand-off is not recorded yet; send the event again later",
            slug="not_ready",
            headers={"Retry-After": "5"},
        )
    if outcome is not None and (outcome.failure is not None or outcome.final_document is not None):
        await run_in_threadpool(request.app.state.eletter_followup, outcome)
    return Response(status_code=204)
