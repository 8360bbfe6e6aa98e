"""``/v1/accounts``: a customer's account and flags, and account statements (one or a run).

A customer's dunning block and overrides are ``PUT /v1/accounts/{party_id}/dunning`` (dunning routes).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from postroom.api.auth import require
from postroom.api.core_calls import business_day, enqueue, runtime_of
from postroom.api.problems import FieldError, ProblemError, validation_problem
from postroom.core.billing import accounts, statements
from postroom.documents.fields import IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(tags=["core"])


class ItemView(BaseModel):
    """An open item of the account."""

    invoice_id: uuid.UUID
    number: str | None
    status: str
    issue_date: date | None
    due_date: date | None
    amount: Decimal
    paid: Decimal
    open_amount: Decimal
    dunning_level: int | None
    days_overdue: int
    in_collection: bool
    in_payment_plan: bool
    disputed: bool


class ChargeView(BaseModel):
    """An open fee, flat sum, interest or collection cost."""

    charge_id: uuid.UUID
    invoice_id: uuid.UUID | None
    kind: str
    reference: str
    booked_on: date
    amount: Decimal
    open_amount: Decimal


class CreditView(BaseModel):
    """Unplaced money of the customer."""

    payment_id: uuid.UUID
    booking_date: date
    amount: Decimal


class BehaviourView(BaseModel):
    """How the customer pays."""

    paid_items: int
    average_days_late: Decimal | None = Field(
        description="Days from due date to receipt, weighted by amount, over the paid items' money."
    )
    reminders: int = Field(description="Dunning letters dated in the 365 days up to as_of.")


class FlagView(BaseModel):
    """A flag and its reasons."""

    raised: bool
    reasons: list[str]


class AccountView(BaseModel):
    """A customer's account: pseudonymous party id and customer number, never a name."""

    party_id: uuid.UUID
    customer_number: str | None
    as_of: date
    items: list[ItemView]
    charges: list[ChargeView]
    credits: list[CreditView]
    items_total: Decimal
    charges_total: Decimal
    credit_total: Decimal
    balance: Decimal
    behaviour: BehaviourView
    personal_visit: FlagView
    order_block: FlagView

    @classmethod
    def of(cls, found: accounts.Account) -> AccountView:
        """The view of a computed account."""
        return cls(
            party_id=found.party_id,
            customer_number=found.customer_number,
            as_of=found.as_of,
            items=[ItemView.model_validate(item, from_attributes=True) for item in found.items],
            charges=[ChargeView.model_validate(charge, from_attributes=True) for charge in found.charges],
            credits=[CreditView.model_validate(credit, from_attributes=True) for credit in found.credits],
            items_total=found.items_total,
            charges_total=found.charges_total,
            credit_total=found.credit_total,
            balance=found.balance,
            behaviour=BehaviourView.model_validate(found.behaviour, from_attributes=True),
            personal_visit=_flag(found.personal_visit),
            order_block=_flag(found.order_block),
        )


class FlaggedView(BaseModel):
    """A flagged customer: pseudonymous id, customer number, balance and the flag's reasons."""

    party_id: uuid.UUID
    customer_number: str | None
    balance: Decimal
    reasons: list[str]


class StatementRequest(StrictModel):
    """A statement of one customer as of a day, optionally with a balance-confirmation slip."""

    as_of: IsoDate | None = Field(default=None, description="The statement's day; today when omitted.")
    confirm_by: IsoDate | None = Field(
        default=None, description="Ask for the signed confirmation by this day."
    )


class StatementView(BaseModel):
    """A statement sent to one customer."""

    party_id: uuid.UUID
    document_id: uuid.UUID
    number: str
    as_of: date


class StatementRunRequest(StrictModel):
    """A statement run for every customer with open items."""

    as_of: IsoDate


class SkippedCustomerView(BaseModel):
    """A customer the run sent nothing, and why."""

    party_id: uuid.UUID
    reason: str


class StatementRunView(BaseModel):
    """A statement run: one bulk batch; ``repeated`` when the day ran before (nothing sent now)."""

    id: uuid.UUID
    as_of: date
    batch_id: uuid.UUID | None
    statements: int
    repeated: bool
    skipped: list[SkippedCustomerView]


def _flag(flag: accounts.Flag) -> FlagView:
    return FlagView(raised=flag.raised, reasons=list(flag.reasons))


@router.get("/v1/accounts", response_model=list[FlaggedView])
def list_flagged(
    request: Request,
    flag: Annotated[Literal["order_block", "personal_visit"], Query()],
    _: Annotated[ApiKey, Depends(require("core:read"))],
    as_of: Annotated[date | None, Query()] = None,
) -> list[FlaggedView]:
    """Customers carrying ``flag`` (order block or personal visit) as of a day, by customer number."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        found = accounts.flagged(session, rt.settings, flag, as_of=as_of or business_day(rt))
        return [
            FlaggedView(
                party_id=item.party_id,
                customer_number=item.customer_number,
                balance=item.balance,
                reasons=list(item.flag(flag).reasons),
            )
            for item in found
        ]


@router.get("/v1/accounts/{party_id}", response_model=AccountView)
def get_account(
    request: Request,
    party_id: uuid.UUID,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    as_of: Annotated[date | None, Query()] = None,
) -> AccountView:
    """A customer's open items, charges, credit, balance, payment behaviour and flags as of a day."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        found = accounts.account(session, rt.settings, party_id, as_of=as_of or business_day(rt))
        if found is None:
            raise ProblemError(404, "Not found", f"no customer {party_id}", slug="not-found")
        return AccountView.of(found)


@router.post("/v1/accounts/{party_id}/statements", response_model=StatementView, status_code=201)
def send_statement(
    request: Request,
    party_id: uuid.UUID,
    body: StatementRequest,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> StatementView:
    """Send the customer an ``account_statement`` of its open items as of a day (201 with the document)."""
    rt = runtime_of(request)
    as_of = body.as_of or business_day(rt)
    if body.confirm_by is not None and body.confirm_by < as_of:
        raise validation_problem(
            [FieldError(field="confirm_by", message="must not be before as_of", type="value_error")]
        )
    with rt.db.session() as session:
        sent = statements.issue_statement(
            session, rt.settings, party_id, as_of=as_of, confirm_by=body.confirm_by, actor=key.id
        )
        if sent is None:
            raise ProblemError(404, "Not found", f"no customer {party_id}", slug="not-found")
        document, outbox = sent
        view = StatementView(party_id=party_id, document_id=document.id, number=document.number, as_of=as_of)
    enqueue(request, outbox)
    return view


@router.post("/v1/account-statements/runs", response_model=StatementRunView)
def run_statements(
    request: Request,
    body: StatementRunRequest,
    response: Response,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> StatementRunView:
    """Send a statement to every customer with open items as one bulk run (201 with its
    ``batch_id``); the same day again returns that run (200, ``repeated``) and sends nothing."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        outcome = statements.run(session, rt.settings, as_of=body.as_of, actor=key.id)
        view = StatementRunView(
            id=outcome.run_id,
            as_of=outcome.as_of,
            batch_id=outcome.batch_id,
            statements=outcome.statements,
            repeated=outcome.repeated,
            skipped=[SkippedCustomerView(party_id=s.party_id, reason=s.reason) for s in outcome.skipped],
        )
    enqueue(request, outcome.outbox)
    response.status_code = 200 if outcome.repeated else 201
    return view
