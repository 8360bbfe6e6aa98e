"""``/v1/dunning-runs``, the dunning policy in force, and dunning blocks and disputes."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from postroom.api.auth import require
from postroom.api.core_calls import enqueue, runtime_of
from postroom.api.problems import ProblemError
from postroom.api.routes.invoices import InvoiceView
from postroom.core.billing import dunning, history
from postroom.core.billing.dunning_policy import Override, dunning_policy
from postroom.core.billing.models import DunningAccount, DunningNotice, DunningRun, Invoice, Party
from postroom.documents.fields import IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(tags=["core"])


class RunRequest(StrictModel):
    """A dunning run on a key date (Stichtag)."""

    key_date: IsoDate
    grace_days: int = Field(default=0, ge=0, le=60, description="Karenztage added to every level's due days.")
    dry_run: bool = Field(default=False, description="Return the proposal and change nothing.")


class StepView(BaseModel):
    """An item raised by a letter."""

    invoice_id: uuid.UUID
    invoice_number: str
    level: int
    open_amount: Decimal
    default_since: date
    interest: Decimal


class FeeView(BaseModel):
    """A cost charged with a letter."""

    kind: str
    description: str
    amount: Decimal


class LetterView(BaseModel):
    """One customer's letter: pseudonymous party id and customer number only."""

    party_id: uuid.UUID
    customer_number: str | None
    level: int
    channels: list[str]
    pay_by: date
    items: list[StepView]
    fees: list[FeeView]
    principal: Decimal
    interest: Decimal
    fee_total: Decimal
    total: Decimal


class SkippedView(BaseModel):
    """An item or letter the run left alone, and why."""

    invoice_number: str | None
    party_id: uuid.UUID
    reason: str


class NoticeView(BaseModel):
    """A letter a run sent."""

    id: uuid.UUID
    party_id: uuid.UUID
    number: str
    level: int
    issue_date: date
    pay_by: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    flat_rate: bool
    total: Decimal
    document_id: uuid.UUID | None


class RunView(BaseModel):
    """A dunning run, or the proposal of a dry run (no ``id``)."""

    id: uuid.UUID | None
    key_date: date
    grace_days: int
    policy_version: str
    dry_run: bool
    repeated: bool = Field(description="The key date ran before: this is that run, nothing was sent now.")
    batch_id: uuid.UUID | None
    letters: int
    items: int
    proposal: list[LetterView]
    skipped: list[SkippedView]
    notices: list[NoticeView] = Field(default_factory=list, description="The letters a stored run sent.")


def _letter_view(letter: dunning.ProposedLetter) -> LetterView:
    return LetterView(
        party_id=letter.party_id,
        customer_number=letter.customer_number,
        level=letter.level,
        channels=list(letter.channels),
        pay_by=letter.pay_by,
        items=[StepView.model_validate(item, from_attributes=True) for item in letter.items],
        fees=[FeeView.model_validate(fee, from_attributes=True) for fee in letter.fees],
        principal=letter.principal,
        interest=letter.interest,
        fee_total=letter.fee_total,
        total=letter.total,
    )


def _run_view(
    proposal: dunning.Proposal, run: DunningRun | None, *, dry_run: bool, repeated: bool
) -> RunView:
    return RunView(
        id=run.id if run else None,
        key_date=proposal.key_date,
        grace_days=proposal.grace_days,
        policy_version=proposal.policy_version,
        dry_run=dry_run,
        repeated=repeated,
        batch_id=run.batch_id if run else None,
        letters=run.letters if run else len(proposal.letters),
        items=run.items if run else sum(len(letter.items) for letter in proposal.letters),
        proposal=[_letter_view(letter) for letter in proposal.letters],
        skipped=[SkippedView.model_validate(s, from_attributes=True) for s in proposal.skipped],
    )


@router.post("/v1/dunning-runs", response_model=RunView)
def run_dunning(
    request: Request,
    body: RunRequest,
    response: Response,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> RunView:
    """Raise every overdue item one level and send one letter per customer as one bulk run
    (201 with its ``batch_id``); ``dry_run`` only proposes (200). A key date runs once: again,
    the first run is returned (200, ``repeated``) and nothing is sent."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        if body.dry_run:
            proposal = dunning.propose(
                session, rt.settings, key_date=body.key_date, grace_days=body.grace_days
            )
            return _run_view(proposal, None, dry_run=True, repeated=False)
        outcome = dunning.run(
            session, rt.settings, key_date=body.key_date, grace_days=body.grace_days, actor=key.id
        )
        view = _run_view(outcome.proposal, outcome.run, dry_run=False, repeated=outcome.repeated)
    enqueue(request, outcome.outbox)
    response.status_code = 200 if outcome.repeated else 201
    return view


@router.get("/v1/dunning-runs/{run_id}", response_model=RunView)
def get_dunning_run(
    request: Request, run_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> RunView:
    """A run with its letters' figures (as stored)."""
    with runtime_of(request).db.session() as session:
        run = session.get(DunningRun, run_id)
        if run is None:
            raise ProblemError(404, "Not found", f"no dunning run {run_id}", slug="not-found")
        notices = session.query(DunningNotice).filter(DunningNotice.run_id == run.id).all()
        view = _run_view(dunning.empty_proposal(run), run, dry_run=False, repeated=False)
        view.notices = [NoticeView.model_validate(n, from_attributes=True) for n in notices]
        return view


@router.get("/v1/dunning-policy")
def get_dunning_policy(
    request: Request, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> dict[str, Any]:
    """The policy in force (levels, fees, debtor rules, collection preconditions) and its version."""
    return dunning_policy(runtime_of(request).settings).model_dump(mode="json")


class ItemDunning(StrictModel):
    """An item's dunning block (Mahnsperre) and dispute."""

    blocked_until: IsoDate | None = None
    disputed: bool = False
    reason: str = Field(min_length=1, max_length=500)


@router.put("/v1/invoices/{invoice_id}/dunning", response_model=InvoiceView)
def set_item_dunning(
    request: Request,
    invoice_id: uuid.UUID,
    body: ItemDunning,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> InvoiceView:
    """Block an item from dunning until a day, or mark it disputed (no dunning, no collection)."""
    with runtime_of(request).db.session() as session:
        invoice = session.get(Invoice, invoice_id, with_for_update=True)
        if invoice is None:
            raise ProblemError(404, "Not found", f"no invoice {invoice_id}", slug="not-found")
        invoice.dunning_blocked_until, invoice.disputed = body.blocked_until, body.disputed
        history.record(
            session,
            "invoice",
            invoice.id,
            "dunning settings",
            actor=key.id,
            reason=body.reason,
            blocked_until=body.blocked_until,
            disputed=body.disputed,
        )
        return InvoiceView.of(invoice)


class AccountDunning(StrictModel):
    """A customer's dunning block and overrides of the policy."""

    blocked_until: IsoDate | None = None
    block_reason: str | None = Field(default=None, max_length=200)
    overrides: Override = Field(default_factory=Override)


@router.put("/v1/accounts/{party_id}/dunning", response_model=AccountDunning)
def set_account_dunning(
    request: Request,
    party_id: uuid.UUID,
    body: AccountDunning,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> AccountDunning:
    """Set a customer's Mahnsperre and policy overrides (extra days, no fees, no interest, channel)."""
    with runtime_of(request).db.session() as session:
        if session.get(Party, party_id) is None:
            raise ProblemError(404, "Not found", f"no customer {party_id}", slug="not-found")
        account = session.get(DunningAccount, party_id, with_for_update=True)
        if account is None:
            account = DunningAccount(party_id=party_id)
            session.add(account)
        account.blocked_until, account.block_reason = body.blocked_until, body.block_reason
        account.overrides = body.overrides.model_dump(mode="json", exclude_defaults=True)
        history.record(
            session,
            "party",
            party_id,
            "dunning settings",
            actor=key.id,
            reason=body.block_reason,
            blocked_until=body.blocked_until,
            overrides=account.overrides,
        )
        return body
