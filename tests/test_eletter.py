"""The e-letter channel against the provider simulator on loopback, with the hub's real database,
webhook endpoint (served by uvicorn) and polling fallback."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from postroom.channels.base import DeliveryDeferred, DeliveryRejected, Handoff, HandoffReceipt
from postroom.channels.eletter import SIGNATURE_HEADER, ELetterChannel, ProviderBusy, eletter_supports
from postroom.channels.preflight import PreflightFailed, PreflightLimits
from postroom.core.documents import claim_for_sending, submit_document
from postroom.core.models import Delivery, Document
from postroom.core.states import DeliveryStatus, DocumentStatus
from postroom.documents.types.invoice import InvoiceRequest
from postroom.embedded.eletter_provider import AsgiServer, ELetterProvider
from postroom.jobs import delivery, rendering
from postroom.jobs.eletter import Change, poll_eletter
from postroom.runtime import Runtime
from postroom.settings import get_settings
from postroom.webhooks import sign
from tests.conftest import WRITER_KEY, example, example_handoff
from tests.pdf_checks import render_example

CLIENT_ID = "postroom-test"
CLIENT_SECRET = "eletter-client-secret"
HOOK_SECRET = "eletter-webhook-secret"


@pytest.fixture(scope="module")
def provider() -> Iterator[ELetterProvider]:
    with ELetterProvider(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_secret=HOOK_SECRET, webhook_backoff=0.05
    ) as server:
        yield server


@pytest.fixture(scope="module")
def rt(hub_env: dict[str, str], provider: ELetterProvider) -> Runtime:
    settings = get_settings().model_copy(
        update={
            "eletter_url": provider.url,
            "eletter_client_id": CLIENT_ID,
            "eletter_client_secret": SecretStr(CLIENT_SECRET),
            "eletter_webhook_secret": SecretStr(HOOK_SECRET),
            "eletter_timeout_seconds": 2.0,
        }
    )
    return Runtime(settings)


@pytest.fixture(scope="module")
def hub(rt: Runtime, provider: ELetterProvider) -> Iterator[str]:
    """The hub's API on loopback; the provider's webhooks go to it."""
    from postroom.api.app import create_app

    with AsgiServer(create_app(rt)) as server:
        provider.webhook_url = f"{server.url}/v1/webhooks/eletter/{rt.settings.eletter_provider}"
        yield server.url


def channel(provider: ELetterProvider, **options: Any) -> ELetterChannel:
    """A fresh channel (own token cache and Retry-After gate)."""
    return ELetterChannel(provider.url, CLIENT_ID, CLIENT_SECRET, **{"timeout": 2.0, **options})


def handoff(delivery_id: uuid.UUID | None = None, **recipient: str) -> Handoff:
    """The example invoice's print variant, for a recipient changed by ``recipient``."""
    return example_handoff(render_example(example("invoice"), "print"), delivery_id=delivery_id, **recipient)


def send(target: ELetterChannel, item: Handoff) -> HandoffReceipt:
    return asyncio.run(target.send(item))


# --- the adapter ------------------------------------------------------------------------------------


def test_a_retried_submit_makes_one_letter(provider: ELetterProvider) -> None:
    target, item = channel(provider), handoff()
    first = send(target, item)
    again = send(target, item)  # the job's retry after a crash: same delivery id
    assert first == again
    assert first == HandoffReceipt(external_ref=first.external_ref, confirmed=False, event="submitted")
    [letter] = provider.letters_for(str(item.delivery_id))
    assert (letter.letter_id, letter.sha256, letter.status) == (first.external_ref, item.sha256, "submitted")
    assert target.tokens_fetched == 1  # cached between the calls


def test_429_defers_with_retry_after_and_the_channel_waits(provider: ELetterProvider) -> None:
    target, item = channel(provider), handoff()
    provider.fail_next("submit", status=429, retry_after="1")
    with pytest.raises(ProviderBusy) as busy:
        send(target, item)
    assert busy.value.retry_after == 1.0
    asked = provider.requests["submit"]
    with pytest.raises(ProviderBusy) as again:
        send(target, item)  # within Retry-After: refused here, the provider is not asked
    assert again.value.retry_after is not None
    assert 0 < again.value.retry_after <= 1.0
    assert provider.requests["submit"] == asked
    time.sleep(1.05)
    receipt = send(target, item)
    letters = provider.letters_for(str(item.delivery_id))
    assert [letter.letter_id for letter in letters] == [receipt.external_ref]

    provider.fail_next("submit", status=503, retry_after=None)
    with pytest.raises(ProviderBusy) as unavailable:
        send(target, handoff())
    assert unavailable.value.retry_after is None
    provider.fail_next("upload", status=500, retry_after=None)
    with pytest.raises(DeliveryDeferred) as deferred:
        send(target, handoff())
    assert not isinstance(deferred.value, ProviderBusy)
    provider.fail_next("submit", status=400, retry_after=None)
    with pytest.raises(DeliveryRejected, match="400"):
        send(target, handoff())


def test_a_timed_out_submit_retried_makes_one_letter(provider: ELetterProvider) -> None:
    target, item = channel(provider, timeout=0.3), handoff()
    provider.fail_next("submit", status=None, delay=0.6)  # the provider creates the letter late
    with pytest.raises(DeliveryDeferred, match="timed out"):
        send(target, item)
    time.sleep(0.5)
    assert len(provider.letters_for(str(item.delivery_id))) == 1
    receipt = send(target, item)
    [letter] = provider.letters_for(str(item.delivery_id))
    assert letter.letter_id == receipt.external_ref


def test_tokens_are_cached_renewed_before_expiry_and_after_401(provider: ELetterProvider) -> None:
    target, item = channel(provider), handoff()  # built first: only the calls run on the short token
    issued, refused = provider.tokens_issued, provider.unauthorised
    provider.token_ttl = 2.0
    try:
        asyncio.run(target.check())
        send(target, item)
        assert provider.tokens_issued == issued + 1
    finally:
        provider.token_ttl = 3600
    time.sleep(2.0)  # the cached token is due for renewal: a new one is fetched without a 401
    send(target, handoff())
    send(target, handoff())
    assert (provider.tokens_issued, provider.unauthorised) == (issued + 2, refused)
    provider.revoke_tokens()
    send(target, handoff())  # 401 → new token → the call repeated once
    assert (provider.tokens_issued, provider.unauthorised) == (issued + 3, refused + 1)

    wrong = ELetterChannel(provider.url, CLIENT_ID, "wrong-secret", timeout=2.0)
    with pytest.raises(DeliveryDeferred, match="credentials"):
        send(wrong, handoff())


def test_preflight_and_country_refusals_upload_nothing(provider: ELetterProvider, hub_env: Any) -> None:
    target = channel(provider)
    uploads, opened = provider.uploads, provider.requests["upload"]
    with pytest.raises(PreflightFailed, match="window") as mismatch:
        send(target, handoff(name="Jemand Anderes"))
    assert "Jemand" not in str(mismatch.value)
    assert "Mustermann" not in str(mismatch.value)
    with pytest.raises(PreflightFailed, match="exceed"):
        send(channel(provider, limits=PreflightLimits(max_bytes=1000)), handoff())
    with pytest.raises(DeliveryRejected, match="country"):
        send(target, handoff(country="FR", postcode="75001", city="Paris"))
    assert (provider.uploads, provider.requests["upload"]) == (uploads, opened)

    settings = get_settings().model_copy(update={"eletter_url": provider.url})
    assert eletter_supports("at", settings)
    assert not eletter_supports("FR", settings)
    assert not eletter_supports("DE", get_settings().model_copy(update={"eletter_url": None}))


# --- the hub: webhooks, status order, polling ---------------------------------------------------------


def handed_off(rt: Runtime) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A new invoice by e-letter, rendered and submitted: (document id, delivery id, letter id)."""
    body = copy.deepcopy(example("invoice"))
    body["data"]["number"] = f"RE-L-{uuid.uuid4().hex[:10]}"
    body["channels"] = ["eletter"]
    with rt.db.session() as session:
        document_id = submit_document(
            session, InvoiceRequest.model_validate(body), api_key_id="eletter", idempotency_key=None
        ).document.id
    [delivery_id] = rendering.render_document(rt, document_id)
    assert delivery.deliver(rt, delivery_id) is None
    with rt.db.session() as session:
        row = session.get_one(Delivery, delivery_id)
        assert row.status is DeliveryStatus.SENT
        assert row.external_ref is not None
        return document_id, delivery_id, row.external_ref


def state(rt: Runtime, delivery_id: uuid.UUID) -> tuple[DeliveryStatus, DocumentStatus, list[str]]:
    with rt.db.session() as session:
        row = session.get_one(Delivery, delivery_id)
        return row.status, row.document.status, [event.event for event in row.events]


def test_acceptance_confirms_and_later_reports_only_join_the_history(
    rt: Runtime, provider: ELetterProvider, hub: str
) -> None:
    _document_id, delivery_id, letter_id = handed_off(rt)
    assert state(rt, delivery_id)[0] is DeliveryStatus.SENT
    assert len(provider.letters_for(str(delivery_id))) == 1

    accepted = provider.advance(letter_id, "accepted")
    assert accepted is not None
    assert accepted.answers == [204]
    status, document_status, events = state(rt, delivery_id)
    assert (status, document_status) == (DeliveryStatus.CONFIRMED, DocumentStatus.DELIVERED)
    assert events[-1] == "eletter.accepted"

    assert provider.redeliver(accepted) == 204  # the same event again: nothing changes
    assert state(rt, delivery_id)[2] == events

    printed = provider.advance(letter_id, "printed")
    assert printed is not None
    assert printed.answers == [204]
    late = provider.send_event(letter_id, "accepted")  # a new event id, but a step back
    assert late.answers == [204]
    provider.redeliver(printed)
    for step in ("sent", "delivered"):
        provider.advance(letter_id, step)
    provider.send_event(letter_id, "undeliverable")  # after delivered: no further move
    status, document_status, history = state(rt, delivery_id)
    assert (status, document_status) == (DeliveryStatus.CONFIRMED, DocumentStatus.DELIVERED)
    assert history == [*events, "eletter.printed", "eletter.sent", "eletter.delivered"]


def test_webhook_signatures_and_providers(rt: Runtime, provider: ELetterProvider, hub: str) -> None:
    _, delivery_id, letter_id = handed_off(rt)
    body = json.dumps(
        {"event_id": "evt_sig", "letter_id": letter_id, "reference": str(delivery_id), "status": "accepted"}
    ).encode()
    url = f"{hub}/v1/webhooks/eletter/{rt.settings.eletter_provider}"
    attempts = {
        "missing": {},
        "wrong secret": {SIGNATURE_HEADER: sign("another-secret", body)},
        "stale": {SIGNATURE_HEADER: sign(HOOK_SECRET, body, int(time.time()) - 3600)},
        "other body": {SIGNATURE_HEADER: sign(HOOK_SECRET, body + b" ")},
    }
    for name, headers in attempts.items():
        response = httpx.post(url, content=body, headers=headers)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401
    unknown = httpx.post(f"{hub}/v1/webhooks/eletter/nobody", content=body, headers=attempts["stale"])
    assert unknown.status_code == 404
    assert state(rt, delivery_id)[0] is DeliveryStatus.SENT

    signed = {SIGNATURE_HEADER: sign(HOOK_SECRET, body), "Content-Type": "application/json"}
    assert httpx.post(url, content=body, headers=signed).status_code == 204
    assert state(rt, delivery_id)[0] is DeliveryStatus.CONFIRMED
    malformed = b'{"status": "accepted"}'
    response = httpx.post(url, content=malformed, headers={SIGNATURE_HEADER: sign(HOOK_SECRET, malformed)})
    assert response.status_code == 422


def test_a_report_ahead_of_the_handoff_is_answered_409(rt: Runtime, hub: str) -> None:
    body = copy.deepcopy(example("invoice"))
    body["data"]["number"] = f"RE-L-{uuid.uuid4().hex[:10]}"
    body["channels"] = ["eletter"]
    with rt.db.session() as session:
        document_id = submit_document(
            session, InvoiceRequest.model_validate(body), api_key_id="eletter", idempotency_key=None
        ).document.id
    [delivery_id] = rendering.render_document(rt, document_id)
    with rt.db.session() as session:
        claim_for_sending(session, delivery_id, timedelta(0))  # a worker is submitting it right now
    event = json.dumps(
        {"event_id": "evt_early", "letter_id": "ltr_x", "reference": str(delivery_id), "status": "accepted"}
    ).encode()
    response = httpx.post(
        f"{hub}/v1/webhooks/eletter/{rt.settings.eletter_provider}",
        content=event,
        headers={SIGNATURE_HEADER: sign(HOOK_SECRET, event)},
    )
    assert response.status_code == 409
    assert state(rt, delivery_id)[0] is DeliveryStatus.SENDING


def test_rejection_fails_the_delivery_and_opens_the_print_fallback(
    rt: Runtime, provider: ELetterProvider, hub: str
) -> None:
    document_id, delivery_id, letter_id = handed_off(rt)
    rejected = provider.advance(letter_id, "rejected")
    assert rejected is not None
    assert rejected.answers == [204]
    provider.redeliver(rejected)
    with rt.db.session() as session:
        document = session.get_one(Document, document_id)
        by_channel = {d.channel: d for d in document.deliveries}
        assert document.status is DocumentStatus.DELIVERING
        assert by_channel["eletter"].status is DeliveryStatus.FAILED
        assert by_channel["eletter"].error_code == "eletter_rejected"
        assert by_channel["print"].replaces_id == delivery_id
        assert by_channel["print"].status is DeliveryStatus.PENDING
        assert [e.event for e in by_channel["eletter"].events].count("failed") == 1


def test_polling_confirms_when_webhooks_are_lost(rt: Runtime, provider: ELetterProvider, hub: str) -> None:
    provider.drop_webhooks = True
    try:
        _, waiting_id, _ = handed_off(rt)
        document_id, delivery_id, letter_id = handed_off(rt)
        provider.advance(letter_id, "printed")  # accepted was never reported
    finally:
        provider.drop_webhooks = False
    assert state(rt, delivery_id)[0] is DeliveryStatus.SENT

    assert poll_eletter(rt).outcomes == []  # not overdue yet (POSTROOM_ELETTER_POLL_AFTER_SECONDS)
    round_ = poll_eletter(rt, older_than=timedelta(0))
    mine = [outcome for outcome in round_.outcomes if outcome.delivery_id in (waiting_id, delivery_id)]
    assert [(o.delivery_id, o.change, o.final_document) for o in mine] == [
        (delivery_id, Change.CONFIRMED, document_id)
    ]
    status, document_status, events = state(rt, delivery_id)
    assert (status, document_status, events[-1]) == (
        DeliveryStatus.CONFIRMED,
        DocumentStatus.DELIVERED,
        "eletter.printed",
    )
    assert state(rt, waiting_id)[0] is DeliveryStatus.SENT  # still only submitted at the provider
    provider.advance(letter_id, "sent")  # the webhook works again: recorded, state unchanged
    assert state(rt, delivery_id)[2][-1] == "eletter.sent"


def test_automatic_progress_reaches_the_hub(rt: Runtime, provider: ELetterProvider, hub: str) -> None:
    """The demo's mode: the letter moves on by itself; a report that overtakes the hand-off is
    answered 409 and delivered again."""
    provider.auto_advance = 0.05
    try:
        _, delivery_id, letter_id = handed_off(rt)
        deadline = time.monotonic() + 10
        while True:
            hooks = provider.webhooks_for(letter_id)
            if len(hooks) == 4 and all(hook.delivered for hook in hooks):
                break
            assert time.monotonic() < deadline, hooks
            time.sleep(0.05)
    finally:
        provider.auto_advance = None
    status, document_status, events = state(rt, delivery_id)
    assert (status, document_status) == (DeliveryStatus.CONFIRMED, DocumentStatus.DELIVERED)
    assert [e for e in events if e.startswith("eletter.")] == [
        "eletter.accepted",
        "eletter.printed",
        "eletter.sent",
        "eletter.delivered",
    ]


def test_submitting_an_eletter_abroad_is_refused_with_the_channel_path(hub: str) -> None:
    body = copy.deepcopy(example("invoice"))
    body["channels"] = ["archive", "eletter"]
    body["recipient"].update(country="FR", postcode="75001", city="Paris")
    headers = {"Authorization": f"Bearer {WRITER_KEY}"}
    response = httpx.post(f"{hub}/v1/documents", json=body, headers=headers, timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "channels[1]", "message": "the e-letter provider does not post to FR", "type": "channel"}
    ]
