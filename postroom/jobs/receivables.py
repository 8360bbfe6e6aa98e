"""The scheduled side of receivables: the daily dunning run, the payment-plan review, the notices
of due follow-ups and the daily booking export.

All work on the business day in the business's time zone and hand back what to enqueue; the
actors send it. A dunning run or a booking export for a day done already changes nothing, and a
follow-up is notified once, so a repeated or doubled schedule costs nothing but a query.
"""

from __future__ import annotations

from postroom.core.billing import booking_export, dunning, followups, payment_plans
from postroom.core.billing.outbox import Outbox
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)
ACTOR = "postroom-scheduler"


def scheduled_dunning_run(rt: Runtime) -> Outbox:
    """Run dunning for today's key date with the policy's defaults (no grace days)."""
    key_date = rt.settings.business_day()
    with rt.db.session() as session:
        outcome = dunning.run(session, rt.settings, key_date=key_date, grace_days=0, actor=ACTOR)
        log.info(
            "dunning run",
            key_date=key_date.isoformat(),
            letters=outcome.run.letters,
            repeated=outcome.repeated,
        )
        return outcome.outbox


def payment_plan_review(rt: Runtime) -> payment_plans.ReviewOutcome:
    """Review the active payment plans as of today: instalments paid or missed, plans completed or
    failed (a failed plan's items are dunned again by the next run)."""
    as_of = rt.settings.business_day()
    with rt.db.session() as session:
        outcome = payment_plans.review(session, rt.settings, as_of=as_of, actor=ACTOR)
    log.info(
        "payment plan review",
        as_of=as_of.isoformat(),
        reviewed=outcome.reviewed,
        completed=len(outcome.completed),
        failed=len(outcome.failed),
    )
    return outcome


def daily_booking_export(rt: Runtime) -> None:
    """Export today's bookings (a day exported before is left as it is)."""
    day = rt.settings.business_day()
    with rt.db.session() as session:
        export = booking_export.export_day(session, rt.settings, day, actor=ACTOR)
        log.info("booking export", day=day.isoformat(), entries=export.entries)


def due_followup_notices(rt: Runtime) -> Outbox:
    """Notify the assignees of follow-ups due today."""
    with rt.db.session() as session:
        outbox = followups.send_notices(session, rt.settings, today=rt.settings.business_day(), actor=ACTOR)
    if outbox.document_ids:
        log.info("follow-up notices", count=len(outbox.document_ids))
    return outbox
