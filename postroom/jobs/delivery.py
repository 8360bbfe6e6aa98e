"""The deliver step: hand one rendered variant to one channel and record the receipt."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from postroom.channels.base import Handoff, HandoffReceipt
from postroom.core.archive_index import ArchivedDocument, record_archived
from postroom.core.batches import batch_print_group
from postroom.core.documents import claim_for_sending, note_delivery_error, record_handoff
from postroom.core.models import Document
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


def deliver(rt: Runtime, delivery_id: uuid.UUID, holder: str | None = None) -> uuid.UUID | None:
    """Send one delivery; transient errors are recorded and re-raised for the job's retry.

    ``holder`` is the job message's id: its redelivery after a worker died takes the lease over
    (see :func:`~postroom.core.documents.claim_for_sending`). Returns the document id when this
    hand-off made the document final.
    """
    # The lease outlasts the actor's time limit, so a live attempt never loses it.
    lease = timedelta(seconds=rt.settings.delivery_timeout_seconds + 60)
    with rt.db.session() as session:
        delivery = claim_for_sending(session, delivery_id, lease, holder)
        if delivery is None:
            return None
        document = delivery.document
        variant = document.variant(delivery.variant)
        request = stored_request(document)
        doc_type = document_type(document.type)
        channel_name, document_id, variant_name = delivery.channel, document.id, delivery.variant
        print_group = batch_print_group(document.batch_id) if document.batch_id is not None else None
        bind_ids(delivery_id=delivery_id, document_id=document_id, batch_id=document.batch_id)
        expected_sha256 = variant.sha256 if variant is not None else None

    try:
        if expected_sha256 is None:
            # A fallback channel may need a variant the first render did not make.
            expected_sha256 = render_variant(rt, document_id, variant_name)
        pdf = rt.spool.read(document_id, variant_name)
        if hashlib.sha256(pdf).hexdigest() != expected_sha256:
            raise SpoolMismatch(
                f"spooled {variant_name} PDF of document {document_id} does not match its SHA-256"
            )
        handoff = Handoff(
            delivery_id=delivery_id,
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
            print_group=print_group,
        )
        rt.throttle.wait(channel_name)
        receipt = run_on_thread_loop(rt.channels[channel_name].send(handoff))
    except PermanentError:
        metrics.DELIVERIES.labels(channel_name, "rejected").inc()
        raise
    except Exception as error:
        # Retried by the job: keep the reason and release the lease for the next attempt.
        metrics.DELIVERIES.labels(channel_name, "deferred").inc()
        code, detail = safe_detail(error)
        with rt.db.session() as session:
            note_delivery_error(session, delivery_id, code, detail)
        log.warning("delivery deferred", delivery_id=str(delivery_id), channel=channel_name, error=code)
        raise
    with rt.db.session() as session:
        document = record_handoff(
            session, delivery_id, receipt.external_ref, confirmed=receipt.confirmed, event=receipt.event
        ).document
        if receipt.stored is not None and receipt.confirmed:
            record_archived(session, _archived(document, handoff, receipt, request))
        final = document.status in FINAL_DOCUMENT_STATES
    metrics.DELIVERIES.labels(channel_name, "confirmed" if receipt.confirmed else "sent").inc()
    log.info(
        "delivery handed off",
        delivery_id=str(delivery_id),
        document_id=str(document_id),
        channel=channel_name,
        confirmed=receipt.confirmed,
    )
    return document_id if final else None


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
