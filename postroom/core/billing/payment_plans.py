"""Payment plans (Ratenvereinbarung): a customer's open items paid in instalments, and their review.

Agreeing a plan takes open items of one customer that are not disputed, not in collection and
not in another plan. The plan covers the items' open amounts (fees and interest already charged
stay open charges on the account): an optional down payment (instalment 0, due on the issue date
unless given), then ``instalments`` equal amounts from the first due date every
``interval_months`` months, the last taking the rounding rest so they sum exactly to the total
(the ``payment_plan`` document computes the same schedule with the same function). The items
carry the plan's id, so the dunning run leaves them alone, and the customer gets the plan as a
document.

The review compares the money paid on the plan's items since the agreement (their paid totals
less what was paid at the start) with the instalments' running total: an instalment is paid
once that money covers it and every one before it, and missed when it is not covered
``grace_days`` days after its due date (the policy's ``[payment_plans]``). A plan whose items
are all settled is completed; one with ``fail_after_missed`` missed instalments fails: its
items leave it, the rest is due at once and the next dunning run raises them again. A closed
plan's items never keep its id. Every step is recorded in the history of the plan and of its
items.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import followups, history, numbers
from postroom.core.billing.dunning_policy import PlanRules, dunning_policy
from postroom.core.billing.invoices import ENTITY as INVOICE
from postroom.core.billing.models import CoreEvent, Instalment, Invoice, Party, PaymentPlan
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import InvoiceStatus
from postroom.documents.types.payment_plan import MAX_INSTALLMENTS, compute_schedule
from postroom.money import ZERO, decimal_text, round_money
from postroom.settings import Settings

ENTITY = "payment_plan"
AGREEABLE = frozenset(
    {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE}
)
"""Open invoice states a plan may take (not in collection)."""


class PlanStatus(StrEnum):
    """Where a plan stands."""

    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class InstalmentStatus(StrEnum):
    """Whether an instalment is covered by the money received."""

    OPEN = "open"
    PAID = "paid"
    MISSED = "missed"


class PlanRefused(Exception):
    """The plan cannot be agreed or changed. ``findings`` name the fields; ``invalid`` is true when
    the request contradicts itself or the amounts (422), false when the items' or the plan's
    state forbids the step (409)."""

    def __init__(self, message: str, findings: list[dict[str, str]] | None = None, *, invalid: bool = False):
        super().__init__(message)
        self.findings = findings or []
        self.invalid = invalid


@dataclass(frozen=True, slots=True)
class Terms:
    """What the customer and the clerk agreed."""

    party_id: uuid.UUID
    invoice_ids: list[uuid.UUID]
    instalments: int
    first_due_date: date
    issue_date: date
    down_payment: Decimal = ZERO
    interval_months: int = 1
    down_payment_due_date: date | None = None


@dataclass
class ReviewOutcome:
    """What a review changed: instalments newly paid or missed, plans completed or failed (numbers)."""

    as_of: date
    reviewed: int = 0
    instalments_paid: int = 0
    instalments_missed: int = 0
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def agree(session: Session, settings: Settings, terms: Terms, *, actor: str) -> tuple[PaymentPlan, Outbox]:
    """Agree a plan over the customer's items and send it; :class:`PlanRefused` when it may not be."""
    _check_terms(terms)
    items = _agreeable_items(session, terms)
    total = sum((invoice.open_amount for invoice in items), ZERO)
    down = round_money(terms.down_payment)
    if down >= total:
        raise _invalid("down_payment", f"the down payment must be less than the items' open total {total}")
    schedule = compute_schedule([total], down, terms.instalments, terms.first_due_date, terms.interval_months)
    if min(item.amount for item in schedule.installments) <= 0:
        raise _invalid(
            "instalments", f"too many instalments for {schedule.financed}: one would be 0.00 or less"
        )
    plan = PaymentPlan(
        id=uuid.uuid4(),
        party_id=terms.party_id,
        number=numbers.next_number(session, settings.payment_plan_prefix, terms.issue_date.year),
        status=PlanStatus.ACTIVE.value,
        issue_date=terms.issue_date,
        total=total,
        down_payment=down,
        paid_at_start=sum((invoice.paid_total for invoice in items), ZERO),
    )
    session.add(plan)
    session.flush()
    if down > 0:
        down_due = terms.down_payment_due_date or terms.issue_date
        session.add(
            Instalment(
                plan_id=plan.id,
                sequence=0,
                due_date=down_due,
                amount=down,
                status=InstalmentStatus.OPEN.value,
            )
        )
    for instalment in schedule.installments:
        session.add(
            Instalment(
                plan_id=plan.id,
                sequence=instalment.number,
                due_date=instalment.due_date,
                amount=instalment.amount,
                status=InstalmentStatus.OPEN.value,
            )
        )
    outbox = Outbox()
    body = _document_body(session, settings, plan, items, terms)
    plan.document_id = submit(session, outbox, body, key=f"core:payment-plan:{plan.id}", api_key_id=actor).id
    for invoice in items:
        invoice.payment_plan_id = plan.id
        history.record(session, INVOICE, invoice.id, "payment plan agreed", actor=actor, plan=plan.number)
        followups.cancel_open(session, "invoice", invoice.id, actor=actor, reason="payment plan agreed")
    history.record(
        session,
        ENTITY,
        plan.id,
        "agreed",
        actor=actor,
        after=PlanStatus.ACTIVE,
        invoice_ids=[invoice.id for invoice in items],
        items=[invoice.number for invoice in items],
        total=total,
        down_payment=down,
        instalments=terms.instalments,
    )
    return plan, outbox


def item_ids(session: Session, plan: PaymentPlan) -> list[uuid.UUID]:
    """The invoices the plan was agreed over (they leave it when it closes)."""
    agreed = session.scalars(
        select(CoreEvent)
        .where(CoreEvent.entity == ENTITY, CoreEvent.entity_id == plan.id, CoreEvent.action == "agreed")
        .order_by(CoreEvent.id)
    ).first()
    return [uuid.UUID(value) for value in agreed.detail.get("invoice_ids", [])] if agreed else []


def items(session: Session, plan: PaymentPlan, *, lock: bool = False) -> list[Invoice]:
    """The plan's invoices, by due date."""
    query = (
        select(Invoice)
        .where(Invoice.id.in_(item_ids(session, plan)))
        .order_by(Invoice.due_date, Invoice.number)
    )
    return list(session.scalars(query.with_for_update() if lock else query))


def instalments(session: Session, plan: PaymentPlan) -> list[Instalment]:
    """The plan's instalments in order (the down payment is number 0)."""
    query = select(Instalment).where(Instalment.plan_id == plan.id).order_by(Instalment.sequence)
    return list(session.scalars(query))


def paid_since_agreement(plan: PaymentPlan, plan_items: list[Invoice]) -> Decimal:
    """The money paid on the plan's items since it was agreed."""
    return sum((invoice.paid_total for invoice in plan_items), ZERO) - plan.paid_at_start


def review(session: Session, settings: Settings, *, as_of: date, actor: str) -> ReviewOutcome:
    """Review every active plan on ``as_of``: instalments paid or missed, plans completed or failed."""
    rules = dunning_policy(settings).payment_plans
    outcome = ReviewOutcome(as_of)
    active = session.scalars(
        select(PaymentPlan)
        .where(PaymentPlan.status == PlanStatus.ACTIVE.value, PaymentPlan.issue_date <= as_of)
        .order_by(PaymentPlan.number)
        .with_for_update()
    ).all()
    for plan in active:
        _review_plan(session, plan, rules, as_of, outcome, actor=actor)
    return outcome


def cancel(session: Session, plan: PaymentPlan, *, as_of: date, actor: str, reason: str) -> None:
    """End an active plan by agreement: its items leave it and are due as before."""
    if plan.status != PlanStatus.ACTIVE:
        raise PlanRefused(f"payment plan {plan.number} is {plan.status}, not active")
    _close(session, plan, PlanStatus.CANCELLED, as_of, actor=actor, reason=reason)


def _review_plan(
    session: Session, plan: PaymentPlan, rules: PlanRules, as_of: date, outcome: ReviewOutcome, *, actor: str
) -> None:
    outcome.reviewed += 1
    plan_items = items(session, plan, lock=True)
    paid = paid_since_agreement(plan, plan_items)
    covered = ZERO
    for instalment in instalments(session, plan):
        covered += instalment.amount
        if covered <= paid:
            status = InstalmentStatus.PAID
        elif as_of > instalment.due_date + timedelta(days=rules.grace_days):
            status = InstalmentStatus.MISSED
        else:
            status = InstalmentStatus.OPEN
        if status != instalment.status:
            history.record(
                session,
                ENTITY,
                plan.id,
                f"instalment {status.value}",
                actor=actor,
                sequence=instalment.sequence,
                due_date=instalment.due_date,
                amount=instalment.amount,
                paid=paid,
            )
            instalment.status = status.value
            if status is InstalmentStatus.PAID:
                outcome.instalments_paid += 1
            elif status is InstalmentStatus.MISSED:
                outcome.instalments_missed += 1
    missed = [i.sequence for i in instalments(session, plan) if i.status == InstalmentStatus.MISSED]
    if all(invoice.open_amount <= 0 for invoice in plan_items):
        _close(session, plan, PlanStatus.COMPLETED, as_of, actor=actor, reason="every item is settled")
        outcome.completed.append(plan.number)
    elif len(missed) >= rules.fail_after_missed:
        reason = f"{len(missed)} instalments missed: the rest is due at once"
        _close(session, plan, PlanStatus.FAILED, as_of, actor=actor, reason=reason, missed=missed)
        outcome.failed.append(plan.number)


def _close(
    session: Session,
    plan: PaymentPlan,
    status: PlanStatus,
    as_of: date,
    *,
    actor: str,
    reason: str,
    **detail: Any,
) -> None:
    """Close the plan; its items leave it (a failed or cancelled plan's items are dunned again)."""
    before = PlanStatus(plan.status)
    for invoice in items(session, plan, lock=True):
        if invoice.payment_plan_id == plan.id:
            invoice.payment_plan_id = None
            history.record(
                session,
                INVOICE,
                invoice.id,
                f"payment plan {status.value}",
                actor=actor,
                reason=reason,
                plan=plan.number,
            )
    plan.status, plan.closed_on = status.value, as_of
    history.record(
        session,
        ENTITY,
        plan.id,
        status.value,
        actor=actor,
        reason=reason,
        before=before,
        after=status,
        **detail,
    )


def _check_terms(terms: Terms) -> None:
    """What the request must satisfy by itself (422)."""
    findings = [
        _field(f"invoice_ids[{index}]", "the invoice is named twice")
        for index, invoice_id in enumerate(terms.invoice_ids)
        if invoice_id in terms.invoice_ids[:index]
    ]
    if not 1 <= terms.instalments <= MAX_INSTALLMENTS:
        findings.append(_field("instalments", f"must be between 1 and {MAX_INSTALLMENTS}"))
    if terms.first_due_date < terms.issue_date:
        findings.append(_field("first_due_date", "must not be before the issue date"))
    if terms.down_payment < 0:
        findings.append(_field("down_payment", "must not be negative"))
    if terms.down_payment_due_date is not None:
        if terms.down_payment <= 0:
            findings.append(_field("down_payment_due_date", "needs a down payment"))
        elif not terms.issue_date <= terms.down_payment_due_date <= terms.first_due_date:
            findings.append(
                _field("down_payment_due_date", "must lie between the issue date and the first due date")
            )
    if findings:
        raise PlanRefused("the payment plan's terms are inconsistent", findings, invalid=True)


def _agreeable_items(session: Session, terms: Terms) -> list[Invoice]:
    """The items, locked; :class:`PlanRefused` (409) naming each one that may not join a plan."""
    found = [session.get(Invoice, invoice_id, with_for_update=True) for invoice_id in terms.invoice_ids]
    findings = []
    for index, invoice in enumerate(found):
        problem = _refusal(session, invoice, terms.party_id)
        if problem is not None:
            findings.append(
                {"field": f"invoice_ids[{index}]", "message": problem, "code": "plan_precondition"}
            )
    if findings:
        raise PlanRefused("the items cannot be paid in instalments", findings)
    return sorted(
        (invoice for invoice in found if invoice is not None),
        key=lambda i: (i.due_date or date.min, i.number or ""),
    )


def _refusal(session: Session, invoice: Invoice | None, party_id: uuid.UUID) -> str | None:
    if invoice is None or invoice.kind == "credit_note":
        return "no such invoice"
    if invoice.party_id != party_id:
        return "the invoice belongs to another customer"
    if invoice.collection_case_id is not None or invoice.status is InvoiceStatus.IN_COLLECTION:
        return "the invoice is in collection"
    if invoice.disputed:
        return "the claim is disputed"
    if invoice.payment_plan_id is not None:
        current = session.get(PaymentPlan, invoice.payment_plan_id)
        return (
            f"the invoice is already in payment plan {current.number if current else invoice.payment_plan_id}"
        )
    if invoice.status not in AGREEABLE or invoice.open_amount <= 0:
        return f"the invoice is {invoice.status}: nothing is open"
    return None


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message, "code": "plan_terms"}


def _invalid(name: str, message: str) -> PlanRefused:
    return PlanRefused(message, [_field(name, message)], invalid=True)


def _document_body(
    session: Session, settings: Settings, plan: PaymentPlan, plan_items: list[Invoice], terms: Terms
) -> dict[str, Any]:
    party = session.get_one(Party, plan.party_id)
    rules = dunning_policy(settings).payment_plans
    data: dict[str, Any] = {
        "number": plan.number,
        "issue_date": plan.issue_date.isoformat(),
        "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
        "currency": "EUR",
        "claims": [
            {"reference": f"Rechnung {invoice.number}", "amount": decimal_text(invoice.open_amount)}
            for invoice in plan_items
        ],
        "down_payment": decimal_text(plan.down_payment),
        "installments": terms.instalments,
        "first_due_date": terms.first_due_date.isoformat(),
        "interval_months": terms.interval_months,
        "terms": [
            f"Ist eine Rate {rules.grace_days} Tage nach ihrer Fälligkeit nicht gezahlt, gilt sie als "
            f"versäumt. Bei {rules.fail_after_missed} versäumten Raten endet die Vereinbarung und die "
            "gesamte Restforderung wird sofort fällig.",
            "Zahlungen werden auf die aufgeführten Rechnungen angerechnet; bitte geben Sie die "
            "Rechnungsnummer als Verwendungszweck an.",
        ],
    }
    if plan.down_payment > 0:
        data["down_payment_due_date"] = (terms.down_payment_due_date or terms.issue_date).isoformat()
    return {
        "type": "payment_plan",
        "locale": "de",
        "recipient": recipient(party).model_dump(mode="json", exclude_none=True),
        "channels": ["email" if party.email else "print", "archive"],
        "data": data,
    }
