"""``/v1/commissions``, agents' advances and commission runs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import HistoryEntry, business_day, enqueue, history_view, runtime_of
from postroom.api.problems import ProblemError
from postroom.core.billing import commissions
from postroom.core.billing.models import Commission, Order, Party
from postroom.documents.fields import Amount, IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(tags=["core"])


class CommissionView(BaseModel):
    """One agent's share of one invoice."""

    id: uuid.UUID
    order_id: uuid.UUID
    invoice_id: uuid.UUID
    agent_id: uuid.UUID
    status: str
    base_amount: Decimal
    rate: Decimal
    amount: Decimal
    discount_rate: Decimal | None
    statement_id: uuid.UUID | None
    payable_at: datetime | None
    paid_out_at: datetime | None


class AdvanceRequest(StrictModel):
    """Money paid to an agent ahead of commissions."""

    kind: Literal["advance", "training_credit"]
    amount: Amount
    reference: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,39}$")
    order_id: uuid.UUID | None = Field(default=None, description="The order an advance is paid on, if any.")
    reason: str | None = Field(default=None, max_length=500)


class AdvanceView(BaseModel):
    """An advance and what of it is not yet offset."""

    id: uuid.UUID
    agent_id: uuid.UUID
    kind: str
    reference: str
    amount: Decimal
    outstanding: Decimal


class RunRequest(StrictModel):
    """The period a commission run covers."""

    period_start: IsoDate
    period_end: IsoDate


class StatementView(BaseModel):
    """A commission statement a run issued."""

    id: uuid.UUID
    agent_id: uuid.UUID
    number: str
    gross_total: Decimal
    discount: Decimal
    advances_offset: Decimal
    payout: Decimal
    document_id: uuid.UUID | None


def _commission(session: Session, commission_id: uuid.UUID, lock: bool = False) -> Commission:
    commission = session.get(Commission, commission_id, with_for_update=lock)
    if commission is None:
        raise ProblemError(404, "Not found", f"no commission {commission_id}", slug="not-found")
    return commission


@router.get("/v1/commissions", response_model=list[CommissionView])
def list_commissions(
    request: Request,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    agent_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
) -> list[CommissionView]:
    """Commissions of an agent or an order."""
    with runtime_of(request).db.session() as session:
        query = session.query(Commission)
        if agent_id is not None:
            query = query.filter(Commission.agent_id == agent_id)
        if order_id is not None:
            query = query.filter(Commission.order_id == order_id)
        return [
            CommissionView.model_validate(c, from_attributes=True)
            for c in query.order_by(Commission.created_at).limit(1000)
        ]


@router.get("/v1/commissions/{commission_id}", response_model=CommissionView)
def get_commission(
    request: Request, commission_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> CommissionView:
    """One commission and its state."""
    with runtime_of(request).db.session() as session:
        return CommissionView.model_validate(_commission(session, commission_id), from_attributes=True)


@router.post("/v1/commissions/{commission_id}/discount", response_model=CommissionView)
def discount_commission(
    request: Request, commission_id: uuid.UUID, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> CommissionView:
    """Pay a pending commission early, minus the discounting fee (``POSTROOM_COMMISSION_DISCOUNT_RATE``)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        commission = _commission(session, commission_id, lock=True)
        commissions.discount(session, commission, rt.settings, actor=key.id)
        return CommissionView.model_validate(commission, from_attributes=True)


@router.get("/v1/commissions/{commission_id}/history", response_model=list[HistoryEntry])
def commission_history(
    request: Request, commission_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> list[HistoryEntry]:
    """Every transition of the commission."""
    with runtime_of(request).db.session() as session:
        _commission(session, commission_id)
        return history_view(session, "commission", commission_id)


@router.post("/v1/agents/{agent_id}/advances", response_model=AdvanceView, status_code=201)
def book_advance(
    request: Request,
    agent_id: uuid.UUID,
    body: AdvanceRequest,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> AdvanceView:
    """Book an advance or an Einarbeitungskredit (idempotent by ``reference``)."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        agent = session.get(Party, agent_id)
        if agent is None or agent.kind != "agent":
            raise ProblemError(404, "Not found", f"no agent {agent_id}", slug="not-found")
        if body.order_id is not None and session.get(Order, body.order_id) is None:
            raise ProblemError(404, "Not found", f"no order {body.order_id}", slug="not-found")
        advance = commissions.book_advance(
            session,
            agent_id,
            kind=body.kind,
            amount=body.amount,
            reference=body.reference,
            order_id=body.order_id,
            settings=rt.settings,
            actor=key.id,
            reason=body.reason,
        )
        return AdvanceView.model_validate(advance, from_attributes=True)


@router.post("/v1/commission-runs", response_model=list[StatementView], status_code=201)
def run_commissions(
    request: Request, body: RunRequest, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> list[StatementView]:
    """Issue one self-billed commission statement per agent with payable commissions; a second run
    finds nothing new to pay."""
    if body.period_end < body.period_start:
        raise ProblemError(422, "Invalid period", "period_end is before period_start", slug="invalid-period")
    rt = runtime_of(request)
    today: date = business_day(rt)
    with rt.db.session() as session:
        statements, outbox = commissions.run(
            session,
            rt.settings,
            period_start=body.period_start,
            period_end=body.period_end,
            today=today,
            actor=key.id,
        )
        views = [StatementView.model_validate(s, from_attributes=True) for s in statements]
    enqueue(request, outbox)
    return views
