"""``/v1/followups``: Wiedervorlagen by assignee and due date; take over, complete, notify."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import business_day, enqueue, runtime_of
from postroom.api.problems import ProblemError
from postroom.core.billing import followups
from postroom.core.billing.models import Followup
from postroom.documents.fields import IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/followups", tags=["core"])

UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


class FollowupView(BaseModel):
    """A task on a case."""

    id: uuid.UUID
    case_kind: str
    case_id: uuid.UUID
    subject: str
    assignee: str | None
    assignee_group: str | None
    due_date: date
    options: list[str]
    status: str
    chosen_option: str | None
    completed_at: datetime | None
    completed_by: str | None
    notified_at: datetime | None


def _view(task: Followup) -> FollowupView:
    return FollowupView.model_validate(task, from_attributes=True)


class NewFollowup(StrictModel):
    """A task a clerk opens on a case."""

    case_kind: Literal["order", "invoice", "collection", "party"]
    case_id: uuid.UUID
    subject: str = Field(min_length=1, max_length=200)
    due_date: IsoDate
    options: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=12)
    assignee: UserName | None = None
    assignee_group: UserName | None = None


class Take(StrictModel):
    """Who takes the task over."""

    user: UserName


class Completion(StrictModel):
    """The option chosen, and by whom."""

    option: str = Field(min_length=1, max_length=200)
    user: UserName


class NoticeRun(StrictModel):
    """Send the notices of tasks due by this day (today when omitted)."""

    as_of: IsoDate | None = None


class NoticeRunView(BaseModel):
    """How many notices went out."""

    notices: int


def _task(session: Session, task_id: uuid.UUID) -> Followup:
    task = session.get(Followup, task_id, with_for_update=True)
    if task is None:
        raise ProblemError(404, "Not found", f"no follow-up {task_id}", slug="not-found")
    return task


@router.get("", response_model=list[FollowupView])
def list_followups(
    request: Request,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
    due_before: date | None = None,
    case_id: uuid.UUID | None = None,
    status: Literal["open", "done", "cancelled"] = "open",
) -> list[FollowupView]:
    """Tasks by due date: ``assignee`` lists the user's own and the unassigned tasks of the user's
    groups; ``group`` a group's; ``due_before`` those due before that day."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        tasks = followups.listed(
            session,
            rt.settings,
            assignee=assignee,
            group=group,
            due_before=due_before,
            status=status,
            case_id=case_id,
        )
        return [_view(task) for task in tasks]


@router.post("", response_model=FollowupView, status_code=201)
def open_followup(
    request: Request, body: NewFollowup, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> FollowupView:
    """Open a task on a case for a user or a group."""
    if body.assignee is None and body.assignee_group is None:
        raise ProblemError(
            422, "Invalid follow-up", "assignee or assignee_group is required", slug="invalid-followup"
        )
    with runtime_of(request).db.session() as session:
        task = followups.schedule(session, **body.model_dump(), actor=key.id)
        return _view(task)


@router.post("/{task_id}/take", response_model=FollowupView)
def take_followup(
    request: Request, task_id: uuid.UUID, body: Take, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> FollowupView:
    """A member of the task's group takes it over."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        task = _task(session, task_id)
        followups.take(session, rt.settings, task, body.user, actor=f"{key.id}:{body.user}")
        return _view(task)


@router.post("/{task_id}/complete", response_model=list[FollowupView])
def complete_followup(
    request: Request,
    task_id: uuid.UUID,
    body: Completion,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> list[FollowupView]:
    """Record the chosen option; answers the task and, for a waiting option, the next check."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        task = _task(session, task_id)
        following = followups.complete(
            session, task, body.option, actor=f"{key.id}:{body.user}", today=business_day(rt)
        )
        return [_view(task)] + ([_view(following)] if following else [])


@router.post("/notices", response_model=NoticeRunView)
def send_followup_notices(
    request: Request, body: NoticeRun, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> NoticeRunView:
    """E-mail a ``followup_notice`` for each task due by ``as_of`` not yet notified (also run daily)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        outbox = followups.send_notices(
            session, rt.settings, today=body.as_of or business_day(rt), actor=key.id
        )
    enqueue(request, outbox)
    return NoticeRunView(notices=len(outbox.document_ids))
