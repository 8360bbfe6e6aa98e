"""E-letter status reports, from webhooks or polling, applied to the hub's deliveries.

The provider's statuses run ``submitted → accepted → printed → sent → delivered | undeliverable |
rejected``. The hub's delivery is confirmed by ``accepted`` (or, if that report was missed, by any
later status that is not a failure); ``rejected``, and ``undeliverable`` before acceptance, fail it
(the caller hands the failure to the job's give-up path, which opens the fallback delivery). Statuses
after confirmation join the delivery's history only. Each report is recorded as the delivery event
``eletter.<status>`` (detail: the provider's event id), and a report whose status does not rank above
the highest recorded one, a duplicate or a late arrival, changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.channels.eletter import (
    FAILURE_STATUSES,
    NAME,
    STATUS_RANK,
    LetterRejected,
    LetterStatus,
    ProviderBusy,
)
from postroom.core.documents import confirm_delivery, locked, note_delivery_event
from postroom.core.models import Delivery, utcnow
from postroom.core.states import FINAL_DOCUMENT_STATES, DeliveryStatus
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)

EVENT_PREFIX = "eletter."
POLL_BATCH = 500


class Change(StrEnum):
    """What a status report did to its delivery."""

    CONFIRMED = "confirmed"
    """The delivery moved to ``confirmed``."""
    NOTED = "noted"
    """A later status joined the history of a confirmed delivery."""
    FAILING = "failing"
    """The delivery must be given up (see :attr:`StatusOutcome.failure`)."""
    NOT_READY = "not_ready"
    """The delivery is not recorded as handed off yet; the report should come again later."""
    IGNORED = "ignored"
    """Duplicate, out of order, unknown delivery or status, or a final delivery: nothing changed."""


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """The effect of one status report and what the caller must do next.

    ``final_document`` is set when the report made the document final (send ``conclude_document``);
    ``failure`` when the delivery must be given up (the job's give-up path fails it and opens the
    fallback delivery).
    """

    delivery_id: uuid.UUID
    change: Change
    final_document: uuid.UUID | None = None
    failure: LetterRejected | None = None


@dataclass
class PollRound:
    """What one polling round settled."""

    asked: int = 0
    outcomes: list[StatusOutcome] = field(default_factory=list)


def event_marker(event_id: str | None) -> str:
    """The detail recorded with a report: the provider's event id, or ``poll``."""
    return f"event {event_id}" if event_id else "poll"


def provider_rank(delivery: Delivery) -> int:
    """The rank of the highest provider status recorded for ``delivery`` (−1 before submission)."""
    ranks = [-1]
    for event in delivery.events:
        if event.event == "submitted":
            ranks.append(STATUS_RANK["submitted"])
        elif event.event.startswith(EVENT_PREFIX):
            ranks.append(STATUS_RANK.get(event.event.removeprefix(EVENT_PREFIX), -1))
    return max(ranks)


def apply_letter_status(
    session: Session,
    delivery_id: uuid.UUID,
    letter_id: str,
    status: str,
    *,
    event_id: str | None = None,
) -> StatusOutcome:
    """Apply one provider report to delivery ``delivery_id``; safe to repeat (see the module docstring).

    The caller commits the session, then acts on the outcome (``final_document``, ``failure``).
    """
    ignored = StatusOutcome(delivery_id, Change.IGNORED)
    rank = STATUS_RANK.get(status)
    delivery = locked(session, Delivery, delivery_id)
    if rank is None or delivery is None or delivery.channel != NAME:
        return ignored
    if delivery.external_ref is not None and delivery.external_ref != letter_id:
        log.warning("e-letter report for another letter", delivery_id=str(delivery_id), letter_id=letter_id)
        return ignored
    marker = event_marker(event_id)
    if event_id is not None and any(event.detail == marker for event in delivery.events):
        return ignored
    if rank <= provider_rank(delivery) or delivery.status is DeliveryStatus.FAILED:
        return ignored
    if delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
        # The worker has not recorded the hand-off yet (the report overtook it).
        return ignored if rank == STATUS_RANK["submitted"] else StatusOutcome(delivery_id, Change.NOT_READY)
    name = f"{EVENT_PREFIX}{status}"
    if delivery.status is DeliveryStatus.SENT:
        if status in FAILURE_STATUSES:
            failure = LetterRejected(f"the provider reported the letter {status}")
            return StatusOutcome(delivery_id, Change.FAILING, failure=failure)
        confirm_delivery(session, delivery_id, name, marker)
        document = delivery.document
        final = document.id if document.status in FINAL_DOCUMENT_STATES else None
        return StatusOutcome(delivery_id, Change.CONFIRMED, final_document=final)
    note_delivery_event(delivery, name, marker)
    if status in FAILURE_STATUSES:
        log.warning("e-letter failed after acceptance", delivery_id=str(delivery_id), status=status)
    return StatusOutcome(delivery_id, Change.NOTED)


def apply_report(rt: Runtime, report: LetterStatus, event_id: str | None = None) -> StatusOutcome | None:
    """Apply a report naming its delivery by ``reference``; ``None`` when the reference is no delivery id."""
    try:
        delivery_id = uuid.UUID(report.reference or "")
    except ValueError:
        return None
    with rt.db.session() as session:
        result = apply_letter_status(session, delivery_id, report.letter_id, report.status, event_id=event_id)
    log.info(
        "e-letter status",
        delivery_id=str(delivery_id),
        letter_id=report.letter_id,
        status=report.status,
        change=result.change.value,
    )
    return result


def poll_eletter(rt: Runtime, *, older_than: timedelta | None = None, limit: int = POLL_BATCH) -> PollRound:
    """Ask the provider for every e-letter delivery still ``sent`` after ``older_than`` (by default
    ``POSTROOM_ELETTER_POLL_AFTER_SECONDS``) and apply what it reports, as a webhook would have."""
    round_ = PollRound()
    channel = rt.eletter
    if channel is None:
        return round_
    if older_than is None:
        older_than = timedelta(seconds=rt.settings.eletter_poll_after_seconds)
    cutoff = utcnow() - older_than
    with rt.db.session() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.external_ref)
            .where(
                Delivery.channel == NAME,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.sent_at <= cutoff,
                Delivery.external_ref.is_not(None),
            )
            .order_by(Delivery.sent_at)
            .limit(limit)
        ).all()
    waiting = {str(row.external_ref): row.id for row in rows}
    if not waiting:
        return round_
    round_.asked = len(waiting)
    try:
        reports = asyncio.run(channel.letter_statuses(waiting))
    except ProviderBusy as error:
        log.info("e-letter poll deferred", retry_after=error.retry_after)
        return round_
    for letter_id, report in reports.items():
        delivery_id = waiting[letter_id]
        with rt.db.session() as session:
            result = apply_letter_status(session, delivery_id, letter_id, report.status)
        if result.change is not Change.IGNORED:
            round_.outcomes.append(result)
    log.info(
        "e-letter poll",
        asked=round_.asked,
        answered=len(reports),
        changed=len(round_.outcomes),
    )
    return round_
