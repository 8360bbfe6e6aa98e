"""Dramatiq actors. Each is a thin wrapper: one step, this process's runtime, ids in, ids out.

Importing this module installs the broker from the settings, so it must be imported
before any other module declares actors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import dramatiq
from dramatiq.actor import ActorDecorator
from dramatiq.middleware import CurrentMessage

from postroom.channels.base import DeliveryDeferred
from postroom.core import batches
from postroom.core.billing.outbox import Outbox
from postroom.core.documents import (
    callback_due,
    fail_delivery,
    fail_document,
    retry_failed_document,
    stalled_fallbacks,
    stalled_renders,
)
from postroom.core.models import Batch, Delivery, Document, utcnow
from postroom.core.print_batches import DEFAULT_GROUP
from postroom.core.states import DocumentStatus
from postroom.errors import PermanentError, TransientError, safe_detail
from postroom.jobs import (
    archive_exports,
    bulk,
    callbacks,
    chain_anchor,
    delivery,
    eletter,
    printing,
    purge,
    receivables,
    rendering,
)
from postroom.jobs.broker import (
    BULK_DELIVERIES_QUEUE,
    BULK_QUEUE,
    CALLBACKS_QUEUE,
    DELIVERIES_QUEUE,
    DOCUMENTS_QUEUE,
    MAINTENANCE_QUEUE,
    install_broker,
)
from postroom.log import get_logger
from postroom.runtime import Runtime, runtime
from postroom.settings import get_settings

settings = get_settings()
broker = install_broker(settings)
log = get_logger(__name__)

MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 300_000


BULK_PRIORITY = 10
"""Bulk work yields to single documents in a worker's queue of prefetched messages (lower runs first)."""
BULK_DELIVERY_PRIORITY = 5
"""A run's deliveries go before its next renders: finished documents leave the spool instead of
piling up behind the rest of the run (the 10,000-document bench had 9,000 deliveries waiting)."""


def job(
    queue_name: str, time_limit_seconds: float, on_give_up: Callable[..., None], *, priority: int = 0
) -> ActorDecorator:
    """An actor with postroom's failure policy: bounded retries with exponential backoff, a
    maximum age, permanent errors not retried, and ``on_give_up`` once a message fails for good."""
    return dramatiq.actor(
        queue_name=queue_name,
        priority=priority,
        time_limit=int(time_limit_seconds * 1000),
        max_retries=settings.job_max_retries,
        min_backoff=MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
        max_age=settings.job_max_age_seconds * 1000,
        throws=(PermanentError,),
        on_give_up=on_give_up,
    )


def _reason(error: BaseException | None) -> tuple[str, str]:
    if error is None:
        return "expired", "not processed within the job's maximum age"
    return safe_detail(error)


def _render_given_up(document_id: str, *, error: BaseException | None) -> None:
    with runtime().db.session() as session:
        fail_document(session, uuid.UUID(document_id), *_reason(error))
    conclude_document.send(document_id)


def _delivery_given_up(delivery_id: str, *, error: BaseException | None) -> None:
    rt = runtime()
    with rt.db.session() as session:
        replacement = fail_delivery(session, uuid.UUID(delivery_id), *_reason(error), fallbacks=rt.fallbacks)
        replacement_id = replacement.id if replacement is not None else None
        delivery = session.get(Delivery, uuid.UUID(delivery_id))
        document_id = delivery.document_id if delivery is not None else None
    if replacement_id is not None:
        deliver.send(str(replacement_id))
    elif document_id is not None:
        conclude_document.send(str(document_id))


def _callback_given_up(subject_id: str, *, error: BaseException | None) -> None:
    log.warning("callback given up", subject_id=subject_id, error=_reason(error)[0])


def _maintenance_given_up(*args: str, error: BaseException | None) -> None:
    # The arguments are ids and group names, never personal data.
    log.warning("maintenance job given up", arguments=list(args), error=_reason(error)[0])


def _deliver(delivery_id: str) -> None:
    message = CurrentMessage.get_current_message()
    holder = message.message_id if message is not None else None
    try:
        document_id = delivery.deliver(runtime(), uuid.UUID(delivery_id), holder)
    except DeliveryDeferred as error:
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            raise dramatiq.Retry(error.code, delay=max(MIN_BACKOFF_MS, int(retry_after * 1000))) from error
        raise
    if document_id is not None:
        conclude_document.send(str(document_id))


@job(DELIVERIES_QUEUE, settings.delivery_timeout_seconds, _delivery_given_up)
def deliver(delivery_id: str) -> None:
    """Hand one delivery to its channel; conclude the document when that made it final.

    A channel that names when to come back (the provider's ``Retry-After``) is retried no
    earlier than that, instead of on the usual backoff.
    """
    _deliver(delivery_id)


@job(
    BULK_DELIVERIES_QUEUE,
    settings.delivery_timeout_seconds,
    _delivery_given_up,
    priority=BULK_DELIVERY_PRIORITY,
)
def deliver_bulk(delivery_id: str) -> None:
    """:func:`deliver` for a document of a bulk run, on the bulk deliveries queue."""
    _deliver(delivery_id)


def _conclude(rt: Runtime, document_id: str) -> None:
    with rt.db.session() as session:
        document = session.get(Document, uuid.UUID(document_id))
        if document is None:
            return
        callback, delivered = callback_due(document), document.status is DocumentStatus.DELIVERED
    if callback:
        notify_callback.send(document_id)
    if delivered:
        purge.purge_document(rt, uuid.UUID(document_id), purge.CONFIRMED)


@job(MAINTENANCE_QUEUE, 60, _maintenance_given_up)
def conclude_document(document_id: str) -> None:
    """A document reached ``delivered`` or ``failed``: tell the requester; purge a delivered one."""
    _conclude(runtime(), document_id)


CONCLUDE_CHUNK = 100
"""Documents one :func:`conclude_documents` message concludes: an acknowledged print batch makes
up to 10,000 documents final at once, and a message each cost more than concluding one."""


@job(MAINTENANCE_QUEUE, 300, _maintenance_given_up)
def conclude_documents(document_ids: list[str]) -> None:
    """:func:`conclude_document` for each of ``document_ids``; repeating it changes nothing."""
    rt = runtime()
    for document_id in document_ids:
        _conclude(rt, document_id)


@job(MAINTENANCE_QUEUE, 600, _maintenance_given_up)
def sweep_purges() -> None:
    """Purge whatever is done with but still holds personal data (missed or failed long ago)."""
    purged = purge.sweep(runtime())
    if purged:
        log.info("purge sweep", purged=purged)


FALLBACK_STALL = timedelta(minutes=5)
"""A fallback delivery pending longer than this lost its message."""


@job(MAINTENANCE_QUEUE, 300, _maintenance_given_up)
def resend_stalled_fallbacks() -> None:
    """Send again the fallback deliveries whose message was lost; sending twice is harmless."""
    with runtime().db.session() as session:
        stalled = stalled_fallbacks(session, utcnow() - FALLBACK_STALL)
    for delivery_id in stalled:
        deliver.send(str(delivery_id))
    if stalled:
        log.warning("stalled fallback deliveries sent again", count=len(stalled))


RENDER_STALL = timedelta(minutes=10)
"""A single document queued longer than this never got (or lost) its render message."""


@job(MAINTENANCE_QUEUE, 300, _maintenance_given_up)
def resend_stalled_renders() -> None:
    """Send the render message again for documents stuck in ``queued``; rendering twice is harmless."""
    with runtime().db.session() as session:
        stalled = stalled_renders(session, utcnow() - RENDER_STALL)
    for document_id in stalled:
        render_document.send(str(document_id))
    if stalled:
        log.warning("stalled renders sent again", count=len(stalled))


@job(CALLBACKS_QUEUE, settings.callback_timeout_seconds + 5, _callback_given_up)
def notify_callback(document_id: str) -> None:
    """POST the document's final state to its callback URL."""
    callbacks.notify(runtime(), uuid.UUID(document_id))


@job(DOCUMENTS_QUEUE, settings.render_timeout_seconds, _render_given_up)
def render_document(document_id: str) -> None:
    """Render a document, then enqueue one ``deliver`` message per channel."""
    for delivery_id in rendering.render_document(runtime(), uuid.UUID(document_id)):
        deliver.send(str(delivery_id))


INLINE_CHANNELS = frozenset({"archive", "print"})
"""Channels whose hand-off is a write of the hub's own (the archive store, the print queue), made
in a bulk run's render message itself: a message per delivery cost more than most hand-offs."""


@job(BULK_QUEUE, settings.render_timeout_seconds, _render_given_up, priority=BULK_PRIORITY)
def render_bulk_document(document_id: str) -> None:
    """:func:`render_document` for a document of a bulk run: its deliveries go to the bulk
    deliveries queue, so single documents are never stuck behind a run; those to the
    :data:`INLINE_CHANNELS` are handed off right here (see :func:`render_bulk_group`)."""
    _render_bulk([document_id])


RENDER_GROUP = 10
"""Documents of a bulk run one :func:`render_bulk_group` message renders and hands off: two
transactions for the group instead of four a document, and a tenth of the messages."""


def _group_given_up(document_ids: list[str], *, error: BaseException | None) -> None:
    for document_id in document_ids:
        _render_given_up(document_id, error=error)


@job(BULK_QUEUE, settings.render_timeout_seconds, _group_given_up, priority=BULK_PRIORITY)
def render_bulk_group(document_ids: list[str]) -> None:
    """:func:`render_bulk_document` for a group of a bulk run's documents, claimed, recorded and
    handed off together.

    A document or delivery that fails leaves the others alone: a permanent error gives it up
    (as its own message would), anything else sends it on its own message and that message's
    retries. If the group as a whole fails (the database, a time limit), its retry splits it
    into a message a document. The hand-offs to the :data:`INLINE_CHANNELS` happen under this
    message's lease, so its redelivery after a crash takes them over.
    """
    message = CurrentMessage.get_current_message()
    if message is not None and message.options.get("retries", 0) > 0:
        for document_id in document_ids:
            render_bulk_document.send(document_id)
        return
    _render_bulk(document_ids)


def _render_bulk(document_ids: list[str]) -> None:
    message = CurrentMessage.get_current_message()
    holder = message.message_id if message is not None else None
    rt = runtime()
    group = rendering.render_documents(rt, [uuid.UUID(document_id) for document_id in document_ids])
    for document_id, error in group.failed.items():
        if len(document_ids) == 1:
            raise error  # the message's own retries, and its give-up
        if isinstance(error, PermanentError):
            log.warning("render given up", document_id=str(document_id), error=safe_detail(error)[0])
            _render_given_up(str(document_id), error=error)
        else:
            render_bulk_document.send(str(document_id))
    inline = [id_ for id_, pending in group.pending.items() if any(c in INLINE_CHANNELS for _, c in pending)]
    handoff = delivery.deliver_documents(rt, inline, INLINE_CHANNELS, holder)
    for delivery_id, error in handoff.failed.items():
        if isinstance(error, PermanentError):
            log.warning("inline delivery given up", delivery_id=str(delivery_id), error=safe_detail(error)[0])
            _delivery_given_up(str(delivery_id), error=error)
        else:
            # deliver() released its lease if the hand-off failed; if only recording it did,
            # the retry takes over once the lease has run out.
            log.warning("inline delivery deferred", delivery_id=str(delivery_id), error=safe_detail(error)[0])
            deliver_bulk.send(str(delivery_id))
    for pending in group.pending.values():
        for delivery_id, channel in pending:
            if channel not in INLINE_CHANNELS:
                deliver_bulk.send(str(delivery_id))
    if handoff.final_documents:
        conclude_documents.send([str(document_id) for document_id in handoff.final_documents])


class BatchStillReceiving(TransientError):
    """The batch's upload is not closed yet; expanding it is retried shortly."""

    code = "batch_receiving"


FAN_OUT_CHUNK = 500
"""Documents one expansion step enqueues; the next step queues up behind them."""


@job(BULK_QUEUE, 300, _maintenance_given_up)
def expand_batch(batch_id: str, after_line: int = 0) -> None:
    """Enqueue the rendering of the next chunk of a bulk run's queued documents, then the next
    step behind them: the bulk queue holds about one chunk at a time, never the whole run.
    Repeating a step sends a chunk twice, which rendering ignores."""
    with runtime().db.session() as session:
        batch = session.get(Batch, uuid.UUID(batch_id))
        if batch is None or batch.status not in (batches.RECEIVING, batches.RUNNING):
            return
        if batch.status == batches.RECEIVING:  # the API closes it right after sending this
            raise BatchStillReceiving(f"batch {batch_id} is still receiving lines")
        chunk = batches.documents_in(
            session, uuid.UUID(batch_id), DocumentStatus.QUEUED, after_line, FAN_OUT_CHUNK
        )
    ids = [str(document_id) for _, document_id in chunk]
    for start in range(0, len(ids), RENDER_GROUP):
        render_bulk_group.send(ids[start : start + RENDER_GROUP])
    if len(chunk) == FAN_OUT_CHUNK:
        expand_batch.send(batch_id, chunk[-1][0])


@job(BULK_QUEUE, 300, _maintenance_given_up)
def retry_failed_in_batch(batch_id: str, after_line: int = 0, actor: str = "postroom") -> None:
    """Give the next chunk of a run's failed documents another run (see
    :func:`postroom.core.documents.retry_failed_document`), then queue the next step."""
    rt = runtime()
    with rt.db.session() as session:
        chunk = batches.documents_in(
            session, uuid.UUID(batch_id), DocumentStatus.FAILED, after_line, FAN_OUT_CHUNK
        )
    for _, document_id in chunk:
        with rt.db.session() as session:
            retry = retry_failed_document(session, document_id, actor=actor)
        if retry is None:
            continue
        if retry.render:
            render_bulk_document.send(str(document_id))
        for delivery_id in retry.deliveries:
            deliver_bulk.send(str(delivery_id))
    if len(chunk) == FAN_OUT_CHUNK:
        retry_failed_in_batch.send(batch_id, chunk[-1][0], actor)


@job(MAINTENANCE_QUEUE, 120, _maintenance_given_up)
def settle_batches() -> None:
    """Cut the print batch of every run whose letters are all queued; finish every run whose
    documents are all final."""
    outcome = bulk.settle_running(runtime())
    for group in outcome.print_groups:
        cut_print_batches.send(group)
    for batch_id in outcome.finished:
        log.info("batch finished", batch_id=str(batch_id))
        notify_batch_callback.send(str(batch_id))


@job(CALLBACKS_QUEUE, settings.callback_timeout_seconds + 5, _callback_given_up)
def notify_batch_callback(batch_id: str) -> None:
    """POST a finished bulk run's counts to its callback URL."""
    callbacks.notify_batch(runtime(), uuid.UUID(batch_id))


@job(MAINTENANCE_QUEUE, 1800, _maintenance_given_up)
def cut_print_batches(group: str = DEFAULT_GROUP) -> None:
    """Cut-off: batch the waiting print pieces of ``group`` and hand them to the letter shop."""
    follow_print_outcome(printing.cut_print_batches(runtime(), group))


@job(MAINTENANCE_QUEUE, 600, _maintenance_given_up)
def collect_print_acknowledgements() -> None:
    """Confirm the print deliveries of every batch the letter shop acknowledged."""
    follow_print_outcome(printing.collect_acknowledgements(runtime()))


def follow_print_outcome(outcome: printing.PrintRound) -> None:
    """Send the fallback deliveries a print round opened and conclude the documents it made final."""
    for delivery_id in outcome.replacements:
        deliver.send(str(delivery_id))
    final = [str(document_id) for document_id in dict.fromkeys(outcome.final_documents)]
    for start in range(0, len(final), CONCLUDE_CHUNK):
        conclude_documents.send(final[start : start + CONCLUDE_CHUNK])


def follow_eletter_outcome(outcome: eletter.StatusOutcome) -> None:
    """Act on an applied e-letter status report: give a failed delivery up (which opens its fallback
    delivery, or fails the document) or conclude the document the report made final."""
    if outcome.failure is not None:
        _delivery_given_up(str(outcome.delivery_id), error=outcome.failure)
    elif outcome.final_document is not None:
        conclude_document.send(str(outcome.final_document))


def _export_given_up(export_id: str, *, error: BaseException | None) -> None:
    archive_exports.fail_export(runtime(), uuid.UUID(export_id), _reason(error)[1])


@job(MAINTENANCE_QUEUE, 3600, _export_given_up)
def build_archive_export(export_id: str) -> None:
    """Build a GoBD Z3 export, archive it and chain it into the event log."""
    archive_exports.build_export(runtime(), uuid.UUID(export_id))


@job(MAINTENANCE_QUEUE, 300, _maintenance_given_up)
def anchor_event_chain() -> None:
    """Write the archive event chain's head into the archive (daily)."""
    chain_anchor.anchor_event_chain(runtime(), utcnow().date())


@job(MAINTENANCE_QUEUE, 600, _maintenance_given_up)
def poll_eletter_status() -> None:
    """Ask the e-letter provider about letters whose status report is overdue (a lost webhook)."""
    for outcome in eletter.poll_eletter(runtime()).outcomes:
        follow_eletter_outcome(outcome)


def _send(outbox: Outbox) -> None:
    for document_id in outbox.document_ids:
        render_document.send(str(document_id))
    for batch_id in outbox.batch_ids:
        expand_batch.send(str(batch_id))


@job(MAINTENANCE_QUEUE, 1800, _maintenance_given_up)
def run_dunning() -> None:
    """The scheduled dunning run for today's key date (``POSTROOM_DUNNING_RUN_TIMES``)."""
    _send(receivables.scheduled_dunning_run(runtime()))


@job(MAINTENANCE_QUEUE, 1800, _maintenance_given_up)
def review_payment_plans() -> None:
    """The daily payment-plan review as of today (``POSTROOM_PAYMENT_PLAN_REVIEW_TIMES``)."""
    receivables.payment_plan_review(runtime())


@job(MAINTENANCE_QUEUE, 1800, _maintenance_given_up)
def export_bookings() -> None:
    """Write today's booking file for the accounting system (``POSTROOM_BOOKING_EXPORT_TIMES``)."""
    receivables.daily_booking_export(runtime())


@job(MAINTENANCE_QUEUE, 600, _maintenance_given_up)
def send_followup_notices() -> None:
    """E-mail the assignees of follow-ups due today (``POSTROOM_FOLLOWUP_NOTICE_TIMES``)."""
    _send(receivables.due_followup_notices(runtime()))


@job(MAINTENANCE_QUEUE, 300, _maintenance_given_up)
def resend_unexpanded_runs() -> None:
    """Expand the core's bulk runs (dunning letters, statements) whose expansion message was
    lost: still no document left ``queued`` long after the run was recorded."""
    with runtime().db.session() as session:
        stalled = batches.unexpanded_core_runs(session, utcnow() - RENDER_STALL)
    for batch_id in stalled:
        expand_batch.send(str(batch_id))
    if stalled:
        log.warning("unexpanded runs sent again", count=len(stalled))
