"""The booking journal: every business event as a balanced entry (debit = credit) on the
configured ledger accounts (``POSTROOM_BOOKING_ACCOUNTS``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from postroom.core.billing.models import Charge, Invoice, JournalEntry, JournalLine, Party
from postroom.money import ZERO, LineItem, compute_totals, decimal_text, round_money
from postroom.settings import Settings

CHARGE_EVENTS = {
    "fee": "fee",
    "flat_rate": "fee",
    "interest": "interest",
    "collection_cost": "collection_cost",
}


class UnbalancedEntry(ValueError):
    """An entry whose debits and credits differ, or that has no line."""


def post(
    session: Session,
    *,
    day: date,
    event: str,
    voucher: str,
    source_id: uuid.UUID,
    text: str,
    lines: Sequence[tuple[str, Decimal, Decimal]],
    invoice_id: uuid.UUID | None = None,
    party_reference: str | None = None,
) -> JournalEntry:
    """Record one entry of ``(account, debit, credit)`` lines; zero lines are dropped."""
    kept = [(account, debit, credit) for account, debit, credit in lines if debit or credit]
    debits = sum((line[1] for line in kept), ZERO)
    credits = sum((line[2] for line in kept), ZERO)
    if not kept or debits != credits:
        raise UnbalancedEntry(f"{event} {voucher}: debit {debits} ≠ credit {credits}")
    entry = JournalEntry(
        day=day,
        event=event,
        voucher=voucher,
        source_id=source_id,
        invoice_id=invoice_id,
        party_reference=party_reference,
        text=text[:120],
    )
    session.add(entry)
    session.flush()
    session.add_all(
        JournalLine(entry_id=entry.id, account=account, debit=debit, credit=credit)
        for account, debit, credit in kept
    )
    return entry


def _reference(session: Session, party_id: uuid.UUID) -> str | None:
    party = session.get(Party, party_id)
    return party.reference if party is not None else None


def book_charge(session: Session, charge: Charge, settings: Settings) -> None:
    """A fee, the §288(5) flat sum, interest or collection costs charged to the debtor."""
    accounts = settings.booking_accounts
    event = CHARGE_EVENTS[charge.kind]
    income = {
        "fee": accounts.fees,
        "interest": accounts.interest,
        "collection_cost": accounts.collection_costs,
    }
    post(
        session,
        day=charge.booked_on,
        event=event,
        voucher=charge.reference,
        source_id=charge.id,
        text=f"{event} {charge.reference}",
        lines=[(accounts.receivables, charge.amount, ZERO), (income[event], ZERO, charge.amount)],
        invoice_id=charge.invoice_id,
        party_reference=_reference(session, charge.party_id),
    )


def book_charge_paid(
    session: Session,
    charge: Charge,
    amount: Decimal,
    day: date,
    voucher: str,
    source_id: uuid.UUID,
    settings: Settings,
) -> None:
    """Money from clearing placed on a charge."""
    accounts = settings.booking_accounts
    post(
        session,
        day=day,
        event="payment",
        voucher=voucher,
        source_id=source_id,
        text=f"payment on {charge.kind} {charge.reference}",
        lines=[(accounts.clearing, amount, ZERO), (accounts.receivables, ZERO, amount)],
        invoice_id=charge.invoice_id,
        party_reference=_reference(session, charge.party_id),
    )


def book_write_off(
    session: Session,
    *,
    invoice: Invoice | None,
    charge: Charge | None,
    amount: Decimal,
    day: date,
    voucher: str,
    settings: Settings,
) -> None:
    """Write off ``amount`` of an invoice (net and VAT in the invoice's proportions, §17 UStG)
    or of a charge (no VAT)."""
    if (invoice is None) == (charge is None):
        raise ValueError("write off an invoice or a charge")
    accounts = settings.booking_accounts
    if charge is not None:
        post(
            session,
            day=day,
            event="write_off",
            voucher=voucher,
            source_id=charge.id,
            text=f"write-off {charge.kind} {charge.reference}",
            lines=[(accounts.write_off, amount, ZERO), (accounts.receivables, ZERO, amount)],
            invoice_id=charge.invoice_id,
            party_reference=_reference(session, charge.party_id),
        )
        return
    assert invoice is not None
    lines: list[tuple[str, Decimal, Decimal]] = [(accounts.write_off, ZERO, ZERO)]
    for rate, tax in vat_share(invoice, amount):
        key = decimal_text(rate)
        if tax:
            if key not in accounts.output_vat:
                raise ValueError(f"no output VAT account for {key} % (booking_accounts.output_vat)")
            lines.append((accounts.output_vat[key], tax, ZERO))
    tax_total = sum((line[1] for line in lines), ZERO)
    lines[0] = (accounts.write_off, amount - tax_total, ZERO)
    lines.append((accounts.receivables, ZERO, amount))
    post(
        session,
        day=day,
        event="write_off",
        voucher=voucher,
        source_id=invoice.id,
        text=f"write-off {invoice.number}",
        lines=lines,
        invoice_id=invoice.id,
        party_reference=_reference(session, invoice.party_id),
    )


def vat_share(invoice: Invoice, amount: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The VAT contained in ``amount`` of the invoice's gross total, per rate (rounded half-up)."""
    totals = compute_totals(
        LineItem(Decimal(line["quantity"]), Decimal(line["unit_price"]), Decimal(line["tax_rate"]))
        for line in invoice.lines
    )
    if not totals.gross:
        return []
    return [(group.rate, round_money(group.tax * amount / totals.gross)) for group in totals.tax_groups]
