"""The scheduled side of receivables: the daily dunning run and the notices of due follow-ups.

Both work on the business day in the business's time zone and hand back what to enqueue; the
actors send it. A dunning run for a day that ran already changes nothing, and a follow-up is
notified once, so a repeated or doubled schedule costs nothing but a query.
"""

from __future__ import annotations

from postroom.core.billing import dunning, followups
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


def due_followup_notices(rt: Runtime) -> Outbox:
    """Notify the assignees of follow-ups due today."""
    with rt.db.session() as session:
        outbox = followups.send_notices(session, rt.settings, today=rt.settings.business_day(), actor=ACTOR)
    if outbox.document_ids:
        log.info("follow-up notices", count=len(outbox.document_ids))
    return outbox
