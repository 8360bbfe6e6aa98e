"""Collection (Inkasso): items past the final dunning level handed to a collection agency.

Preconditions (DESIGN §4, the policy's ``[collection]``): the item reached the final level,
at least ``min_reminders`` reminders (level 1 and up) were sent, the first at least
``min_days_since_first`` days before the hand-off, and it is not disputed, not in a payment
plan and not already in collection. The hand-off moves the items to ``in_collection``, sends
the debtor a ``collection_notice``, writes the agency's export file and opens a follow-up
whose options are the policy's collection actions. The agency's payments are placed on the
items (then on the handed-over fees and interest), its costs charged to the debtor, and the
case is closed as paid, settled or written off (what is still open is written off).

Export file (one per case, ``<collection_export_dir>/<agency>/<case number>.csv``): UTF-8,
``;``-separated, a header row, one row per item: ``case;customer;name;street;postcode;city;
country;email;invoice;invoice_date;due_date;default_since;amount;paid;open;interest;fees;
reminders`` (reminders as ``level@date`` joined by ``,``). It is the hand-off of the debtor's
data to the agency and so carries the address; it is written atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import followups, history, journal, numbers, payments
from postroom.core.billing.dunning import dunning_ended
from postroom.core.billing.dunning_policy import DunningPolicy, dunning_policy
from postroom.core.billing.invoices import ENTITY
from postroom.core.billing.models import (
    Allocation,
    Charge,
    CollectionCase,
    DunningNotice,
    DunningStep,
    Invoice,
    Party,
    Payment,
)
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import InvoiceStatus
from postroom.core.files import write_atomically
from postroom.money import ZERO, decimal_text
from postroom.settings import CollectionAgency, Settings

HANDABLE = (InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
OUTCOMES = ("paid", "settled", "written_off")
EXPORT_COLUMNS = (
    "case",
    "customer",
    "name",
    "street",
    "postcode",
    "city",
    "country",
    "email",
    "invoice",
    "invoice_date",
    "due_date",
    "default_since",
    "amount",
    "paid",
    "open",
    "interest",
    "fees",
    "reminders",
)


class CollectionRefused(Exception):
    """The hand-off or a step of the case is not allowed; ``findings`` name the fields."""

    def __init__(self, message: str, findings: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder sent about an item."""

    level: int
    date: date


def reminders(session: Session, invoice_id: uuid.UUID) -> list[Reminder]:
    """The letters sent about an item, oldest first."""
    query = (
        select(DunningNotice.level, DunningNotice.issue_date)
        .join(DunningStep, DunningStep.notice_id == DunningNotice.id)
        .where(DunningStep.invoice_id == invoice_id)
        .order_by(DunningNotice.issue_date)
    )
    return [Reminder(level, day) for level, day in session.execute(query)]


def refusals(session: Session, invoice: Invoice, policy: DunningPolicy, as_of: date) -> list[str]:
    """Why ``invoice`` may not go to collection on ``as_of``; empty when it may."""
    problems = []
    if invoice.status not in HANDABLE or invoice.collection_case_id is not None:
        problems.append(f"the invoice is {invoice.status}, not overdue")
    if invoice.disputed:
        problems.append("the claim is disputed")
    if invoice.payment_plan_id is not None:
        problems.append("the invoice is in a payment plan")
    if invoice.dunning_level is None or invoice.dunning_level < policy.final_level:
        problems.append(f"the final dunning level {policy.final_level} is not reached")
    sent = [r for r in reminders(session, invoice.id) if r.level >= 1 and r.date <= as_of]
    rules = policy.collection
    if len(sent) < rules.min_reminders:
        problems.append(f"{len(sent)} reminders sent, at least {rules.min_reminders} needed")
    elif (as_of - sent[0].date).days < rules.min_days_since_first:
        problems.append(f"the first reminder is less than {rules.min_days_since_first} days old")
    return problems


def hand_over(
    session: Session,
    settings: Settings,
    *,
    invoice_ids: list[uuid.UUID],
    agency_key: str,
    as_of: date,
    actor: str,
) -> tuple[CollectionCase, Outbox]:
    """Hand a customer's items to the agency ``agency_key``; :class:`CollectionRefused` when a
    precondition fails (each failing item named by its index in ``invoice_ids``)."""
    agency = _agency(settings, agency_key)
    policy = dunning_policy(settings)
    items = [session.get(Invoice, invoice_id, with_for_update=True) for invoice_id in invoice_ids]
    findings = []
    for index, invoice in enumerate(items):
        if invoice is None or invoice.kind == "credit_note":
            findings.append(_finding(index, "no such invoice"))
            continue
        findings.extend(_finding(index, problem) for problem in refusals(session, invoice, policy, as_of))
    invoices = [invoice for invoice in items if invoice is not None]
    if not findings and len({invoice.party_id for invoice in invoices}) != 1:
        findings.append(
            {"field": "invoice_ids", "message": "the items belong to different customers", "code": "mixed"}
        )
    if findings:
        raise CollectionRefused("the items cannot be handed to collection", findings)
    party = session.get_one(Party, invoices[0].party_id)
    charges = _open_charges(session, [invoice.id for invoice in invoices])
    case = CollectionCase(
        id=uuid.uuid4(),
        party_id=party.id,
        number=numbers.next_number(session, settings.collection_prefix, as_of.year),
        agency=agency.key,
        status="open",
        opened_on=as_of,
        principal=sum((invoice.open_amount for invoice in invoices), ZERO),
        charges=sum((charge.open_amount for charge in charges), ZERO),
    )
    session.add(case)
    session.flush()
    outbox = Outbox()
    body = _notice_body(session, settings, case, agency, invoices, as_of)
    case.notice_document_id = submit(
        session, outbox, body, key=f"core:collection:{case.id}", api_key_id=actor
    ).id
    for invoice in invoices:
        invoice.collection_case_id = case.id
        history.move(
            session,
            ENTITY,
            invoice,
            InvoiceStatus.IN_COLLECTION,
            "handed to collection",
            actor=actor,
            case=case.number,
            agency=agency.key,
        )
        followups.cancel_open(session, "invoice", invoice.id, actor=actor, reason="handed to collection")
    case.export_file, case.export_sha256 = _write_export(session, settings, case, party, invoices, charges)
    followups.schedule(
        session,
        case_kind="collection",
        case_id=case.id,
        subject=f"Inkassofall {case.number} nachhalten",
        due_date=as_of + timedelta(days=30),
        options=list(policy.collection.actions),
        assignee_group=settings.dunning_group,
        actor=actor,
    )
    history.record(
        session,
        "collection",
        case.id,
        "opened",
        actor=actor,
        agency=agency.key,
        principal=case.principal,
        charges=case.charges,
        items=[invoice.number for invoice in invoices],
    )
    return case, outbox


def choose_action(
    session: Session, settings: Settings, case: CollectionCase, action: str, *, actor: str, note: str | None
) -> None:
    """Record one of the policy's collection actions taken on the case."""
    if case.status != "open":
        raise CollectionRefused(f"collection case {case.number} is {case.status}")
    if action not in dunning_policy(settings).collection.actions:
        raise CollectionRefused(
            "the action is not one of the policy's collection actions",
            [{"field": "action", "message": "not in the configured list", "code": "unknown_action"}],
        )
    history.record(session, "collection", case.id, "action", actor=actor, reason=note, chosen=action)


def record_agency_payment(
    session: Session,
    settings: Settings,
    case: CollectionCase,
    *,
    amount: Decimal,
    costs: Decimal,
    booking_date: date,
    reference: str,
    actor: str,
) -> Payment | None:
    """The agency forwarded ``amount`` and charged ``costs`` (owed by the debtor): the money goes
    to the items, oldest first, then to the handed-over fees, interest and costs. Once per
    ``reference``; ``None`` when it was recorded before."""
    if case.status != "open":
        raise CollectionRefused(f"collection case {case.number} is {case.status}")
    if costs > 0:
        _cost_charge(session, settings, case, costs, booking_date, reference)
        case.costs += costs
    payment = None
    if amount > 0:
        receipt = payments.Receipt(
            transaction_key=f"collection:{case.id}:{reference}",
            source="collection",
            amount=amount,
            currency="EUR",
            booking_date=booking_date,
        )
        payment = payments.record(session, receipt, settings, actor=actor)
        if payment is None:
            return None
        case.received += amount
        for invoice in _items(session, case):
            if payment.unallocated == 0:
                break
            if invoice.open_amount > 0:
                payments.place(
                    session,
                    payment,
                    invoice.id,
                    None,
                    settings,
                    actor=actor,
                    rule=f"collection {case.number}",
                )
        for charge in _case_charges(session, case):
            if payment.unallocated == 0:
                break
            _pay_charge(session, settings, payment, charge, booking_date)
    history.record(
        session,
        "collection",
        case.id,
        "agency payment",
        actor=actor,
        amount=amount,
        costs=costs,
        reference=reference,
    )
    return payment


def close(
    session: Session,
    settings: Settings,
    case: CollectionCase,
    outcome: str,
    *,
    as_of: date,
    actor: str,
    reason: str | None,
) -> Decimal:
    """Close the case as paid (nothing may be open), settled or written off (what is open is
    written off). Returns the amount written off."""
    if case.status != "open":
        raise CollectionRefused(f"collection case {case.number} is {case.status}")
    if outcome not in OUTCOMES:
        raise CollectionRefused(f"outcome must be one of {', '.join(OUTCOMES)}")
    items, charges = _items(session, case), [c for c in _case_charges(session, case) if c.open_amount > 0]
    still_open = sum((invoice.open_amount for invoice in items), ZERO) + sum(
        (c.open_amount for c in charges), ZERO
    )
    if outcome == "paid" and still_open > 0:
        raise CollectionRefused(f"{still_open} is still open: close as settled or written_off")
    for invoice in items:
        if invoice.status is InvoiceStatus.IN_COLLECTION or invoice.open_amount > 0:
            written = invoice.open_amount
            if written > 0:
                journal.book_write_off(
                    session,
                    invoice=invoice,
                    charge=None,
                    amount=written,
                    day=as_of,
                    voucher=case.number,
                    settings=settings,
                )
            invoice.open_amount = ZERO
            history.move(
                session,
                ENTITY,
                invoice,
                InvoiceStatus.WRITTEN_OFF,
                "written off",
                actor=actor,
                reason=reason,
                case=case.number,
                amount=written,
            )
        dunning_ended(session, invoice, actor=actor, reason=f"collection case {case.number} closed")
    for charge in charges:
        journal.book_write_off(
            session,
            invoice=None,
            charge=charge,
            amount=charge.open_amount,
            day=as_of,
            voucher=case.number,
            settings=settings,
        )
        charge.status, charge.open_amount = "written_off", ZERO
    case.status, case.closed_on = outcome, as_of
    followups.cancel_open(session, "collection", case.id, actor=actor, reason=f"case closed as {outcome}")
    history.record(
        session,
        "collection",
        case.id,
        "closed",
        actor=actor,
        reason=reason,
        outcome=outcome,
        written_off=still_open,
    )
    return still_open


def _finding(index: int, message: str) -> dict[str, str]:
    return {"field": f"invoice_ids[{index}]", "message": message, "code": "collection_precondition"}


def _agency(settings: Settings, key: str) -> CollectionAgency:
    for agency in settings.collection_agencies:
        if agency.key == key:
            return agency
    raise CollectionRefused(
        f"no collection agency {key!r} is configured (POSTROOM_COLLECTION_AGENCIES)",
        [{"field": "agency", "message": "unknown agency", "code": "unknown_agency"}],
    )


def _items(session: Session, case: CollectionCase) -> list[Invoice]:
    query = (
        select(Invoice)
        .where(Invoice.collection_case_id == case.id)
        .order_by(Invoice.due_date, Invoice.number)
    )
    return list(session.scalars(query.with_for_update()))


def _open_charges(session: Session, invoice_ids: list[uuid.UUID]) -> list[Charge]:
    query = (
        select(Charge)
        .where(Charge.invoice_id.in_(invoice_ids), Charge.status == "open")
        .order_by(Charge.created_at)
    )
    return list(session.scalars(query))


def _case_charges(session: Session, case: CollectionCase) -> list[Charge]:
    items = select(Invoice.id).where(Invoice.collection_case_id == case.id)
    query = (
        select(Charge)
        .where(
            Charge.invoice_id.in_(items)
            | ((Charge.source == "collection_case") & (Charge.source_id == case.id))
        )
        .where(Charge.status == "open")
        .order_by(Charge.created_at)
    )
    return list(session.scalars(query.with_for_update()))


def _cost_charge(
    session: Session, settings: Settings, case: CollectionCase, costs: Decimal, day: date, reference: str
) -> None:
    charge = Charge(
        id=uuid.uuid4(),
        party_id=case.party_id,
        invoice_id=None,
        kind="collection_cost",
        source="collection_case",
        source_id=case.id,
        reference=case.number,
        amount=costs,
        open_amount=costs,
        status="open",
        booked_on=day,
    )
    session.add(charge)
    session.flush()
    journal.book_charge(session, charge, settings)


def _pay_charge(session: Session, settings: Settings, payment: Payment, charge: Charge, day: date) -> None:
    amount = min(payment.unallocated, charge.open_amount)
    session.add(Allocation(payment_id=payment.id, invoice_id=None, kind="charge", amount=amount))
    payment.unallocated -= amount
    payment.status = payments.MATCHED if payment.unallocated == 0 else payments.CREDIT
    charge.open_amount -= amount
    if charge.open_amount == 0:
        charge.status = "paid"
    journal.book_charge_paid(session, charge, amount, day, charge.reference, payment.id, settings)


def _claim(invoice: Invoice) -> dict[str, Any]:
    assert invoice.issue_date is not None
    assert invoice.due_date is not None
    assert invoice.number is not None
    claim = {
        "invoice_number": invoice.number,
        "invoice_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "amount": decimal_text(invoice.gross_total + invoice.charges_total),
        "paid": decimal_text(invoice.paid_total),
    }
    if invoice.default_since is not None:
        claim["default_since"] = invoice.default_since.isoformat()
    return claim


def _notice_body(
    session: Session,
    settings: Settings,
    case: CollectionCase,
    agency: CollectionAgency,
    invoices: list[Invoice],
    as_of: date,
) -> dict[str, Any]:
    party = session.get_one(Party, case.party_id)
    sent = sorted(
        {
            (r.level, r.date)
            for invoice in invoices
            for r in reminders(session, invoice.id)
            if r.level >= 1 and r.date <= as_of
        },
        key=lambda pair: pair[1],
    )
    agency_data = agency.model_dump(mode="json", exclude_none=True, exclude={"key"})
    return {
        "type": "collection_notice",
        "locale": "de",
        "recipient": recipient(party).model_dump(mode="json", exclude_none=True),
        "channels": ["print", "archive"],
        "data": {
            "number": case.number,
            "issue_date": as_of.isoformat(),
            "currency": "EUR",
            "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
            "agency": {**agency_data, "case_number": case.number},
            "claims": [_claim(invoice) for invoice in invoices],
            "interest": "statutory",
            "reminders": [{"level": level, "date": day.isoformat()} for level, day in sent],
        },
    }


def _write_export(
    session: Session,
    settings: Settings,
    case: CollectionCase,
    party: Party,
    invoices: list[Invoice],
    charges: list[Charge],
) -> tuple[str, str]:
    """The agency's file for the case, written atomically; its path and SHA-256."""
    assert settings.collection_export_dir is not None
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for invoice in invoices:
        own = [charge for charge in charges if charge.invoice_id == invoice.id]
        claim = _claim(invoice)
        writer.writerow(
            [
                case.number,
                party.reference or "",
                party.name or "",
                party.street or "",
                party.postcode or "",
                party.city or "",
                party.country,
                party.email or "",
                claim["invoice_number"],
                claim["invoice_date"],
                claim["due_date"],
                claim.get("default_since", ""),
                claim["amount"],
                claim["paid"],
                decimal_text(invoice.open_amount),
                decimal_text(sum((c.open_amount for c in own if c.kind == "interest"), ZERO)),
                decimal_text(sum((c.open_amount for c in own if c.kind != "interest"), ZERO)),
                ",".join(f"{r.level}@{r.date.isoformat()}" for r in reminders(session, invoice.id)),
            ]
        )
    content = buffer.getvalue().encode("utf-8")
    target = settings.collection_export_dir / case.agency / f"{case.number}.csv"
    write_atomically(target, content, mode=0o440)
    return str(target), hashlib.sha256(content).hexdigest()
