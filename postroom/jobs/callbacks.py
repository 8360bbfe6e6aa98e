"""Callbacks: tell the requester at ``callback_url`` that its document (or bulk run) reached a
final state.

The POST carries a JSON event without personal data, signed with ``POSTROOM_WEBHOOK_SECRET``
(see :mod:`postroom.webhooks`). Delivery is at least once; receivers deduplicate by
``Postroom-Event-Id``. 2xx acknowledges; 408, 429 and 5xx are retried; other answers give up.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from postroom.core.batches import document_counts, record_batch_callback
from postroom.core.documents import callback_due, record_callback
from postroom.core.models import Batch, Document
from postroom.errors import PermanentError, TransientError
from postroom.log import get_logger
from postroom.runtime import Runtime
from postroom.webhooks import SIGNATURE_HEADER, UnsafeCallbackUrl, check_callback_url, sign

log = get_logger(__name__)


class CallbackRefused(PermanentError):
    """The callback cannot be delivered: no secret, an unsafe URL, or a 4xx answer."""

    code = "callback_refused"


class CallbackDeferred(TransientError):
    """The receiver was unreachable or answered 408, 429 or 5xx."""

    code = "callback_deferred"


def document_event(document: Document) -> dict[str, Any]:
    """The callback body: ids, state and per-channel outcome, nothing personal."""
    return {
        "event": f"document.{document.status.value}",
        "id": str(document.id),
        "type": document.type,
        "number": document.number,
        "status": document.status.value,
        "deliveries": [
            {"channel": d.channel, "status": d.status.value, "external_ref": d.external_ref}
            for d in document.deliveries
        ],
        "error": {"code": document.error_code, "detail": document.error_detail}
        if document.error_code
        else None,
        # When the state was reached, not when the callback is sent: every retry carries the same body.
        "occurred_at": (document.delivered_at or document.updated_at).isoformat(),
    }


def notify(rt: Runtime, document_id: uuid.UUID) -> None:
    """POST the final state of a document to its callback URL, once acknowledged."""
    with rt.db.session() as session:
        document = session.get(Document, document_id)
        if document is None or not callback_due(document):
            return
        url, event = str(document.callback_url), document_event(document)
    post_event(rt, url, f"{document_id}:{event['status']}", event)
    with rt.db.session() as session:
        record_callback(session, document_id)
    log.info("callback acknowledged", document_id=str(document_id), status=event["status"])


def batch_event(batch: Batch, documents: dict[str, int]) -> dict[str, Any]:
    """The callback body of a finished bulk run: its counts, nothing personal."""
    assert batch.finished_at is not None
    return {
        "event": f"batch.{batch.status}",
        "id": str(batch.id),
        "status": batch.status,
        "lines": batch.lines,
        "accepted": batch.accepted,
        "rejected": batch.rejected,
        "documents": documents,
        "occurred_at": batch.finished_at.isoformat(),
    }


def notify_batch(rt: Runtime, batch_id: uuid.UUID) -> None:
    """POST a finished run's counts to its callback URL, once acknowledged. A run finished again
    after a retry is a new event."""
    with rt.db.session() as session:
        batch = session.get(Batch, batch_id)
        if batch is None or not batch.callback_url or batch.finished_at is None or batch.callback_sent_at:
            return
        url, event = batch.callback_url, batch_event(batch, document_counts(session, batch_id))
    post_event(rt, url, f"{batch_id}:{event['status']}:{event['occurred_at']}", event)
    with rt.db.session() as session:
        record_batch_callback(session, batch_id)
    log.info("callback acknowledged", batch_id=str(batch_id), status=event["status"])


def post_event(rt: Runtime, url: str, event_id: str, event: dict[str, Any]) -> None:
    """POST a signed event; returns once the receiver acknowledged it with a 2xx."""
    secret = rt.settings.webhook_secret
    if secret is None:
        raise CallbackRefused("no POSTROOM_WEBHOOK_SECRET is configured to sign callbacks")
    try:
        check_callback_url(url, allow_private=rt.settings.callback_allow_private_networks)
    except UnsafeCallbackUrl as error:
        raise CallbackRefused(str(error)) from None
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Postroom-Event-Id": event_id,
        SIGNATURE_HEADER: sign(secret.get_secret_value(), body),
    }
    try:
        response = httpx.post(
            url, content=body, headers=headers, timeout=rt.settings.callback_timeout_seconds
        )
    except httpx.HTTPError as error:
        raise CallbackDeferred(f"callback receiver unreachable ({type(error).__name__})") from None
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise CallbackDeferred(f"callback receiver answered {response.status_code}")
    if not response.is_success:
        raise CallbackRefused(f"callback receiver answered {response.status_code}")
