"""A customer's account (Kontenblatt): open items, open charges, credit, balance, payment
behaviour and the policy's flags (personal visit, order block).

Everything is computed as of a day: items issued, charges booked and credit received up to it,
days overdue counted to it, reminders in the 365 days ending on it. Amounts are what is open now,
and the days late cover every item paid so far.

Balance = open items + open charges (fees, flat sums, interest, collection costs) − the party's
unplaced credit (its payments in status ``credit``); positive: the customer owes.

Days late on average (payment behaviour) is weighted by amount: every euro placed on an item
that is now paid counts the days from the item's due date to the day it was received (the
payment's booking date; a euro paid early counts 0), and the average is taken over all those
euros, rounded half-up to a tenth of a day. A returned or transferred-away amount (a negative
allocation) takes back the latest money placed before it, so only the money that paid the item
counts. Weighting by amount means a large invoice paid late weighs more than a small one paid
on time, which is what an order block is about. Reminders are the dunning letters (any level)
dated in the 365 days ending on the day.

Flags (the policy's ``[accounts]``): ``personal_visit`` once the balance reaches
``visit_from_balance`` or ``visit_from_reminders`` reminders were sent; ``order_block`` once an
open item reached ``order_block_from_level`` or is in collection, or payments arrive
``order_block_from_days_late`` days late on average. Each flag carries its reasons (numbers and
amounts, never personal data).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from postroom.core.billing.dunning_policy import AccountRules, dunning_policy
from postroom.core.billing.models import Allocation, Charge, DunningNotice, Invoice, Party, Payment
from postroom.core.billing.payments import CREDIT
from postroom.core.billing.states import OPEN_INVOICE_STATES, InvoiceStatus
from postroom.money import ZERO
from postroom.settings import Settings

FlagName = Literal["personal_visit", "order_block"]
REMINDER_WINDOW = timedelta(days=365)
TENTH = Decimal("0.1")
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An invoice that is owed, as of the account's day."""

    invoice_id: uuid.UUID
    number: str | None
    status: InvoiceStatus
    issue_date: date | None
    due_date: date | None
    amount: Decimal
    """What the item bills: gross total plus charges on it (a returned debit's bank fee)."""
    paid: Decimal
    open_amount: Decimal
    dunning_level: int | None
    days_overdue: int
    in_collection: bool
    in_payment_plan: bool
    disputed: bool


@dataclass(frozen=True, slots=True)
class OpenCharge:
    """A fee, flat sum, interest or collection cost that is still owed."""

    charge_id: uuid.UUID
    invoice_id: uuid.UUID | None
    kind: str
    reference: str
    booked_on: date
    amount: Decimal
    open_amount: Decimal


@dataclass(frozen=True, slots=True)
class Credit:
    """Money of the customer not placed on any item (a credit balance)."""

    payment_id: uuid.UUID
    booking_date: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the customer pays: days late on average (amount-weighted) and reminders in a year."""

    paid_items: int
    average_days_late: Decimal | None
    """``None`` while no item is paid."""
    reminders: int


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag of the account and why it is raised; raised when there is a reason."""

    reasons: tuple[str, ...]

    @property
    def raised(self) -> bool:
        """Whether any rule raises the flag."""
        return bool(self.reasons)


@dataclass(frozen=True, slots=True)
class Account:
    """One customer's account as of ``as_of``."""

    party_id: uuid.UUID
    customer_number: str | None
    as_of: date
    items: tuple[OpenItem, ...]
    charges: tuple[OpenCharge, ...]
    credits: tuple[Credit, ...]
    behaviour: Behaviour
    personal_visit: Flag
    order_block: Flag

    @property
    def items_total(self) -> Decimal:
        """The open amounts of the items."""
        return sum((item.open_amount for item in self.items), ZERO)

    @property
    def charges_total(self) -> Decimal:
        """The open amounts of the charges."""
        return sum((charge.open_amount for charge in self.charges), ZERO)

    @property
    def credit_total(self) -> Decimal:
        """The unplaced credit."""
        return sum((credit.amount for credit in self.credits), ZERO)

    @property
    def balance(self) -> Decimal:
        """Open items plus open charges less credit; positive: the customer owes."""
        return _balance(self.items, self.charges, self.credits)

    def flag(self, name: FlagName) -> Flag:
        """The flag ``name``."""
        return self.personal_visit if name == "personal_visit" else self.order_block


def account(session: Session, settings: Settings, party_id: uuid.UUID, *, as_of: date) -> Account | None:
    """The account of one customer; ``None`` when there is no such party."""
    found = accounts(session, settings, [party_id], as_of=as_of)
    return found[0] if found else None


def accounts(
    session: Session, settings: Settings, party_ids: Sequence[uuid.UUID], *, as_of: date
) -> list[Account]:
    """The accounts of ``party_ids`` (unknown ids left out), computed with a few queries per
    thousand customers."""
    rules = dunning_policy(settings).accounts
    result: list[Account] = []
    for start in range(0, len(party_ids), _CHUNK):
        result.extend(_chunk(session, rules, list(party_ids[start : start + _CHUNK]), as_of))
    return result


def flagged(session: Session, settings: Settings, name: FlagName, *, as_of: date) -> list[Account]:
    """The accounts that carry the flag ``name`` on ``as_of``, by customer number."""
    candidates = union(
        select(Invoice.party_id).where(
            Invoice.kind != "credit_note",
            Invoice.status.in_([*OPEN_INVOICE_STATES, InvoiceStatus.PAID]),
            Invoice.issue_date <= as_of,
        ),
        select(DunningNotice.party_id).where(
            DunningNotice.issue_date > as_of - REMINDER_WINDOW, DunningNotice.issue_date <= as_of
        ),
    )
    party_ids = list(session.scalars(select(candidates.subquery().c.party_id)))
    raised = [item for item in accounts(session, settings, party_ids, as_of=as_of) if item.flag(name).raised]
    return sorted(raised, key=lambda item: (item.customer_number or "", str(item.party_id)))


def open_items(session: Session, party_ids: Sequence[uuid.UUID], as_of: date) -> list[Invoice]:
    """The items owed by ``party_ids`` that were issued by ``as_of``, by due date."""
    query = (
        select(Invoice)
        .where(
            Invoice.party_id.in_(party_ids),
            Invoice.kind != "credit_note",
            Invoice.status.in_(OPEN_INVOICE_STATES),
            Invoice.open_amount > 0,
            Invoice.issue_date <= as_of,
        )
        .order_by(Invoice.party_id, Invoice.due_date, Invoice.number)
    )
    return list(session.scalars(query))


def _chunk(session: Session, rules: AccountRules, party_ids: list[uuid.UUID], as_of: date) -> list[Account]:
    parties = dict(session.execute(select(Party.id, Party.reference).where(Party.id.in_(party_ids))).all())
    items: dict[uuid.UUID, list[OpenItem]] = defaultdict(list)
    for invoice in open_items(session, party_ids, as_of):
        items[invoice.party_id].append(_item(invoice, as_of))
    charges: dict[uuid.UUID, list[OpenCharge]] = defaultdict(list)
    for charge in session.scalars(
        select(Charge)
        .where(
            Charge.party_id.in_(party_ids),
            Charge.status == "open",
            Charge.open_amount > 0,
            Charge.booked_on <= as_of,
        )
        .order_by(Charge.booked_on, Charge.created_at)
    ):
        charges[charge.party_id].append(
            OpenCharge(
                charge.id,
                charge.invoice_id,
                charge.kind,
                charge.reference,
                charge.booked_on,
                charge.amount,
                charge.open_amount,
            )
        )
    credits: dict[uuid.UUID, list[Credit]] = defaultdict(list)
    for payment in session.scalars(
        select(Payment)
        .where(
            Payment.party_id.in_(party_ids),
            Payment.status == CREDIT,
            Payment.unallocated > 0,
            Payment.booking_date <= as_of,
        )
        .order_by(Payment.booking_date)
    ):
        assert payment.party_id is not None
        credits[payment.party_id].append(Credit(payment.id, payment.booking_date, payment.unallocated))
    reminders = _reminders(session, party_ids, as_of)
    lateness = _days_late(session, party_ids)
    result = []
    for party_id, reference in parties.items():
        paid_items, average = lateness.get(party_id, (0, None))
        behaviour = Behaviour(paid_items, average, reminders.get(party_id, 0))
        own_items, own_charges = tuple(items[party_id]), tuple(charges[party_id])
        own_credits = tuple(credits[party_id])
        balance = _balance(own_items, own_charges, own_credits)
        result.append(
            Account(
                party_id=party_id,
                customer_number=reference,
                as_of=as_of,
                items=own_items,
                charges=own_charges,
                credits=own_credits,
                behaviour=behaviour,
                personal_visit=_personal_visit(rules, balance, behaviour),
                order_block=_order_block(rules, own_items, behaviour),
            )
        )
    return result


def _balance(items: Iterable[OpenItem], charges: Iterable[OpenCharge], credits: Iterable[Credit]) -> Decimal:
    return (
        sum((item.open_amount for item in items), ZERO)
        + sum((charge.open_amount for charge in charges), ZERO)
        - sum((credit.amount for credit in credits), ZERO)
    )


def _item(invoice: Invoice, as_of: date) -> OpenItem:
    overdue = max(0, (as_of - invoice.due_date).days) if invoice.due_date is not None else 0
    return OpenItem(
        invoice_id=invoice.id,
        number=invoice.number,
        status=invoice.status,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        amount=invoice.gross_total + invoice.charges_total,
        paid=invoice.paid_total,
        open_amount=invoice.open_amount,
        dunning_level=invoice.dunning_level,
        days_overdue=overdue,
        in_collection=invoice.collection_case_id is not None or invoice.status is InvoiceStatus.IN_COLLECTION,
        in_payment_plan=invoice.payment_plan_id is not None,
        disputed=invoice.disputed,
    )


def _reminders(session: Session, party_ids: list[uuid.UUID], as_of: date) -> dict[uuid.UUID, int]:
    query = (
        select(DunningNotice.party_id, func.count())
        .where(
            DunningNotice.party_id.in_(party_ids),
            DunningNotice.issue_date > as_of - REMINDER_WINDOW,
            DunningNotice.issue_date <= as_of,
        )
        .group_by(DunningNotice.party_id)
    )
    return {party_id: int(count) for party_id, count in session.execute(query)}


def _days_late(session: Session, party_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, Decimal | None]]:
    """Per party: the number of paid items and the amount-weighted days late of their money."""
    query = (
        select(Invoice.party_id, Invoice.id, Invoice.due_date, Allocation.amount, Payment.booking_date)
        .join(Invoice, Invoice.id == Allocation.invoice_id)
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(
            Invoice.party_id.in_(party_ids),
            Invoice.kind != "credit_note",
            Invoice.status == InvoiceStatus.PAID,
            Invoice.due_date.is_not(None),
        )
        .order_by(Allocation.at, Allocation.id)
    )
    per_item: dict[tuple[uuid.UUID, uuid.UUID], list[tuple[Decimal, int]]] = defaultdict(list)
    for party_id, invoice_id, due_date, amount, received in session.execute(query):
        assert due_date is not None
        _place(per_item[(party_id, invoice_id)], amount, max(0, (received - due_date).days))
    weighted: dict[uuid.UUID, list[tuple[Decimal, int]]] = defaultdict(list)
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for (party_id, _), money in per_item.items():
        counts[party_id] += 1
        weighted[party_id].extend(money)
    return {party_id: (counts[party_id], weighted_days(weighted[party_id])) for party_id in counts}


def _place(money: list[tuple[Decimal, int]], amount: Decimal, days: int) -> None:
    """Add a placed amount; a negative one takes back the latest money placed before it."""
    if amount >= 0:
        money.append((amount, days))
        return
    taken = -amount
    while taken > 0 and money:
        last, last_days = money.pop()
        if last > taken:
            money.append((last - taken, last_days))
            return
        taken -= last


def weighted_days(money: Iterable[tuple[Decimal, int]]) -> Decimal | None:
    """The amount-weighted mean of ``(amount, days)``, half-up to a tenth; ``None`` without money."""
    pairs = [(amount, days) for amount, days in money if amount > 0]
    total = sum((amount for amount, _ in pairs), ZERO)
    if total == 0:
        return None
    mean = sum((amount * days for amount, days in pairs), ZERO) / total
    return mean.quantize(TENTH, rounding=ROUND_HALF_UP)


def _personal_visit(rules: AccountRules, balance: Decimal, behaviour: Behaviour) -> Flag:
    reasons = []
    if balance >= rules.visit_from_balance:
        reasons.append(f"balance {balance} reaches {rules.visit_from_balance}")
    if behaviour.reminders >= rules.visit_from_reminders:
        reasons.append(
            f"{behaviour.reminders} reminders in the last 365 days (from {rules.visit_from_reminders})"
        )
    return Flag(tuple(reasons))


def _order_block(rules: AccountRules, items: Sequence[OpenItem], behaviour: Behaviour) -> Flag:
    reasons = []
    for item in items:
        if item.in_collection:
            reasons.append(f"item {item.number} is in collection")
        elif item.dunning_level is not None and item.dunning_level >= rules.order_block_from_level:
            reasons.append(
                f"item {item.number} reached dunning level {item.dunning_level}"
                f" (from {rules.order_block_from_level})"
            )
    late = behaviour.average_days_late
    if late is not None and late >= rules.order_block_from_days_late:
        reasons.append(
            f"payments arrive {late} days late on average (from {rules.order_block_from_days_late})"
        )
    return Flag(tuple(reasons))
