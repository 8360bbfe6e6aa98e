"""The deliver step: hand one rendered variant to one channel and record the receipt."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import Collection, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from postroom.channels.base import Handoff, HandoffReceipt
from postroom.core.archive_index import ArchivedDocument, record_archived, record_archived_many
from postroom.core.batches import batch_print_group
from postroom.core.documents import (
    DeliveryBusy,
    claim_for_sending,
    claim_locked_for_sending,
    lock_documents,
    note_delivery_error,
    record_handoff,
    record_locked_handoff,
)
from postroom.core.models import Delivery, Document
from postroom.core.states import FINAL_DOCUMENT_STATES
from postroom.documents.catalogue import document_type
from postroom.documents.request import DocumentRequest
from postroom.errors import PermanentError, safe_detail
from postroom.jobs import metrics
from postroom.jobs.rendering import render_variant, stored_request
from postroom.log import bind_ids, get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)
T = TypeVar("T")
_loops = threading.local()


def run_on_thread_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on an event loop this thread keeps between calls.

    ``asyncio.run`` builds a loop and a thread pool per call and joins the pool's threads at its
    end: a thread started and torn down for every hand-off (the channels' blocking work runs in
    ``asyncio.to_thread``), which costs CPU and leaves glibc arenas behind. After an exception the
    loop is closed as ``asyncio.run`` would (its leftover tasks cancelled), and the next call
    starts a fresh one, so nothing of a failed hand-off runs on during a later one.
    """
    runner: asyncio.Runner | None = getattr(_loops, "runner", None)
    if runner is None:
        runner = _loops.runner = asyncio.Runner()
    try:
        return runner.run(coro)
    except BaseException:
        _loops.runner = None
        runner.close()
        raise


class SpoolMismatch(PermanentError):
    """The spooled PDF is not the one that was rendered."""

    code = "spool_mismatch"


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery claimed for one attempt, with what its hand-off needs of the document."""

    delivery_id: uuid.UUID
    document_id: uuid.UUID
    batch_id: uuid.UUID | None
    channel: str
    variant: str
    expected_sha256: str | None
    request: DocumentRequest

    @classmethod
    def of(cls, delivery: Delivery) -> ClaimedDelivery:
        """The claim on ``delivery``, its document (with the request) loaded."""
        document = delivery.document
        variant = document.variant(delivery.variant)
        return cls(
            delivery.id,
            document.id,
            document.batch_id,
            delivery.channel,
            delivery.variant,
            variant.sha256 if variant is not None else None,
            stored_request(document),
        )


def _lease(rt: Runtime) -> timedelta:
    # The lease outlasts the actor's time limit, so a live attempt never loses it.
    return timedelta(seconds=rt.settings.delivery_timeout_seconds + 60)


def deliver(rt: Runtime, delivery_id: uuid.UUID, holder: str | None = None) -> uuid.UUID | None:
    """Send one delivery; transient errors are recorded and re-raised for the job's retry.

    ``holder`` is the job message's id: its redelivery after a worker died takes the lease over
    (see :func:`~postroom.core.documents.claim_for_sending`). Returns the document id when this
    hand-off made the document final.
    """
    with rt.db.session() as session:
        delivery = claim_for_sending(session, delivery_id, _lease(rt), holder)
        if delivery is None:
            return None
        claimed = ClaimedDelivery.of(delivery)
    bind_ids(delivery_id=delivery_id, document_id=claimed.document_id, batch_id=claimed.batch_id)
    handoff, receipt = _hand_off(rt, claimed)
    with rt.db.session() as session:
        document = record_handoff(
            session, delivery_id, receipt.external_ref, confirmed=receipt.confirmed, event=receipt.event
        ).document
        if receipt.stored is not None and receipt.confirmed:
            record_archived(session, _archived(document, handoff, receipt, claimed.request))
        final = document.status in FINAL_DOCUMENT_STATES
    _handed_off(claimed, receipt)
    return claimed.document_id if final else None


@dataclass(frozen=True, slots=True)
class GroupHandoff:
    """What handing off a group's deliveries came to: the documents it made final, and the
    deliveries not handed off, with the error (a :class:`PermanentError` to give up on)."""

    final_documents: list[uuid.UUID]
    failed: dict[uuid.UUID, Exception]


def deliver_documents(
    rt: Runtime, document_ids: Collection[uuid.UUID], channels: Collection[str], holder: str | None
) -> GroupHandoff:
    """:func:`deliver` for the pending deliveries on ``channels`` of a group of documents: one
    transaction claims them all and one records every hand-off, instead of two per delivery.

    A delivery whose hand-off fails is reported with its error and leaves the others alone; its
    lease is released unless the error is permanent, so that it can be sent again on its own.
    """
    failed: dict[uuid.UUID, Exception] = {}
    claims: list[ClaimedDelivery] = []
    with rt.db.session() as session:
        for entry in lock_documents(session, document_ids, for_handoff=True).values():
            for delivery in entry.deliveries:
                if delivery.channel not in channels:
                    continue
                try:
                    if claim_locked_for_sending(delivery, _lease(rt), holder) is not None:
                        claims.append(ClaimedDelivery.of(delivery))
                except DeliveryBusy as error:
                    failed[delivery.id] = error
    ready: list[tuple[ClaimedDelivery, Handoff]] = []
    for claimed in claims:
        bind_ids(delivery_id=claimed.delivery_id, document_id=claimed.document_id, batch_id=claimed.batch_id)
        try:
            ready.append((claimed, _prepared(rt, claimed)))
        except Exception as error:
            _failed(rt, claimed, error)
            failed[claimed.delivery_id] = error
    # All at once: the channels' blocking work (the archive's fsyncs, the print preflight) runs in
    # threads, so one hand-off's wait for the disk need not hold up the next.
    outcomes = run_on_thread_loop(_send_all(rt, ready))
    sent: list[tuple[ClaimedDelivery, Handoff, HandoffReceipt]] = []
    for (claimed, handoff), outcome in zip(ready, outcomes, strict=True):
        if isinstance(outcome, HandoffReceipt):
            sent.append((claimed, handoff, outcome))
        elif isinstance(outcome, Exception):
            _failed(rt, claimed, outcome)
            failed[claimed.delivery_id] = outcome
        else:
            raise outcome
    final: list[uuid.UUID] = []
    if sent:
        with rt.db.session() as session:
            documents = lock_documents(session, {claimed.document_id for claimed, _, _ in sent})
            archived = []
            for claimed, handoff, receipt in sent:
                entry = documents[claimed.document_id]
                handed = entry.delivery(claimed.delivery_id)
                assert handed is not None
                record_locked_handoff(
                    session,
                    entry,
                    handed,
                    receipt.external_ref,
                    confirmed=receipt.confirmed,
                    event=receipt.event,
                )
                if receipt.stored is not None and receipt.confirmed:
                    archived.append(_archived(entry.document, handoff, receipt, claimed.request))
            record_archived_many(session, archived)
            final = [
                id_ for id_, entry in documents.items() if entry.document.status in FINAL_DOCUMENT_STATES
            ]
    for claimed, _, receipt in sent:
        _handed_off(claimed, receipt)
    return GroupHandoff(final, failed)


def _hand_off(rt: Runtime, claimed: ClaimedDelivery) -> tuple[Handoff, HandoffReceipt]:
    """Hand a claimed delivery's PDF to its channel. A transient error is noted on the delivery
    (its lease released for the retry) and re-raised, as is a permanent one."""
    try:
        handoff = _prepared(rt, claimed)
        receipt = run_on_thread_loop(rt.channels[claimed.channel].send(handoff))
    except Exception as error:
        _failed(rt, claimed, error)
        raise
    return handoff, receipt


def _prepared(rt: Runtime, claimed: ClaimedDelivery) -> Handoff:
    """The hand-off of a claimed delivery: its spooled PDF, checked, with what the channel needs;
    the channel's rate limit waited for."""
    doc_type = document_type(claimed.request.type)
    request, document_id, variant_name = claimed.request, claimed.document_id, claimed.variant
    expected_sha256 = claimed.expected_sha256
    if expected_sha256 is None:
        # A fallback channel may need a variant the first render did not make.
        expected_sha256 = render_variant(rt, document_id, variant_name)
    pdf = rt.spool.read(document_id, variant_name)
    if hashlib.sha256(pdf).hexdigest() != expected_sha256:
        raise SpoolMismatch(
            f"spooled {variant_name} PDF of document {document_id} does not match its SHA-256"
        )
    handoff = Handoff(
        delivery_id=claimed.delivery_id,
        document_id=document_id,
        document_type=doc_type.name,
        title=doc_type.title(request.locale),
        number=request.number,
        issue_date=request.data.issue_date,
        locale=request.locale,
        retention=doc_type.retention,
        recipient=request.recipient,
        seller=request.data.seller,
        pdf=pdf,
        sha256=expected_sha256,
        print_group=batch_print_group(claimed.batch_id) if claimed.batch_id is not None else None,
    )
    rt.throttle.wait(claimed.channel)
    return handoff


async def _send_all(
    rt: Runtime, ready: list[tuple[ClaimedDelivery, Handoff]]
) -> list[HandoffReceipt | BaseException]:
    sends = (rt.channels[claimed.channel].send(handoff) for claimed, handoff in ready)
    return await asyncio.gather(*sends, return_exceptions=True)


def _failed(rt: Runtime, claimed: ClaimedDelivery, error: Exception) -> None:
    """Count a failed hand-off; a transient one is noted on the delivery, its lease released for the retry."""
    if isinstance(error, PermanentError):
        metrics.DELIVERIES.labels(claimed.channel, "rejected").inc()
        return
    metrics.DELIVERIES.labels(claimed.channel, "deferred").inc()
    code, detail = safe_detail(error)
    with rt.db.session() as session:
        note_delivery_error(session, claimed.delivery_id, code, detail)
    log.warning(
        "delivery deferred", delivery_id=str(claimed.delivery_id), channel=claimed.channel, error=code
    )


def _handed_off(claimed: ClaimedDelivery, receipt: HandoffReceipt) -> None:
    metrics.DELIVERIES.labels(claimed.channel, "confirmed" if receipt.confirmed else "sent").inc()
    log.info(
        "delivery handed off",
        delivery_id=str(claimed.delivery_id),
        document_id=str(claimed.document_id),
        channel=claimed.channel,
        confirmed=receipt.confirmed,
    )


def _archived(
    document: Document, handoff: Handoff, receipt: HandoffReceipt, request: DocumentRequest
) -> ArchivedDocument:
    """What the archive index keeps of a document the archive confirmed."""
    assert receipt.stored is not None
    doc_type = document_type(document.type)
    order_reference = getattr(request.data, "order_reference", None)
    return ArchivedDocument(
        document=document,
        figures=doc_type.figures(request),
        order_reference=order_reference if isinstance(order_reference, str) else None,
        retention_class=handoff.retention,
        location=receipt.external_ref,
        key=receipt.stored.key,
        sha256=handoff.sha256,
        size=receipt.stored.size,
        retain_until=receipt.stored.retain_until,
        lock_mode=receipt.stored.lock_mode,
        version_id=receipt.stored.version_id,
        has_einvoice=doc_type.einvoice is not None,
    )
