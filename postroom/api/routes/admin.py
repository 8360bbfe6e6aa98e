"""``/v1/admin``: operating the job system (dead letters)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from postroom.api.auth import require
from postroom.api.problems import ProblemError
from postroom.jobs.broker import QUEUES
from postroom.jobs.dead_letters import DeadLetter, dead_letters, requeue
from postroom.log import get_logger
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = get_logger(__name__)


class RequeueRequest(BaseModel):
    """Which dead letters to send again: these message ids, or every one (of ``queues``)."""

    message_ids: list[str] = Field(default_factory=list, max_length=10_000)
    all: bool = False
    queues: list[str] = Field(default_factory=lambda: list(QUEUES))


class RequeueResult(BaseModel):
    """How many dead letters went back on their queues."""

    requeued: int


def _client(request: Request) -> Any:
    client = getattr(request.app.state.broker, "client", None)
    if client is None:
        raise ProblemError(503, "No broker", "no Redis broker is configured", slug="no-broker")
    return client


@router.get("/dead-letters", response_model=list[DeadLetter])
def list_dead_letters(
    request: Request, _: Annotated[ApiKey, Depends(require("admin"))], queue: str | None = None
) -> list[DeadLetter]:
    """Dead letters, oldest first (optionally of one queue): where, for what (ids only), since when."""
    return dead_letters(_client(request), [queue] if queue else QUEUES)


@router.post("/dead-letters/requeue", response_model=RequeueResult)
def requeue_dead_letters(
    request: Request, body: RequeueRequest, key: Annotated[ApiKey, Depends(require("admin"))]
) -> RequeueResult:
    """Send dead letters again with fresh retries; every actor is idempotent, so this is safe."""
    if not body.all and not body.message_ids:
        raise ProblemError(422, "Nothing chosen", "give message_ids or set all", slug="validation")
    client = _client(request)
    chosen: list[DeadLetter] = [
        letter
        for letter in dead_letters(client, body.queues)
        if body.all or letter.message_id in body.message_ids
    ]
    sent = requeue(request.app.state.broker, client, chosen)
    log.info("dead letters requeued", count=sent, api_key=key.id)
    return RequeueResult(requeued=sent)
