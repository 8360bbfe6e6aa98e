"""The booking journal: every business event as a balanced entry (debit = credit) on the
configured ledger accounts (``POSTROOM_BOOKING_ACCOUNTS``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from postroom.core.billing.models import (
    Advance,
    Charge,
    CommissionStatement,
    Invoice,
    JournalEntry,
    JournalLine,
    Party,
    Payment,
)
from postroom.money import ZERO, LineItem, Totals, compute_totals, decimal_text, round_money
from postroom.settings import BookingAccounts, Settings

Line = tuple[str, Decimal, Decimal]

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
    lines: Sequence[Line],
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
    invoice = session.get(Invoice, invoice_id) if invoice_id is not None else None
    if invoice is not None:
        # A new booking waits for its own acknowledgement before the hand-off counts as done.
        invoice.booking_acknowledged_at = None
    session.add_all(
        JournalLine(entry_id=entry.id, account=account, debit=debit, credit=credit)
        for account, debit, credit in kept
    )
    return entry


def _reference(session: Session, party_id: uuid.UUID | None) -> str | None:
    party = session.get(Party, party_id) if party_id is not None else None
    return party.reference if party is not None else None


def _transfer(debit_account: str, credit_account: str, amount: Decimal) -> list[Line]:
    """``amount`` from ``credit_account`` to ``debit_account``; a negative amount runs the other way."""
    if amount < 0:
        debit_account, credit_account, amount = credit_account, debit_account, -amount
    return [(debit_account, amount, ZERO), (credit_account, ZERO, amount)]


def _vat_account(accounts: BookingAccounts, rate: Decimal) -> str:
    key = decimal_text(rate)
    if key not in accounts.output_vat:
        raise ValueError(f"no output VAT account for {key} % (booking_accounts.output_vat)")
    return accounts.output_vat[key]


def _revenue_account(accounts: BookingAccounts, rate: Decimal) -> str:
    key = decimal_text(rate)
    if key not in accounts.revenue:
        raise ValueError(f"no revenue account for {key} % (booking_accounts.revenue)")
    return accounts.revenue[key]


def invoice_totals(invoice: Invoice) -> Totals:
    """The invoice's totals recomputed from its lines (the figures its document shows)."""
    return compute_totals(
        LineItem(Decimal(line["quantity"]), Decimal(line["unit_price"]), Decimal(line["tax_rate"]))
        for line in invoice.lines
    )


def book_invoice(session: Session, invoice: Invoice, settings: Settings) -> None:
    """An issued invoice or correction (receivable against revenue and output VAT per rate), or a
    credit note (the same, reversed)."""
    accounts = settings.booking_accounts
    totals = invoice_totals(invoice)
    assert invoice.number is not None
    assert invoice.issue_date is not None
    if totals.gross != invoice.gross_total:
        raise UnbalancedEntry(
            f"{invoice.number}: lines give {totals.gross}, the invoice {invoice.gross_total}"
        )
    lines: list[Line] = [(accounts.receivables, totals.gross, ZERO)]
    for group in totals.tax_groups:
        lines.append((_revenue_account(accounts, group.rate), ZERO, group.net))
        if group.tax:
            lines.append((_vat_account(accounts, group.rate), ZERO, group.tax))
    credit_note = invoice.kind == "credit_note"
    if credit_note:
        lines = [(account, credit, debit) for account, debit, credit in lines]
    post(
        session,
        day=invoice.issue_date,
        event="credit_note" if credit_note else "invoice",
        voucher=invoice.number,
        source_id=invoice.id,
        text=f"{'credit note' if credit_note else invoice.kind} {invoice.number}",
        lines=lines,
        invoice_id=invoice.id,
        party_reference=_reference(session, invoice.party_id),
    )


def payment_voucher(payment: Payment) -> str:
    """The voucher a payment is booked under: its end-to-end id, else its id in the hub."""
    return payment.end_to_end_id or f"PAY-{payment.id.hex[:16].upper()}"


def book_receipt(session: Session, payment: Payment, settings: Settings) -> None:
    """Money in on the bank account, or a returned direct debit out of it, held on the clearing
    account until it is placed."""
    accounts = settings.booking_accounts
    returned = payment.direction == "return"
    post(
        session,
        day=payment.booking_date,
        event="return" if returned else "receipt",
        voucher=payment_voucher(payment),
        source_id=payment.id,
        text=f"{'direct debit returned' if returned else 'received'} ({payment.source})",
        lines=_transfer(accounts.bank, accounts.clearing, -payment.amount if returned else payment.amount),
    )


def book_placement(
    session: Session, payment: Payment, invoice: Invoice, amount: Decimal, settings: Settings, *, event: str
) -> None:
    """``amount`` of a payment placed on an invoice (negative: taken off it again)."""
    accounts = settings.booking_accounts
    post(
        session,
        day=payment.booking_date,
        event=event,
        voucher=payment_voucher(payment),
        source_id=payment.id,
        text=f"{event} {invoice.number}",
        lines=_transfer(accounts.clearing, accounts.receivables, amount),
        invoice_id=invoice.id,
        party_reference=_reference(session, invoice.party_id),
    )


def book_return_fee(session: Session, payment: Payment, invoice: Invoice, settings: Settings) -> None:
    """The bank's fee for a returned direct debit, charged on to the debtor."""
    assert payment.return_fee is not None
    accounts = settings.booking_accounts
    post(
        session,
        day=payment.booking_date,
        event="fee",
        voucher=payment_voucher(payment),
        source_id=payment.id,
        text=f"return fee {invoice.number}",
        lines=_transfer(accounts.receivables, accounts.fees, payment.return_fee),
        invoice_id=invoice.id,
        party_reference=_reference(session, invoice.party_id),
    )


def book_refund(session: Session, payment: Payment, amount: Decimal, day: date, settings: Settings) -> None:
    """A credit balance paid back to the customer."""
    accounts = settings.booking_accounts
    post(
        session,
        day=day,
        event="refund",
        voucher=payment_voucher(payment),
        source_id=payment.id,
        text="credit refunded",
        lines=_transfer(accounts.clearing, accounts.bank, amount),
        party_reference=_reference(session, payment.party_id),
    )


def book_commission_statement(
    session: Session, statement: CommissionStatement, totals: Totals, day: date, settings: Settings
) -> None:
    """A self-billed credit note to an agent: the commission expense and input VAT owed to the
    agent, less the discounting allowance; then the payout, less the advances offset."""
    accounts = settings.booking_accounts
    agent = _reference(session, statement.agent_id)
    expense: list[Line] = [
        (accounts.commission_expense, totals.line_net, ZERO),
        (accounts.input_vat, totals.tax, ZERO),
        (accounts.discount_income, ZERO, totals.allowances),
        (accounts.agent_payables, ZERO, totals.gross),
    ]
    payout: list[Line] = [
        (accounts.agent_payables, totals.gross, ZERO),
        (accounts.advances, ZERO, statement.advances_offset),
        (accounts.bank, ZERO, statement.payout),
    ]
    for event, lines in (("commission", expense), ("commission_payout", payout)):
        post(
            session,
            day=day,
            event=event,
            voucher=statement.number,
            source_id=statement.id,
            text=f"{event.replace('_', ' ')} {statement.number}",
            lines=lines,
            party_reference=agent,
        )


def book_advance(session: Session, advance: Advance, day: date, settings: Settings) -> None:
    """Money paid to an agent ahead of commissions."""
    accounts = settings.booking_accounts
    post(
        session,
        day=day,
        event="advance",
        voucher=advance.reference,
        source_id=advance.id,
        text=f"{advance.kind.replace('_', ' ')} {advance.reference}",
        lines=_transfer(accounts.advances, accounts.bank, advance.amount),
        party_reference=_reference(session, advance.agent_id),
    )


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
    lines: list[Line] = [(accounts.write_off, ZERO, ZERO)]
    for rate, tax in vat_share(invoice, amount):
        if tax:
            lines.append((_vat_account(accounts, rate), tax, ZERO))
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
    totals = invoice_totals(invoice)
    if not totals.gross:
        return []
    return [(group.rate, round_money(group.tax * amount / totals.gross)) for group in totals.tax_groups]
