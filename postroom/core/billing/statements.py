"""Account statements (Kontoauszug): a customer's open items as an ``account_statement`` document,
on demand for one customer or as one bulk run for every customer with open items.

A statement lists, as of its day, each open item (the invoice, then what was paid on it), each
open charge (fees, the §288(5) flat sum, interest, collection costs) and each unplaced credit,
from an opening balance of zero: the closing balance the document type computes from these
entries is the account's balance (:mod:`postroom.core.billing.accounts`). No total is copied
into the request.

A statement run is done once per day (``as_of``): asking again returns the first run and sends
nothing. Customers whose data is purged, or whose statement the schema refuses, are skipped and
named by their pseudonymous id.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postroom.core.billing import history, numbers
from postroom.core.billing.accounts import Account, OpenCharge, accounts
from postroom.core.billing.models import Allocation, CoreEvent, Invoice, Party, Payment
from postroom.core.billing.outbox import Outbox, issuer, refusal, submit, submit_run
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import OPEN_INVOICE_STATES
from postroom.core.models import Document
from postroom.documents.formatting import Formatter
from postroom.money import decimal_text
from postroom.settings import Settings

RUN_ENTITY = "statement_run"
_RUN_IDS = uuid.UUID("6d1f3c1e-57a4-4c2b-9a53-3f0c1b2e8a71")
"""Namespace of the run ids: one id per day, so a day's run is found again."""
PLACEHOLDER_NUMBER = "KA-0000-000000"
_CHARGE_TEXTS = {
    "fee": ("fee", "Mahnkosten"),
    "flat_rate": ("fee", "Verzugspauschale (§ 288 Abs. 5 BGB)"),
    "interest": ("interest", "Verzugszinsen"),
    "collection_cost": ("fee", "Inkassokosten"),
}


@dataclass(frozen=True, slots=True)
class SkippedCustomer:
    """A customer a run sent no statement, and why (no personal data)."""

    party_id: uuid.UUID
    reason: str


@dataclass
class StatementRun:
    """A statement run: its bulk batch (none when nobody has open items), what it skipped, and
    whether the day ran before (then nothing was sent now)."""

    run_id: uuid.UUID
    as_of: date
    batch_id: uuid.UUID | None
    statements: int
    repeated: bool
    skipped: tuple[SkippedCustomer, ...] = ()
    outbox: Outbox = field(default_factory=Outbox)


def issue_statement(
    session: Session,
    settings: Settings,
    party_id: uuid.UUID,
    *,
    as_of: date,
    confirm_by: date | None = None,
    actor: str,
) -> tuple[Document, Outbox] | None:
    """Send one customer's statement as of ``as_of``; ``None`` when there is no such party.
    Raises :class:`PartyPurged` when the customer's data is gone."""
    found = accounts(session, settings, [party_id], as_of=as_of)
    if not found:
        return None
    statement_of = found[0]
    party = session.get_one(Party, party_id)
    recipient(party)  # PartyPurged before a number is drawn
    number = numbers.next_number(session, settings.account_statement_prefix, as_of.year)
    outbox = Outbox()
    body = statement_body(session, settings, statement_of, number, confirm_by=confirm_by)
    document = submit(session, outbox, body, key=f"core:account-statement:{number}", api_key_id=actor)
    history.record(
        session,
        "party",
        party_id,
        "account statement",
        actor=actor,
        number=number,
        as_of=as_of,
        balance=statement_of.balance,
        document=document.id,
    )
    return document, outbox


def run(session: Session, settings: Settings, *, as_of: date, actor: str) -> StatementRun:
    """Send a statement to every customer with open items on ``as_of`` as one bulk run, once per day."""
    run_id = uuid.uuid5(_RUN_IDS, as_of.isoformat())
    _serialise(session, f"statement-run:{as_of.isoformat()}")
    previous = session.scalars(
        select(CoreEvent).where(CoreEvent.entity == RUN_ENTITY, CoreEvent.entity_id == run_id)
    ).first()
    if previous is not None:
        batch = previous.detail.get("batch")
        return StatementRun(
            run_id,
            as_of,
            uuid.UUID(batch) if batch else None,
            int(previous.detail.get("statements", 0)),
            repeated=True,
        )
    candidates = sorted(
        accounts(session, settings, _customers_with_open_items(session, as_of), as_of=as_of),
        key=lambda item: (item.customer_number or "", str(item.party_id)),
    )
    accepted, skipped = _checked(session, settings, candidates)
    outcome = StatementRun(run_id, as_of, None, len(accepted), repeated=False, skipped=tuple(skipped))
    if accepted:
        bodies = [
            statement_body(
                session,
                settings,
                item,
                numbers.next_number(session, settings.account_statement_prefix, as_of.year),
            )
            for item in accepted
        ]
        outcome.batch_id, _ = submit_run(session, outcome.outbox, bodies, api_key_id=actor)
    history.record(
        session,
        RUN_ENTITY,
        run_id,
        "run",
        actor=actor,
        as_of=as_of,
        batch=outcome.batch_id,
        statements=outcome.statements,
        skipped=len(skipped),
    )
    return outcome


def statement_body(
    session: Session,
    settings: Settings,
    statement_of: Account,
    number: str,
    *,
    confirm_by: date | None = None,
) -> dict[str, Any]:
    """The ``account_statement`` request of an account: its open items, charges and credit as
    signed entries from an opening balance of zero (the document computes the balances)."""
    party = session.get_one(Party, statement_of.party_id)
    entries = _entries(session, statement_of)
    as_of = statement_of.as_of
    start = min((date.fromisoformat(entry["date"]) for entry in entries), default=as_of)
    data: dict[str, Any] = {
        "number": number,
        "issue_date": as_of.isoformat(),
        "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
        "currency": "EUR",
        "period": {"start": start.isoformat(), "end": as_of.isoformat()},
        "opening_balance": "0.00",
        "entries": entries,
    }
    if confirm_by is not None:
        data["request_confirmation"] = True
        data["confirm_by"] = confirm_by.isoformat()
    return {
        "type": "account_statement",
        "locale": "de",
        "recipient": recipient(party).model_dump(mode="json", exclude_none=True),
        "channels": ["email" if party.email else "print", "archive"],
        "data": data,
    }


def _entries(session: Session, statement_of: Account) -> list[dict[str, Any]]:
    as_of = statement_of.as_of
    fmt = Formatter("de", "EUR")
    received = _last_received(session, [item.invoice_id for item in statement_of.items if item.paid != 0])
    entries: list[dict[str, Any]] = []
    for item in statement_of.items:
        assert item.issue_date is not None
        due = f", fällig am {fmt.date(item.due_date)}" if item.due_date else ""
        entries.append(
            _entry(item.issue_date, "invoice", item.number, f"Rechnung{due}", decimal_text(item.amount))
        )
        if item.paid != 0:
            paid_on = min(max(received.get(item.invoice_id, item.issue_date), item.issue_date), as_of)
            entries.append(_entry(paid_on, "payment", item.number, "Zahlungseingang", _negative(item.paid)))
    for charge in statement_of.charges:
        entries.append(_charge_entry(charge))
    for credit in statement_of.credits:
        entries.append(_entry(credit.booking_date, "credit", None, "Guthaben", _negative(credit.amount)))
    return entries


def _charge_entry(charge: OpenCharge) -> dict[str, Any]:
    kind, text = _CHARGE_TEXTS.get(charge.kind, ("fee", "Gebühr"))
    if charge.open_amount != charge.amount:
        text = f"{text} (Rest)"
    return _entry(charge.booked_on, kind, charge.reference, text, decimal_text(charge.open_amount))


def _entry(day: date, kind: str, reference: str | None, text: str, amount: str) -> dict[str, Any]:
    entry = {"date": day.isoformat(), "kind": kind, "text": text, "amount": amount}
    if reference:
        entry["reference"] = reference
    return entry


def _negative(amount: Decimal) -> str:
    return decimal_text(-amount)


def _last_received(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, date]:
    """Per item: the booking date of the latest payment placed on it."""
    if not invoice_ids:
        return {}
    query = (
        select(Allocation.invoice_id, func.max(Payment.booking_date))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Allocation.invoice_id.in_(invoice_ids))
        .group_by(Allocation.invoice_id)
    )
    return {invoice_id: day for invoice_id, day in session.execute(query) if invoice_id is not None}


def _customers_with_open_items(session: Session, as_of: date) -> list[uuid.UUID]:
    """Every customer owing an item issued by ``as_of``."""
    query = (
        select(Invoice.party_id)
        .where(
            Invoice.kind != "credit_note",
            Invoice.status.in_(OPEN_INVOICE_STATES),
            Invoice.open_amount > 0,
            Invoice.issue_date <= as_of,
        )
        .distinct()
    )
    return sorted(session.scalars(query), key=str)


def _checked(
    session: Session, settings: Settings, candidates: list[Account]
) -> tuple[list[Account], list[SkippedCustomer]]:
    """The accounts whose statement the schema accepts; the others with the reason."""
    accepted, skipped = [], []
    for candidate in candidates:
        reason = refusal(partial(statement_body, session, settings, candidate, PLACEHOLDER_NUMBER))
        if reason is None:
            accepted.append(candidate)
        else:
            skipped.append(SkippedCustomer(candidate.party_id, f"statement {reason}"))
    return accepted, skipped


def _serialise(session: Session, key: str) -> None:
    """Hold a transaction-scoped lock on ``key`` (PostgreSQL; SQLite serialises writers anyway)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(lock_id)))
