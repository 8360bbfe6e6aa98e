"""Dramatiq actors. Each is a thin wrapper: one step, this process's runtime, ids in, ids out.

Importing this module installs the broker from the settings, so it must be imported
before any other module declares actors.
"""

from __future__ import annotations

import uuid

import dramatiq

from postroom.core.documents import fail_delivery, fail_document
from postroom.errors import PermanentError, safe_detail
from postroom.jobs import delivery, rendering
from postroom.jobs.broker import DELIVERIES_QUEUE, DOCUMENTS_QUEUE, install_broker
from postroom.runtime import runtime
from postroom.settings import get_settings

settings = get_settings()
broker = install_broker(settings)

MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 300_000


def _reason(error: BaseException | None) -> tuple[str, str]:
    if error is None:
        return "expired", "not processed within the job's maximum age"
    return safe_detail(error)


def _render_given_up(document_id: str, *, error: BaseException | None) -> None:
    with runtime().db.session() as session:
        fail_document(session, uuid.UUID(document_id), *_reason(error))


def _delivery_given_up(delivery_id: str, *, error: BaseException | None) -> None:
    with runtime().db.session() as session:
        fail_delivery(session, uuid.UUID(delivery_id), *_reason(error))


@dramatiq.actor(
    queue_name=DELIVERIES_QUEUE,
    time_limit=settings.delivery_timeout_seconds * 1000,
    max_retries=settings.job_max_retries,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    max_age=settings.job_max_age_seconds * 1000,
    throws=(PermanentError,),
    on_give_up=_delivery_given_up,
)
def deliver(delivery_id: str) -> None:
    """Hand one delivery to its channel."""
    delivery.deliver(runtime(), uuid.UUID(delivery_id))


@dramatiq.actor(
    queue_name=DOCUMENTS_QUEUE,
    time_limit=settings.render_timeout_seconds * 1000,
    max_retries=settings.job_max_retries,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    max_age=settings.job_max_age_seconds * 1000,
    throws=(PermanentError,),
    on_give_up=_render_given_up,
)
def render_document(document_id: str) -> None:
    """Render a document, then enqueue one ``deliver`` message per channel."""
    for delivery_id in rendering.render_document(runtime(), uuid.UUID(document_id)):
        deliver.send(str(delivery_id))
