"""Follow-ups (Wiedervorlagen): a task on a case, due on a day, for a user or a group.

Open tasks are listed per user (their own and their groups' unassigned ones) and due date;
any member of the task's group may take it over; completing it records the chosen option
("wait 14 days" schedules the next check). When a task falls due, a ``followup_notice``
e-mail goes to its assignee, or to the group's address, once.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from postroom.core.billing import history, numbers
from postroom.core.billing.models import Followup, Invoice, Order, Party
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.models import utcnow
from postroom.log import get_logger
from postroom.settings import Settings

log = get_logger(__name__)
WAIT_OPTION_DAYS = 14
"""An option starting with "14 Tage" waits this long and schedules the next check."""

ORDER_REJECTED_OPTIONS = [
    "Korrigierten Auftrag erneut einreichen lassen",
    "Rückfrage beim Vertriebspartner",
    "Vorgang schließen",
]


class FollowupError(Exception):
    """The follow-up is closed, the option is not one of its options, or the user may not take it."""


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


def complete(
    session: Session, task: Followup, option: str, *, actor: str, today: date | None = None
) -> Followup | None:
    """Close the task with one of its options; a waiting option schedules (and returns) the next check."""
    if task.status != "open":
        raise FollowupError(f"follow-up {task.id} is {task.status}")
    if option not in task.options:
        raise FollowupError(f"follow-up {task.id} offers no such option")
    task.status, task.chosen_option = "done", option
    task.completed_at, task.completed_by = utcnow(), actor
    history.record(session, "followup", task.id, "completed", actor=actor, option=option)
    if not option.startswith(f"{WAIT_OPTION_DAYS} Tage"):
        return None
    return schedule(
        session,
        case_kind=task.case_kind,
        case_id=task.case_id,
        subject=task.subject,
        due_date=(today or task.due_date) + timedelta(days=WAIT_OPTION_DAYS),
        options=task.options,
        assignee=task.assignee,
        assignee_group=task.assignee_group,
        actor=actor,
    )


def cancel_open(session: Session, case_kind: str, case_id: uuid.UUID, *, actor: str, reason: str) -> int:
    """Cancel a case's open tasks (the case ended or a newer task replaces them); returns how many."""
    tasks = session.scalars(
        select(Followup).where(
            Followup.case_kind == case_kind, Followup.case_id == case_id, Followup.status == "open"
        )
    ).all()
    for task in tasks:
        task.status, task.completed_at, task.completed_by = "cancelled", utcnow(), actor
        history.record(session, "followup", task.id, "cancelled", actor=actor, reason=reason)
    return len(tasks)


def listed(
    session: Session,
    settings: Settings,
    *,
    assignee: str | None,
    group: str | None,
    due_before: date | None,
    status: str,
    case_id: uuid.UUID | None = None,
    limit: int = 500,
) -> list[Followup]:
    """Tasks by due date: a user's own and the unassigned ones of the user's groups, or a group's."""
    query = select(Followup).where(Followup.status == status)
    if assignee is not None:
        groups = [name for name, entry in settings.followup_directory.items() if assignee in entry.members]
        query = query.where(
            or_(
                Followup.assignee == assignee,
                (Followup.assignee.is_(None)) & (Followup.assignee_group.in_(groups)),
            )
        )
    if group is not None:
        query = query.where(Followup.assignee_group == group)
    if due_before is not None:
        query = query.where(Followup.due_date < due_before)
    if case_id is not None:
        query = query.where(Followup.case_id == case_id)
    return list(session.scalars(query.order_by(Followup.due_date, Followup.created_at).limit(limit)))


def take(session: Session, settings: Settings, task: Followup, user: str, *, actor: str) -> None:
    """``user`` takes the task over: a member of its group, or anyone for a task without a group."""
    if task.status != "open":
        raise FollowupError(f"follow-up {task.id} is {task.status}")
    if task.assignee_group is not None:
        entry = settings.followup_directory.get(task.assignee_group)
        if entry is None or user not in entry.members:
            raise FollowupError(f"{user} is not a member of the group {task.assignee_group}")
    before = task.assignee
    task.assignee = user
    history.record(session, "followup", task.id, "taken over", actor=actor, user=user, previous=before)


def send_notices(session: Session, settings: Settings, *, today: date, actor: str) -> Outbox:
    """Submit a ``followup_notice`` e-mail for every open task due by ``today`` not yet notified."""
    outbox = Outbox()
    due = session.scalars(
        select(Followup)
        .where(Followup.status == "open", Followup.due_date <= today, Followup.notified_at.is_(None))
        .order_by(Followup.due_date)
        .with_for_update(skip_locked=True)
    ).all()
    for task in due:
        addressee = task.assignee or task.assignee_group
        entry = settings.followup_directory.get(addressee or "")
        if entry is None:
            log.warning("follow-up without an address", followup_id=str(task.id))
            continue
        body = _notice_body(session, settings, task, addressee or "", entry.email, today)
        document = submit(session, outbox, body, key=f"core:followup:{task.id}", api_key_id=actor)
        task.notified_at, task.notice_document_id = utcnow(), document.id
        history.record(session, "followup", task.id, "notified", actor=actor, document=document.id)
    return outbox


def _notice_body(
    session: Session, settings: Settings, task: Followup, addressee: str, email: str, today: date
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": numbers.next_number(session, settings.followup_prefix, today.year),
        "issue_date": today.isoformat(),
        "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
        "due_date": task.due_date.isoformat(),
        "subject": task.subject,
        "assignee_group": task.assignee_group or addressee,
        "context": _context(session, task),
        "options": task.options,
    }
    return {
        "type": "followup_notice",
        "locale": "de",
        "recipient": {"name": addressee, "email": email, "kind": "internal"},
        "channels": ["email"],
        "data": data,
    }


def _context(session: Session, task: Followup) -> dict[str, Any]:
    """Numbers that identify the case; no personal data."""
    if task.case_kind == "order":
        order = session.get(Order, task.case_id)
        return {"order_reference": order.upstream_id} if order is not None else {}
    if task.case_kind != "invoice":
        return {}
    invoice = session.get(Invoice, task.case_id)
    if invoice is None:
        return {}
    party = session.get(Party, invoice.party_id)
    context: dict[str, Any] = {
        "invoice_number": invoice.number,
        "open_amount": str(invoice.open_amount),
        "currency": invoice.currency,
    }
    if invoice.dunning_level is not None:
        context["dunning_level"] = invoice.dunning_level
    if party is not None and party.reference:
        context["customer_number"] = party.reference
    return context
