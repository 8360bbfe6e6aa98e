"""State changes of documents and deliveries on PostgreSQL."""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from postroom.core.db import Database
from postroom.core.documents import (
    DeliveryBusy,
    TemplateChanged,
    TemplateUse,
    VariantRecord,
    claim_for_rendering,
    claim_for_sending,
    fail_delivery,
    record_handoff,
    record_rendering,
    record_template_use,
    submit_document,
)
from postroom.core.models import Delivery, Document, utcnow
from postroom.core.states import DeliveryStatus, DocumentStatus, IllegalTransition, check_document_transition
from postroom.documents.types.invoice import InvoiceRequest
from postroom.runtime import runtime
from tests.conftest import example

LEASE = timedelta(minutes=5)


@pytest.fixture
def db(hub_env: dict[str, str]) -> Database:
    return runtime().db


def new_request() -> InvoiceRequest:
    body = copy.deepcopy(example("invoice"))
    body["data"]["number"] = f"RE-C-{uuid.uuid4().hex[:10]}"
    return InvoiceRequest.model_validate(body)


def rendered_document(db: Database) -> uuid.UUID:
    with db.session() as session:
        document_id = submit_document(
            session, new_request(), api_key_id="t", idempotency_key=None
        ).document.id
    with db.session() as session:
        document = claim_for_rendering(session, document_id)
        assert document is not None
        record_rendering(
            session,
            document,
            TemplateUse(f"core-{uuid.uuid4().hex[:8]}", 1, "typst", "a" * 64),
            [VariantRecord("email", "b" * 64, 10, 1), VariantRecord("archive", "c" * 64, 10, 1)],
            {"email": "email", "archive": "archive"},
        )
    return document_id


def deliveries(db: Database, document_id: uuid.UUID) -> dict[str, uuid.UUID]:
    with db.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.document_id == document_id))
        return {row.channel: row.id for row in rows}


def status(db: Database, document_id: uuid.UUID) -> DocumentStatus:
    with db.session() as session:
        return session.get_one(Document, document_id).status


def test_states_never_move_backwards() -> None:
    check_document_transition(DocumentStatus.QUEUED, DocumentStatus.RENDERING)
    with pytest.raises(IllegalTransition):
        check_document_transition(DocumentStatus.DELIVERED, DocumentStatus.DELIVERING)
    with pytest.raises(IllegalTransition):
        check_document_transition(DocumentStatus.RENDERED, DocumentStatus.QUEUED)


def test_document_is_delivered_when_every_delivery_is_confirmed(db: Database) -> None:
    document_id = rendered_document(db)
    assert status(db, document_id) is DocumentStatus.DELIVERING
    ids = deliveries(db, document_id)
    for channel, delivery_id in ids.items():
        with db.session() as session:
            assert claim_for_sending(session, delivery_id, LEASE) is not None
        with db.session() as session:
            record_handoff(session, delivery_id, f"ref-{channel}", confirmed=True)
        expected = DocumentStatus.DELIVERED if channel == sorted(ids)[-1] else DocumentStatus.DELIVERING
        assert status(db, document_id) is expected


def test_sent_but_unconfirmed_keeps_the_document_delivering(db: Database) -> None:
    document_id = rendered_document(db)
    for delivery_id in deliveries(db, document_id).values():
        with db.session() as session:
            claim_for_sending(session, delivery_id, LEASE)
            record_handoff(session, delivery_id, "ref", confirmed=False)
    assert status(db, document_id) is DocumentStatus.DELIVERING


def test_a_leased_delivery_is_not_sent_twice(db: Database) -> None:
    delivery_id = deliveries(db, rendered_document(db))["email"]
    with db.session() as session:
        assert claim_for_sending(session, delivery_id, LEASE) is not None
    with db.session() as session, pytest.raises(DeliveryBusy):
        claim_for_sending(session, delivery_id, LEASE)
    with db.session() as session:  # the worker holding the lease died: it runs out
        session.get_one(Delivery, delivery_id).lease_expires_at = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        delivery = claim_for_sending(session, delivery_id, LEASE)
        assert delivery is not None
        assert delivery.attempts == 2
    with db.session() as session:
        record_handoff(session, delivery_id, "ref", confirmed=True)
    with db.session() as session:
        assert claim_for_sending(session, delivery_id, LEASE) is None


def test_failed_delivery_fails_the_document(db: Database) -> None:
    document_id = rendered_document(db)
    delivery_id = deliveries(db, document_id)["email"]
    with db.session() as session:
        fail_delivery(session, delivery_id, "delivery_rejected", "SMTP server replied 550")
    with db.session() as session:
        document = session.get_one(Document, document_id)
        assert document.status is DocumentStatus.FAILED
        assert document.error_code == "delivery_email_failed"
        assert session.get_one(Delivery, delivery_id).status is DeliveryStatus.FAILED


def test_a_template_version_cannot_change_its_content(db: Database) -> None:
    template_id = f"t{uuid.uuid4().hex[:8]}"
    with db.session() as session:
        record_template_use(session, TemplateUse(template_id, 1, "typst", "1" * 64))
    with db.session() as session:
        record_template_use(session, TemplateUse(template_id, 1, "typst", "1" * 64))
        record_template_use(session, TemplateUse(template_id, 2, "typst", "2" * 64))
    with db.session() as session, pytest.raises(TemplateChanged, match="needs a new version"):
        record_template_use(session, TemplateUse(template_id, 1, "typst", "3" * 64))


def test_concurrent_submits_with_one_idempotency_key_create_one_document(db: Database) -> None:
    request, key = new_request(), f"race-{uuid.uuid4()}"
    barrier, ids, errors = threading.Barrier(4), [], []

    def submit() -> None:
        try:
            barrier.wait()
            with db.session() as session:
                ids.append(
                    submit_document(session, request, api_key_id="race", idempotency_key=key).document.id
                )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(ids)) == 1
