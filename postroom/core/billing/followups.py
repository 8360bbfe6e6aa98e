"""Follow-ups (Wiedervorlagen): a task on a case, due on a day, for a user or a group."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import history
from postroom.core.billing.models import Followup
from postroom.core.models import utcnow

ORDER_REJECTED_OPTIONS = [
    "Korrigierten Auftrag erneut einreichen lassen",
    "Rückfrage beim Vertriebspartner",
    "Vorgang schließen",
]


class FollowupError(Exception):
    """The follow-up is closed or the option is not one of its options."""


def schedule(
    session: Session,
    *,
    case_kind: str,
    case_id: uuid.UUID,
    subject: str,
    due_date: date,
    options: list[str],
    assignee_group: str | None = None,
    assignee: str | None = None,
    actor: str,
) -> Followup:
    """Create an open task."""
    task = Followup(
        id=uuid.uuid4(),
        case_kind=case_kind,
        case_id=case_id,
        subject=subject,
        due_date=due_date,
        options=options,
        assignee=assignee,
        assignee_group=assignee_group,
        status="open",
    )
    session.add(task)
    session.flush()
    history.record(session, "followup", task.id, "scheduled", actor=actor, case=case_id, due=due_date)
    return task


def for_case(session: Session, case_id: uuid.UUID) -> list[Followup]:
    """A case's follow-ups, oldest first."""
    return list(
        session.scalars(select(Followup).where(Followup.case_id == case_id).order_by(Followup.created_at))
    )


def complete(session: Session, task: Followup, option: str, *, actor: str) -> None:
    """Close the task with one of its options."""
    if task.status != "open":
        raise FollowupError(f"follow-up {task.id} is {task.status}")
    if option not in task.options:
        raise FollowupError(f"follow-up {task.id} offers no such option")
    task.status, task.chosen_option = "done", option
    task.completed_at, task.completed_by = utcnow(), actor
    history.record(session, "followup", task.id, "completed", actor=actor, option=option)
