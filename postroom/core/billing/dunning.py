"""Dunning runs: overdue open items raised one level per run, one letter per customer, all
letters of a run as one bulk run through the hub (DESIGN §4, §7).

A run on a key date (Stichtag) selects every open item whose next level is due under the
policy (days after the due date, plus the run's grace days and the customer's extra days;
not sooner than ``min_days_between`` after the item's previous letter) and skips items under
a dunning block, in dispute, in collection, in an active payment plan, and §656d buyer
shares whose seller invoice is not paid. The letter of each customer carries the raised
items, the statutory interest per item up to the key date (DESIGN §7), the level's costs
once the debtor is in default and, for a business, the §288(5) flat sum once.

The letters are dated on the key date. A key date is run once: a second real run for it
returns the first and changes nothing. A dry run computes the same proposal and stores
nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postroom.core.billing import followups, history, journal, numbers
from postroom.core.billing.dunning_policy import DunningPolicy, Level, Override, dunning_policy
from postroom.core.billing.invoices import ENTITY
from postroom.core.billing.models import (
    Charge,
    DunningAccount,
    DunningNotice,
    DunningRun,
    DunningStep,
    Invoice,
    Party,
)
from postroom.core.billing.outbox import Outbox, issuer, refusal, submit_run
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import InvoiceStatus
from postroom.documents.interest import DebtorKind, statutory_interest
from postroom.documents.types.dunning_letter import FLAT_RATE
from postroom.money import ZERO, decimal_text
from postroom.settings import Settings

DUNNABLE = (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)
"""Open invoice states the dunning run looks at (not in collection)."""
PLACEHOLDER_NUMBER = "MA-0000-000000"
"""Numbers are drawn only for letters that are sent; the proposal checks them with this one."""


@dataclass(frozen=True, slots=True)
class ItemStep:
    """One item raised to ``level`` by a letter, with its interest up to the key date."""

    invoice_id: uuid.UUID
    invoice_number: str
    level: int
    due_date: date
    default_since: date
    open_amount: Decimal
    interest: Decimal
    interest_charged_before: Decimal


@dataclass(frozen=True, slots=True)
class FeeLine:
    """A cost charged with a letter: ``kind`` fee (actual costs) or flat_rate (§288(5) BGB)."""

    kind: str
    description: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ProposedLetter:
    """One customer's letter of a run."""

    party_id: uuid.UUID
    customer_number: str | None
    level: int
    channels: tuple[str, ...]
    items: tuple[ItemStep, ...]
    fees: tuple[FeeLine, ...]
    interest_mode: str
    pay_by: date

    @property
    def principal(self) -> Decimal:
        """The open amounts of the letter's items."""
        return sum((item.open_amount for item in self.items), ZERO)

    @property
    def interest(self) -> Decimal:
        """The interest claimed (each item's rounded once, summed)."""
        return sum((item.interest for item in self.items), ZERO)

    @property
    def fee_total(self) -> Decimal:
        """The costs charged with the letter."""
        return sum((fee.amount for fee in self.fees), ZERO)

    @property
    def total(self) -> Decimal:
        """What the letter asks for."""
        return self.principal + self.interest + self.fee_total


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item (or a letter) the run left alone, and why; no personal data."""

    invoice_number: str | None
    party_id: uuid.UUID
    reason: str


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a run on ``key_date`` does (or did)."""

    key_date: date
    grace_days: int
    policy_version: str
    letters: tuple[ProposedLetter, ...]
    skipped: tuple[Skipped, ...]


@dataclass
class RunOutcome:
    """A real run: the stored run, its proposal (empty when the key date ran before) and its outbox."""

    run: DunningRun
    proposal: Proposal
    repeated: bool
    outbox: Outbox = field(default_factory=Outbox)


def propose(
    session: Session,
    settings: Settings,
    *,
    key_date: date,
    grace_days: int,
    policy: DunningPolicy | None = None,
) -> Proposal:
    """The letters a run on ``key_date`` sends; changes nothing."""
    policy = policy or dunning_policy(settings)
    candidates = _candidates(session, key_date)
    accounts = _accounts(session, {invoice.party_id for invoice in candidates})
    last_letters = _last_letters(session, [invoice.id for invoice in candidates])
    charged = _interest_charged(session, [invoice.id for invoice in candidates])
    flat_charged = _flat_rate_charged(session, [invoice.id for invoice in candidates])
    per_party: dict[uuid.UUID, list[tuple[Invoice, Level]]] = defaultdict(list)
    skipped: list[Skipped] = []
    for invoice in candidates:
        account = accounts.get(invoice.party_id)
        reason = _skip_reason(session, invoice, account, key_date)
        if reason is not None:
            skipped.append(Skipped(invoice.number, invoice.party_id, reason))
            continue
        assert invoice.due_date is not None
        level = policy.next_level(
            invoice.dunning_level,
            due_date=invoice.due_date,
            last_letter=last_letters.get(invoice.id),
            key_date=key_date,
            grace_days=grace_days,
            override=_override(account),
        )
        if level is not None:
            per_party[invoice.party_id].append((invoice, level))
    letters = []
    for party_id, raised in per_party.items():
        party = session.get_one(Party, party_id)
        account = accounts.get(party_id)
        letters.append(_letter(party, raised, policy, _override(account), key_date, charged, flat_charged))
    letters.sort(key=lambda letter: (letter.customer_number or "", str(letter.party_id)))
    checked, refused = _checked(session, settings, letters, key_date)
    return Proposal(key_date, grace_days, policy.version, tuple(checked), tuple(skipped + refused))


def run(session: Session, settings: Settings, *, key_date: date, grace_days: int, actor: str) -> RunOutcome:
    """Send the letters of ``key_date`` as one bulk run, once per key date."""
    existing = session.scalars(select(DunningRun).where(DunningRun.key_date == key_date)).first()
    if existing is not None:
        return RunOutcome(existing, empty_proposal(existing), repeated=True)
    policy = dunning_policy(settings)
    dunning_run = DunningRun(
        id=uuid.uuid4(),
        key_date=key_date,
        grace_days=grace_days,
        policy_version=policy.version,
        letters=0,
        items=0,
        actor=actor,
    )
    try:
        with session.begin_nested():
            session.add(dunning_run)
            session.flush()
    except IntegrityError:  # a run for the same key date committed meanwhile
        first = session.scalars(select(DunningRun).where(DunningRun.key_date == key_date)).one()
        return RunOutcome(first, empty_proposal(first), repeated=True)
    proposal = propose(session, settings, key_date=key_date, grace_days=grace_days, policy=policy)
    outcome = RunOutcome(dunning_run, proposal, repeated=False)
    if not proposal.letters:
        history.record(
            session, "dunning_run", dunning_run.id, "run", actor=actor, key_date=key_date, letters=0
        )
        return outcome
    notices = [_notice(session, settings, dunning_run, letter) for letter in proposal.letters]
    bodies = [
        _body(session, settings, letter, notice.number, key_date)
        for letter, notice in zip(proposal.letters, notices, strict=True)
    ]
    batch_id, documents = submit_run(session, outcome.outbox, bodies, api_key_id=actor)
    for letter, notice, document in zip(proposal.letters, notices, documents, strict=True):
        notice.document_id = document.id
        _apply(session, settings, policy, letter, notice, actor=actor)
    dunning_run.batch_id = batch_id
    dunning_run.letters = len(notices)
    dunning_run.items = sum(len(letter.items) for letter in proposal.letters)
    history.record(
        session,
        "dunning_run",
        dunning_run.id,
        "run",
        actor=actor,
        key_date=key_date,
        letters=dunning_run.letters,
        items=dunning_run.items,
        batch=batch_id,
        policy=policy.version,
    )
    return outcome


def empty_proposal(existing: DunningRun) -> Proposal:
    """A stored run's header as a proposal without letters (its letters are its notices)."""
    return Proposal(existing.key_date, existing.grace_days, existing.policy_version, (), ())


def _candidates(session: Session, key_date: date) -> list[Invoice]:
    query = (
        select(Invoice)
        .where(
            Invoice.kind != "credit_note",
            Invoice.status.in_(DUNNABLE),
            Invoice.open_amount > 0,
            Invoice.due_date < key_date,
        )
        .order_by(Invoice.party_id, Invoice.due_date, Invoice.number)
    )
    return list(session.scalars(query))


def _accounts(session: Session, party_ids: set[uuid.UUID]) -> dict[uuid.UUID, DunningAccount]:
    if not party_ids:
        return {}
    rows = session.scalars(select(DunningAccount).where(DunningAccount.party_id.in_(party_ids)))
    return {row.party_id: row for row in rows}


def _override(account: DunningAccount | None) -> Override:
    return Override.model_validate(account.overrides) if account and account.overrides else Override()


def _skip_reason(
    session: Session, invoice: Invoice, account: DunningAccount | None, key_date: date
) -> str | None:
    if invoice.disputed:
        return "disputed"
    if invoice.dunning_blocked_until is not None and invoice.dunning_blocked_until >= key_date:
        return "dunning block on the item"
    if account is not None and account.blocked_until is not None and account.blocked_until >= key_date:
        return "dunning block on the customer"
    if invoice.collection_case_id is not None:
        return "in collection"
    if invoice.payment_plan_id is not None:
        return "in a payment plan"
    if invoice.due_after_id is not None:
        seller_invoice = session.get(Invoice, invoice.due_after_id)
        if seller_invoice is None or seller_invoice.status is not InvoiceStatus.PAID:
            return "§656d BGB: the seller's payment is not recorded"
    return None


def _last_letters(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, date]:
    if not invoice_ids:
        return {}
    query = (
        select(DunningStep.invoice_id, func.max(DunningNotice.issue_date))
        .join(DunningNotice, DunningNotice.id == DunningStep.notice_id)
        .where(DunningStep.invoice_id.in_(invoice_ids))
        .group_by(DunningStep.invoice_id)
    )
    return dict(session.execute(query).all())


def _interest_charged(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, Decimal]:
    if not invoice_ids:
        return {}
    query = (
        select(Charge.invoice_id, func.sum(Charge.amount))
        .where(Charge.invoice_id.in_(invoice_ids), Charge.kind == "interest")
        .group_by(Charge.invoice_id)
    )
    return {invoice_id: total for invoice_id, total in session.execute(query) if invoice_id is not None}


def _flat_rate_charged(session: Session, invoice_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not invoice_ids:
        return set()
    query = select(Charge.invoice_id).where(Charge.invoice_id.in_(invoice_ids), Charge.kind == "flat_rate")
    return {invoice_id for invoice_id in session.scalars(query) if invoice_id is not None}


def _letter(
    party: Party,
    raised: list[tuple[Invoice, Level]],
    policy: DunningPolicy,
    override: Override,
    key_date: date,
    charged: dict[uuid.UUID, Decimal],
    flat_charged: set[uuid.UUID],
) -> ProposedLetter:
    debtor: DebtorKind = "business" if party.kind in ("business", "agent") else "consumer"
    rules = policy.debtors[debtor]
    interest_mode = "statutory" if rules.interest == "statutory" and override.interest else "none"
    items = []
    for invoice, level in raised:
        assert invoice.due_date is not None
        assert invoice.number is not None
        default_since = invoice.default_since or policy.default_since(invoice.due_date)
        interest = ZERO
        if interest_mode == "statutory":
            interest = statutory_interest(invoice.open_amount, default_since, key_date, debtor).interest
        items.append(
            ItemStep(
                invoice_id=invoice.id,
                invoice_number=invoice.number,
                level=level.level,
                due_date=invoice.due_date,
                default_since=default_since,
                open_amount=invoice.open_amount,
                interest=interest,
                interest_charged_before=charged.get(invoice.id, ZERO),
            )
        )
    letter_level = policy.level(max(item.level for item in items))
    in_default = any(item.default_since <= key_date for item in items)
    fees: list[FeeLine] = []
    if in_default and override.fees:
        if rules.flat_rate and not any(item.invoice_id in flat_charged for item in items):
            fees.append(FeeLine("flat_rate", "Verzugspauschale gemäß § 288 Abs. 5 BGB", FLAT_RATE))
        if letter_level.fee > 0:
            fees.append(FeeLine("fee", "Mahnkosten", letter_level.fee))
    channel = override.channel or letter_level.channel
    if channel == "preferred":
        channel = "email" if party.email else "print"
    if channel == "email" and not party.email:
        channel = "print"
    return ProposedLetter(
        party_id=party.id,
        customer_number=party.reference,
        level=letter_level.level,
        channels=(channel, "archive"),
        items=tuple(items),
        fees=tuple(fees),
        interest_mode=interest_mode,
        pay_by=key_date + timedelta(days=letter_level.pay_days),
    )


def _checked(
    session: Session, settings: Settings, letters: list[ProposedLetter], key_date: date
) -> tuple[list[ProposedLetter], list[Skipped]]:
    """The letters the document schema accepts; the others are skipped with the reason."""
    accepted, refused = [], []
    for letter in letters:
        reason = refusal(partial(_body, session, settings, letter, PLACEHOLDER_NUMBER, key_date))
        if reason is None:
            accepted.append(letter)
        else:
            refused.append(Skipped(None, letter.party_id, f"letter {reason}"))
    return accepted, refused


def _previous_notices(session: Session, invoice_ids: list[uuid.UUID], before: date) -> list[DunningNotice]:
    query = (
        select(DunningNotice)
        .join(DunningStep, DunningStep.notice_id == DunningNotice.id)
        .where(DunningStep.invoice_id.in_(invoice_ids), DunningNotice.issue_date < before)
        .order_by(DunningNotice.issue_date)
        .distinct()
    )
    return list(session.scalars(query))


def _body(
    session: Session, settings: Settings, letter: ProposedLetter, number: str, key_date: date
) -> dict[str, Any]:
    party = session.get_one(Party, letter.party_id)
    invoices = {
        row.id: row
        for row in session.scalars(
            select(Invoice).where(Invoice.id.in_([item.invoice_id for item in letter.items]))
        )
    }
    items = []
    for item in letter.items:
        invoice = invoices[item.invoice_id]
        assert invoice.issue_date is not None
        row = {
            "invoice_number": item.invoice_number,
            "invoice_date": invoice.issue_date.isoformat(),
            "due_date": item.due_date.isoformat(),
            "amount": decimal_text(invoice.gross_total + invoice.charges_total),
            "paid": decimal_text(invoice.paid_total),
        }
        if item.default_since <= key_date:
            row["default_since"] = item.default_since.isoformat()
        items.append(row)
    previous = _previous_notices(session, [item.invoice_id for item in letter.items], key_date)
    return {
        "type": "dunning_letter",
        "locale": "de",
        "recipient": recipient(party).model_dump(mode="json", exclude_none=True),
        "channels": list(letter.channels),
        "data": {
            "number": number,
            "issue_date": key_date.isoformat(),
            "key_date": key_date.isoformat(),
            "level": letter.level,
            "currency": "EUR",
            "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
            "items": items,
            "interest": letter.interest_mode,
            "fees": [
                {
                    "description": fee.description,
                    "amount": decimal_text(fee.amount),
                    "kind": "flat_rate" if fee.kind == "flat_rate" else "costs",
                }
                for fee in letter.fees
            ],
            "pay_by": letter.pay_by.isoformat(),
            "previous_reminders": [
                {
                    "level": notice.level,
                    "date": notice.issue_date.isoformat(),
                    "flat_rate_charged": notice.flat_rate,
                }
                for notice in previous
            ],
        },
    }


def _notice(
    session: Session, settings: Settings, dunning_run: DunningRun, letter: ProposedLetter
) -> DunningNotice:
    notice = DunningNotice(
        id=uuid.uuid4(),
        run_id=dunning_run.id,
        party_id=letter.party_id,
        number=numbers.next_number(session, settings.dunning_prefix, dunning_run.key_date.year),
        level=letter.level,
        issue_date=dunning_run.key_date,
        pay_by=letter.pay_by,
        principal=letter.principal,
        interest=letter.interest,
        fees=letter.fee_total,
        flat_rate=any(fee.kind == "flat_rate" for fee in letter.fees),
        total=letter.total,
    )
    session.add(notice)
    session.flush()
    return notice


def _apply(
    session: Session,
    settings: Settings,
    policy: DunningPolicy,
    letter: ProposedLetter,
    notice: DunningNotice,
    *,
    actor: str,
) -> None:
    """Record the letter: each item's new level, the charges it raised and the follow-ups it opens."""
    first = letter.items[0]
    for fee in letter.fees:
        _charge(session, settings, notice, first.invoice_id, fee.kind, fee.amount)
    for item in letter.items:
        invoice = session.get_one(Invoice, item.invoice_id, with_for_update=True)
        session.add(
            DunningStep(
                notice_id=notice.id,
                invoice_id=item.invoice_id,
                level=item.level,
                open_amount=item.open_amount,
                interest=item.interest,
            )
        )
        increment = item.interest - item.interest_charged_before
        if increment > 0:
            _charge(session, settings, notice, item.invoice_id, "interest", increment)
        invoice.dunning_level = item.level
        if item.default_since <= notice.issue_date:
            invoice.default_since = item.default_since
        detail: dict[str, Any] = {"notice": notice.number, "level": item.level, "interest": item.interest}
        if invoice.status in (InvoiceStatus.ISSUED, InvoiceStatus.SENT):
            history.move(session, ENTITY, invoice, InvoiceStatus.OVERDUE, "dunned", actor=actor, **detail)
        else:
            history.record(session, ENTITY, invoice.id, "dunned", actor=actor, **detail)
        if item.level >= policy.followups.from_level:
            _follow_up(session, settings, policy, invoice, item.level, notice.pay_by, actor=actor)


def _charge(
    session: Session,
    settings: Settings,
    notice: DunningNotice,
    invoice_id: uuid.UUID,
    kind: str,
    amount: Decimal,
) -> Charge:
    charge = Charge(
        id=uuid.uuid4(),
        party_id=notice.party_id,
        invoice_id=invoice_id,
        kind=kind,
        source="dunning_notice",
        source_id=notice.id,
        reference=notice.number,
        amount=amount,
        open_amount=amount,
        status="open",
        booked_on=notice.issue_date,
    )
    session.add(charge)
    session.flush()
    journal.book_charge(session, charge, settings)
    return charge


def _follow_up(
    session: Session,
    settings: Settings,
    policy: DunningPolicy,
    invoice: Invoice,
    level: int,
    pay_by: date,
    *,
    actor: str,
) -> None:
    """The dunning group checks the payment the day after the deadline; an older check is superseded."""
    followups.cancel_open(session, "invoice", invoice.id, actor=actor, reason="superseded by a new letter")
    followups.schedule(
        session,
        case_kind="invoice",
        case_id=invoice.id,
        subject=f"Zahlungseingang {invoice.number} prüfen (Mahnstufe {level})",
        due_date=pay_by + timedelta(days=1),
        options=list(policy.followups.options),
        assignee_group=settings.dunning_group,
        actor=actor,
    )


def dunning_ended(session: Session, invoice: Invoice, *, actor: str, reason: str) -> None:
    """The item is settled: its open follow-ups are cancelled (its dunning level stays as history)."""
    cancelled = followups.cancel_open(session, "invoice", invoice.id, actor=actor, reason=reason)
    if invoice.dunning_level is not None:
        history.record(
            session, ENTITY, invoice.id, "dunning ended", actor=actor, reason=reason, followups=cancelled
        )
