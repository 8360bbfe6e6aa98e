"""``/v1/payment-plans``: agree a plan over a customer's open items, follow it, cancel it, review all."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import HistoryEntry, business_day, enqueue, history_view, runtime_of
from postroom.api.problems import FieldError, ProblemError
from postroom.core.billing import payment_plans
from postroom.core.billing.models import PaymentPlan
from postroom.documents.fields import Amount, IsoDate
from postroom.documents.parties import StrictModel
from postroom.documents.types.payment_plan import MAX_INSTALLMENTS
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/payment-plans", tags=["core"])


class PlanRequest(StrictModel):
    """The agreed terms: one customer's items, down payment, number and rhythm of instalments."""

    party_id: uuid.UUID
    invoice_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    down_payment: Amount = Field(default=Decimal("0.00"), ge=0, description="Instalment 0, if any.")
    down_payment_due_date: IsoDate | None = Field(default=None, description="The issue date when omitted.")
    instalments: int = Field(ge=1, le=MAX_INSTALLMENTS)
    first_due_date: IsoDate
    interval_months: int = Field(default=1, ge=1, le=12)
    issue_date: IsoDate | None = Field(default=None, description="The agreement's day; today when omitted.")


class Cancellation(StrictModel):
    """Why a plan ends by agreement."""

    reason: str = Field(min_length=3, max_length=500)
    as_of: IsoDate | None = None


class InstalmentView(BaseModel):
    """One instalment (0 is the down payment)."""

    sequence: int
    due_date: date
    amount: Decimal
    status: str


class PlanItemView(BaseModel):
    """An item of the plan, as it stands now."""

    invoice_id: uuid.UUID
    number: str | None
    status: str
    open_amount: Decimal


class PlanView(BaseModel):
    """A payment plan; the customer by pseudonymous party id."""

    id: uuid.UUID
    party_id: uuid.UUID
    number: str
    status: str
    issue_date: date
    total: Decimal
    down_payment: Decimal
    paid_at_start: Decimal
    paid_since_agreement: Decimal
    document_id: uuid.UUID | None
    closed_on: date | None
    items: list[PlanItemView]
    instalments: list[InstalmentView]


class ReviewView(BaseModel):
    """What a review changed."""

    as_of: date
    reviewed: int
    instalments_paid: int
    instalments_missed: int
    completed: list[str]
    failed: list[str]


def _plan(session: Session, plan_id: uuid.UUID, lock: bool = False) -> PaymentPlan:
    plan = session.get(PaymentPlan, plan_id, with_for_update=lock)
    if plan is None:
        raise ProblemError(404, "Not found", f"no payment plan {plan_id}", slug="not-found")
    return plan


def _view(session: Session, plan: PaymentPlan) -> PlanView:
    items = payment_plans.items(session, plan)
    return PlanView(
        id=plan.id,
        party_id=plan.party_id,
        number=plan.number,
        status=plan.status,
        issue_date=plan.issue_date,
        total=plan.total,
        down_payment=plan.down_payment,
        paid_at_start=plan.paid_at_start,
        paid_since_agreement=payment_plans.paid_since_agreement(plan, items),
        document_id=plan.document_id,
        closed_on=plan.closed_on,
        items=[
            PlanItemView(
                invoice_id=item.id, number=item.number, status=item.status, open_amount=item.open_amount
            )
            for item in items
        ],
        instalments=[
            InstalmentView.model_validate(instalment, from_attributes=True)
            for instalment in payment_plans.instalments(session, plan)
        ],
    )


def _refused(error: payment_plans.PlanRefused) -> ProblemError:
    """422 when the terms contradict themselves or the amounts, 409 when the state forbids the step."""
    errors = [FieldError(field=f["field"], message=f["message"], type=f["code"]) for f in error.findings]
    if error.invalid:
        return ProblemError(422, "Request is invalid", str(error), slug="validation", errors=errors)
    return ProblemError(409, "Conflict", str(error), slug="planrefused", errors=errors or None)


@router.post("", response_model=PlanView, status_code=201)
def agree_plan(
    request: Request, body: PlanRequest, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> PlanView:
    """Agree a plan and send it as a ``payment_plan`` document; 409 naming each item that may not
    join (disputed, in collection, in a plan, another customer's), 422 for inconsistent terms."""
    rt = runtime_of(request)
    terms = payment_plans.Terms(
        party_id=body.party_id,
        invoice_ids=body.invoice_ids,
        instalments=body.instalments,
        first_due_date=body.first_due_date,
        issue_date=body.issue_date or business_day(rt),
        down_payment=body.down_payment,
        interval_months=body.interval_months,
        down_payment_due_date=body.down_payment_due_date,
    )
    with rt.db.session() as session:
        try:
            plan, outbox = payment_plans.agree(session, rt.settings, terms, actor=key.id)
        except payment_plans.PlanRefused as error:
            raise _refused(error) from None
        view = _view(session, plan)
    enqueue(request, outbox)
    return view


@router.post("/review", response_model=ReviewView)
def review_plans(
    request: Request,
    key: Annotated[ApiKey, Depends(require("core:write"))],
    as_of: Annotated[date | None, Query()] = None,
) -> ReviewView:
    """Review every active plan as of a day (today when omitted); the scheduler does this daily."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        outcome = payment_plans.review(session, rt.settings, as_of=as_of or business_day(rt), actor=key.id)
        return ReviewView.model_validate(outcome, from_attributes=True)


@router.get("/{plan_id}", response_model=PlanView)
def get_plan(
    request: Request, plan_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> PlanView:
    """A plan with its items, instalments and what was paid since it was agreed."""
    with runtime_of(request).db.session() as session:
        return _view(session, _plan(session, plan_id))


@router.post("/{plan_id}/cancel", response_model=PlanView)
def cancel_plan(
    request: Request,
    plan_id: uuid.UUID,
    body: Cancellation,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> PlanView:
    """End an active plan by agreement: its items leave it and are dunned again (409 when not active)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        plan = _plan(session, plan_id, lock=True)
        try:
            payment_plans.cancel(
                session, plan, as_of=body.as_of or business_day(rt), actor=key.id, reason=body.reason
            )
        except payment_plans.PlanRefused as error:
            raise _refused(error) from None
        return _view(session, plan)


@router.get("/{plan_id}/history", response_model=list[HistoryEntry])
def plan_history(
    request: Request, plan_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> list[HistoryEntry]:
    """Every step of the plan: agreed, instalments paid or missed, completed, failed or cancelled."""
    with runtime_of(request).db.session() as session:
        _plan(session, plan_id)
        return history_view(session, "payment_plan", plan_id)
