"""The job steps in-process on the real services: each is safe to run again (at-least-once delivery)."""

from __future__ import annotations

import copy
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import func, select

from postroom.core.documents import (
    claim_for_sending,
    fail_delivery,
    record_handoff,
    retry_failed_document,
    stalled_fallbacks,
    submit_document,
)
from postroom.core.models import (
    ArchiveEntry,
    ArchiveEvent,
    Delivery,
    Document,
    PrintBatch,
    PrintPiece,
    RenderedVariant,
    utcnow,
)
from postroom.core.spool import NotHeld
from postroom.core.states import DeliveryStatus, DocumentStatus
from postroom.documents.types.invoice import InvoiceRequest
from postroom.embedded.smtp_sink import SmtpSink
from postroom.jobs import delivery, printing, rendering
from postroom.renderer.engine import TemplateError
from postroom.runtime import Runtime, runtime
from tests.conftest import example


@pytest.fixture
def rt(hub_env: dict[str, str]) -> Runtime:
    return runtime()


def queued_document(rt: Runtime, channels: list[str] | None = None, template: str | None = None) -> uuid.UUID:
    body = copy.deepcopy(example("invoice"))
    body["data"]["number"] = f"RE-J-{uuid.uuid4().hex[:10]}"
    if channels is not None:
        body["channels"] = channels
    if template is not None:
        body["template"] = template
    with rt.db.session() as session:
        return submit_document(
            session, InvoiceRequest.model_validate(body), api_key_id="jobs", idempotency_key=None
        ).document.id


def emails_for(sink: SmtpSink, document_id: uuid.UUID) -> int:
    return sum(
        message_from_bytes(path.read_bytes(), policy=default)["X-Postroom-Document"] == str(document_id)
        for path in sink.messages()
    )


def test_rendering_twice_opens_each_delivery_once(rt: Runtime) -> None:
    document_id = queued_document(rt)
    first = rendering.render_document(rt, document_id)
    again = rendering.render_document(rt, document_id)  # a redelivered message after a crash
    assert len(first) == 2
    assert sorted(again) == sorted(first)
    with rt.db.session() as session:
        deliveries = session.scalar(select(func.count()).where(Delivery.document_id == document_id))
        variants = session.scalar(select(func.count()).where(RenderedVariant.document_id == document_id))
        assert session.get_one(Document, document_id).status is DocumentStatus.DELIVERING
    assert (deliveries, variants) == (2, 2)
    with rt.db.session() as session:  # what the recipient is mailed is what the archive keeps
        sha256 = {v.variant: v.sha256 for v in session.get_one(Document, document_id).variants}
    assert sha256["email"] == sha256["archive"]


def test_delivering_twice_sends_one_email(rt: Runtime, smtp_sink: SmtpSink) -> None:
    document_id = queued_document(rt)
    for delivery_id in rendering.render_document(rt, document_id):
        delivery.deliver(rt, delivery_id)
        assert delivery.deliver(rt, delivery_id) is None  # already confirmed: nothing to do
    assert emails_for(smtp_sink, document_id) == 1
    with rt.db.session() as session:
        document = session.get_one(Document, document_id)
        assert document.status is DocumentStatus.DELIVERED
        assert {d.status for d in document.deliveries} == {DeliveryStatus.CONFIRMED}
        assert all(d.attempts == 1 for d in document.deliveries)
    assert rendering.render_document(rt, document_id) == []


def test_a_lost_spool_file_is_retried_and_releases_the_lease(rt: Runtime) -> None:
    document_id = queued_document(rt, channels=["archive"])
    [delivery_id] = rendering.render_document(rt, document_id)
    rt.spool.discard(document_id)
    with pytest.raises(LookupError):
        delivery.deliver(rt, delivery_id)
    with rt.db.session() as session:
        row = session.get_one(Delivery, delivery_id)
        assert row.status is DeliveryStatus.SENDING
        assert row.lease_expires_at is None
        assert row.error_code == "internal_error"
        assert row.error_detail == "NotHeld"


def test_an_unusable_print_piece_leaves_its_batch_and_the_others_go(rt: Runtime) -> None:
    """A print variant gone bad in the spool fails its own delivery; it cannot hold up the cut-off."""
    spoiled, sound = queued_document(rt, ["print"]), queued_document(rt, ["print"])
    for document_id in (spoiled, sound):
        for delivery_id in rendering.render_document(rt, document_id):
            delivery.deliver(rt, delivery_id)
    rt.spool.path(spoiled, "print").write_bytes(b"%PDF-1.7 not really")
    outcome = printing.cut_print_batches(rt)
    assert outcome.final_documents == [spoiled]
    assert outcome.replacements == []  # print has no fallback
    with rt.db.session() as session:
        document = session.get_one(Document, spoiled)
        assert document.status is DocumentStatus.FAILED
        [failed] = document.deliveries
        assert (failed.status, failed.error_code) == (DeliveryStatus.FAILED, "print_unusable")
        assert (failed.error_detail or "").endswith(
            "unusable: its print variant does not match the recorded SHA-256"
        )
        pieces = session.scalars(select(PrintPiece).where(PrintPiece.batch_id.in_(outcome.batches))).all()
        assert spoiled not in {piece.document_id for piece in pieces}
        assert sound in {piece.document_id for piece in pieces}
        assert sorted(piece.piece_no or 0 for piece in pieces) == list(range(1, len(pieces) + 1))
        batch = session.get_one(PrintBatch, outcome.batches[-1])
        assert batch.status == "handed_off"
    # Concluding the failed document would purge its spool; the bad file must not outlive the test
    # (the end-to-end tests read every PDF under the var folder when they look for personal data).
    rt.spool.discard(spoiled)


INLINE = frozenset({"archive", "print"})


def test_a_group_is_rendered_and_handed_off_together_and_a_failure_stays_its_own(rt: Runtime) -> None:
    """A bulk run's group: claimed, recorded and handed off in a transaction or two for all, yet a
    document that cannot be rendered or a hand-off that fails holds up none of the others, and
    repeating the group (a redelivered message) neither renders nor archives nor queues twice."""
    sound = [queued_document(rt, ["archive", "print"]) for _ in range(4)]
    broken = queued_document(rt, ["archive", "print"], template="no_such_template")
    group = rendering.render_documents(rt, [*sound, broken])
    assert set(group.pending) == set(sound)
    assert all(
        sorted(channel for _, channel in pending) == ["archive", "print"]
        for pending in group.pending.values()
    )
    assert list(group.failed) == [broken]
    assert isinstance(group.failed[broken], TemplateError)
    for document_id in sound:  # one rendering, spooled once, the print variant a link to it
        archive, printed = rt.spool.path(document_id, "archive"), rt.spool.path(document_id, "print")
        assert archive.stat().st_ino == printed.stat().st_ino
    lost, *handed = sound
    rt.spool.discard(lost)

    handoff = delivery.deliver_documents(rt, sound, INLINE, "message-1")
    assert handoff.final_documents == []  # the letters wait for the letter shop
    lost_deliveries = {id_ for id_, _ in group.pending[lost]}
    assert set(handoff.failed) == lost_deliveries
    assert all(isinstance(error, NotHeld) for error in handoff.failed.values())

    again = rendering.render_documents(rt, sound)  # the message again, after a crash
    assert again.failed == {}
    assert again.pending == {lost: group.pending[lost], **{id_: [] for id_ in handed}}
    assert delivery.deliver_documents(rt, handed, INLINE, "message-1").failed == {}
    with rt.db.session() as session:
        for document_id in handed:
            document = session.get_one(Document, document_id)
            assert document.status is DocumentStatus.DELIVERING
            states = {d.channel: (d.status, d.attempts) for d in document.deliveries}
            assert states == {"archive": (DeliveryStatus.CONFIRMED, 1), "print": (DeliveryStatus.SENT, 1)}
            assert session.get(ArchiveEntry, document_id) is not None
            pieces = select(func.count()).where(PrintPiece.document_id == document_id)
            assert session.scalar(pieces) == 1
        writes = select(ArchiveEvent.subject, func.count()).where(ArchiveEvent.kind == "archive.write")
        written = dict(
            session.execute(
                writes.where(ArchiveEvent.subject.in_([str(i) for i in sound])).group_by(ArchiveEvent.subject)
            ).all()
        )
        assert written == {str(document_id): 1 for document_id in handed}
        for row in session.scalars(select(Delivery).where(Delivery.id.in_(lost_deliveries))):
            assert (row.status, row.lease_expires_at, row.error_detail) == (
                DeliveryStatus.SENDING,
                None,
                "NotHeld",
            )
        assert session.get_one(Document, broken).status is DocumentStatus.RENDERING  # the caller decides


def test_a_group_message_gives_up_a_document_it_cannot_render_and_renders_the_rest(rt: Runtime) -> None:
    from postroom.jobs import actors

    sound = [queued_document(rt, ["archive"]) for _ in range(2)]
    broken = queued_document(rt, ["archive"], template="no_such_template")
    actors.render_bulk_group([str(document_id) for document_id in [*sound, broken]])
    with rt.db.session() as session:
        failed = session.get_one(Document, broken)
        assert (failed.status, failed.error_code) == (DocumentStatus.FAILED, "template_error")
        for document_id in sound:
            assert session.get_one(Document, document_id).status is DocumentStatus.DELIVERED


def test_a_fallback_whose_message_was_lost_is_found_again(rt: Runtime) -> None:
    document_id = queued_document(rt, ["email", "archive"])
    rendering.render_document(rt, document_id)
    with rt.db.session() as session:
        email = next(d for d in session.get_one(Document, document_id).deliveries if d.channel == "email")
        replacement = fail_delivery(
            session, email.id, "delivery_rejected", "SMTP 550", fallbacks=rt.fallbacks
        )
        assert replacement is not None
        replacement_id = replacement.id
    with rt.db.session() as session:
        assert replacement_id not in stalled_fallbacks(session, utcnow() - timedelta(minutes=5))
        session.get_one(Delivery, replacement_id).created_at = utcnow() - timedelta(minutes=6)
    with rt.db.session() as session:
        assert replacement_id in stalled_fallbacks(session, utcnow() - timedelta(minutes=5))
    delivery.deliver(rt, replacement_id)  # sent again: queued for print, no longer stalled
    with rt.db.session() as session:
        assert replacement_id not in stalled_fallbacks(session, utcnow() - timedelta(minutes=5))


def test_deliveries_of_one_document_confirmed_at_once_neither_deadlock_nor_miss(rt: Runtime) -> None:
    """Two workers confirming the two deliveries of a document at the same moment, many times:
    every document ends delivered and no transaction is chosen as a deadlock victim."""
    documents = {}
    for _ in range(20):
        document_id = queued_document(rt, ["email", "archive"])
        deliveries = rendering.render_document(rt, document_id)
        with rt.db.session() as session:
            for delivery_id in deliveries:
                claim_for_sending(session, delivery_id, timedelta(minutes=5))
        documents[document_id] = deliveries
    barrier = threading.Barrier(2)

    def confirm(delivery_id: uuid.UUID) -> None:
        barrier.wait()
        with rt.db.session() as session:
            record_handoff(session, delivery_id, f"ref-{delivery_id}", confirmed=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for deliveries in documents.values():
            for future in [pool.submit(confirm, delivery_id) for delivery_id in deliveries]:
                future.result()
    with rt.db.session() as session:
        statuses = {session.get_one(Document, document_id).status for document_id in documents}
    assert statuses == {DocumentStatus.DELIVERED}


def test_retrying_a_failed_document_resends_only_what_failed(rt: Runtime, smtp_sink: SmtpSink) -> None:
    document_id = queued_document(rt, ["email", "archive"])
    for delivery_id in rendering.render_document(rt, document_id):
        with rt.db.session() as session:
            channel = session.get_one(Delivery, delivery_id).channel
        if channel == "archive":
            delivery.deliver(rt, delivery_id)
            archive_id = delivery_id
        else:
            email_id = delivery_id
    with rt.db.session() as session:  # the mail server was down for a day: given up, no fallback
        fail_delivery(session, email_id, "expired", "not processed within the job's maximum age")
        assert session.get_one(Document, document_id).status is DocumentStatus.FAILED
    with rt.db.session() as session:
        retry = retry_failed_document(session, document_id, actor="clerk")
    assert retry is not None
    assert (retry.render, retry.deliveries) == (False, [email_id])
    delivery.deliver(rt, email_id)
    with rt.db.session() as session:
        document = session.get_one(Document, document_id)
        assert document.status is DocumentStatus.DELIVERED
        archive = session.get_one(Delivery, archive_id)
        assert (archive.status, archive.attempts) == (DeliveryStatus.CONFIRMED, 1)  # not sent again
        email = session.get_one(Delivery, email_id)
        assert [event.event for event in email.events][-5:] == [
            "failed",
            "retried",
            "sending",
            "sent",
            "confirmed",
        ]
        assert retry_failed_document(session, document_id, actor="clerk") is None  # not failed now
    assert emails_for(smtp_sink, document_id) == 1
