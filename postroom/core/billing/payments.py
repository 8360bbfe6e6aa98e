"""Payments: placing money on invoices, credit balances, refunds, offsets and returned direct debits.

Matching (DESIGN §4 / issue): an invoice number or RF creditor reference in the remittance
information places the money automatically; so does the exact open amount of a party
known by the paying IBAN; anything else waits in the review queue with suggestions.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

from postroom.core.billing import commissions, history, journal
from postroom.core.billing.dunning import dunning_ended
from postroom.core.billing.invoices import ENTITY
from postroom.core.billing.models import Allocation, Invoice, Party, Payment
from postroom.core.billing.parties import purge_if_done
from postroom.core.billing.states import OPEN_INVOICE_STATES, InvoiceStatus
from postroom.core.documents import locked
from postroom.core.models import utcnow
from postroom.money import ZERO
from postroom.settings import Settings

_NUMBER = re.compile(r"\b([A-Z]{1,6})[- ]?(\d{4})[- ]?(\d{6})\b")
MATCHED, REVIEW, CREDIT, REFUNDED, RETURNED = "matched", "review", "credit", "refunded", "returned"


class PaymentError(Exception):
    """A payment step that does not fit the payment's or the invoice's state."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Money as the bank or a clerk reports it, before it is placed."""

    transaction_key: str
    source: str
    amount: Decimal
    currency: str
    booking_date: date
    value_date: date | None = None
    remittance: str | None = None
    creditor_reference: str | None = None
    end_to_end_id: str | None = None
    counterparty_iban_sha256: str | None = None
    returned: bool = False
    return_reason: str | None = None
    return_fee: Decimal | None = None


def creditor_reference(number: str) -> str:
    """The RF creditor reference (ISO 11649) printed for an invoice number, e.g. ``RF71RE2026000123``."""
    body = re.sub(r"[^A-Z0-9]", "", number.upper())
    check = mod_97_10.calc_check_digits(body + "RF")
    return str(iso11649.compact("RF" + check + body))


def numbers_in(remittance: str | None, reference: str | None) -> list[str]:
    """Invoice numbers a payment names: its RF creditor reference first, then its remittance text."""
    found = []
    if reference and iso11649.is_valid(reference):
        body = iso11649.compact(reference)[4:]
        match = re.fullmatch(r"([A-Z]{1,6})(\d{4})(\d{6})", body)
        if match:
            found.append("-".join(match.groups()))
    for prefix, year, serial in _NUMBER.findall((remittance or "").upper()):
        number = f"{prefix}-{year}-{serial}"
        if number not in found:
            found.append(number)
    return found


def record(
    session: Session,
    receipt: Receipt,
    settings: Settings,
    *,
    actor: str,
    bank_import_id: uuid.UUID | None = None,
) -> Payment | None:
    """Book a receipt once per transaction key and place it; ``None`` if it was booked before."""
    if session.scalar(select(func.count()).where(Payment.transaction_key == receipt.transaction_key)):
        return None
    payment = Payment(
        id=uuid.uuid4(),
        transaction_key=receipt.transaction_key,
        source=receipt.source,
        bank_import_id=bank_import_id,
        direction="return" if receipt.returned else "credit",
        amount=receipt.amount,
        currency=receipt.currency,
        booking_date=receipt.booking_date,
        value_date=receipt.value_date,
        counterparty_iban_sha256=receipt.counterparty_iban_sha256,
        remittance=(receipt.remittance or "")[:1000] or None,
        creditor_reference=receipt.creditor_reference,
        end_to_end_id=receipt.end_to_end_id,
        return_reason=receipt.return_reason,
        return_fee=receipt.return_fee,
        status=REVIEW,
        unallocated=receipt.amount,
        recorded_by=actor,
    )
    session.add(payment)
    session.flush()
    journal.book_receipt(session, payment, settings)
    history.record(
        session, "payment", payment.id, "recorded", actor=actor, amount=payment.amount, source=payment.source
    )
    if receipt.returned:
        _return(session, payment, settings, actor=actor)
    else:
        _match(session, payment, settings, actor=actor)
    return payment


def _match(session: Session, payment: Payment, settings: Settings, *, actor: str) -> None:
    for number in numbers_in(payment.remittance, payment.creditor_reference):
        invoice = session.scalars(select(Invoice).where(Invoice.number == number)).first()
        if invoice is not None and invoice.kind != "credit_note":
            place(session, payment, invoice.id, payment.unallocated, settings, actor=actor, rule="reference")
            return
    if payment.counterparty_iban_sha256 is None:
        return
    parties = select(Party.id).where(Party.iban_sha256 == payment.counterparty_iban_sha256)
    candidates = session.scalars(
        select(Invoice).where(
            Invoice.party_id.in_(parties),
            Invoice.status.in_(OPEN_INVOICE_STATES),
            Invoice.open_amount == payment.amount,
        )
    ).all()
    if len(candidates) == 1:
        place(
            session, payment, candidates[0].id, payment.amount, settings, actor=actor, rule="amount and IBAN"
        )


def place(
    session: Session,
    payment: Payment,
    invoice_id: uuid.UUID,
    amount: Decimal | None,
    settings: Settings,
    *,
    actor: str,
    rule: str,
    kind: str = "payment",
) -> Decimal:
    """Place up to ``amount`` of the payment's unplaced money on the invoice; what exceeds the open
    amount stays on the payment as the party's credit balance. Returns the amount placed."""
    invoice = locked(session, Invoice, invoice_id)
    if invoice is None or invoice.kind == "credit_note":
        raise PaymentError(f"no invoice {invoice_id} to pay")
    if invoice.status not in OPEN_INVOICE_STATES:
        raise PaymentError(f"invoice {invoice.number} is {invoice.status} and takes no payment")
    wanted = payment.unallocated if amount is None else amount
    if wanted <= 0 or wanted > payment.unallocated:
        raise PaymentError(f"the payment has {payment.unallocated} to place, not {wanted}")
    placed = min(wanted, invoice.open_amount)
    if placed > 0:
        session.add(Allocation(payment_id=payment.id, invoice_id=invoice.id, kind=kind, amount=placed))
        payment.unallocated -= placed
        journal.book_placement(
            session, payment, invoice, placed, settings, event="payment" if kind == "payment" else kind
        )
        _book(session, invoice, placed, settings, actor=actor, rule=rule, payment_id=payment.id)
    payment.party_id = invoice.party_id
    payment.status = MATCHED if payment.unallocated == 0 else CREDIT
    if payment.status == MATCHED:
        payment.remittance = None
    history.record(
        session,
        "payment",
        payment.id,
        "placed",
        actor=actor,
        reason=rule,
        invoice=invoice.number,
        amount=placed,
        credit=payment.unallocated,
    )
    return placed


def _book(
    session: Session,
    invoice: Invoice,
    amount: Decimal,
    settings: Settings,
    *,
    actor: str,
    rule: str,
    payment_id: uuid.UUID,
) -> None:
    """Change what is paid and open on the invoice by ``amount`` (negative for a return); move its state."""
    invoice.paid_total += amount
    invoice.open_amount = invoice.gross_total + invoice.charges_total - invoice.paid_total
    if invoice.open_amount == 0:
        target = InvoiceStatus.PAID
    elif invoice.paid_total > 0:
        target = InvoiceStatus.PARTIALLY_PAID
    else:
        target = InvoiceStatus.SENT if invoice.sent_at else InvoiceStatus.ISSUED
    detail: dict[str, Any] = {"payment": payment_id, "amount": amount, "open": invoice.open_amount}
    stays = invoice.status is InvoiceStatus.IN_COLLECTION and target is not InvoiceStatus.PAID
    if target is invoice.status or stays:
        history.record(session, ENTITY, invoice.id, "payment booked", actor=actor, reason=rule, **detail)
        return
    history.move(session, ENTITY, invoice, target, "payment booked", actor=actor, reason=rule, **detail)
    if target is InvoiceStatus.PAID:
        invoice.settled_at = utcnow()
        dunning_ended(session, invoice, actor=actor, reason=f"invoice {invoice.number} paid")
        if settings.commission_payable_on == "invoice_paid":
            commissions.make_payable(
                session,
                commissions.on_invoice(session, invoice.id),
                actor=actor,
                reason=f"invoice {invoice.number} paid",
            )
        purge_if_done(session, invoice.party_id, actor=actor)
    else:
        invoice.settled_at = None


def _return(session: Session, payment: Payment, settings: Settings, *, actor: str) -> None:
    """A direct debit came back: undo what the original collection paid and charge the bank's fee."""
    # Without the collection it undoes, the return stays in review: a clerk decides where it belongs.
    if payment.end_to_end_id is None:
        return
    original = session.scalars(
        select(Payment).where(
            Payment.end_to_end_id == payment.end_to_end_id,
            Payment.direction == "credit",
            Payment.id != payment.id,
        )
    ).first()
    if original is None:
        return
    placed = session.scalars(
        select(Allocation).where(
            Allocation.payment_id == original.id, Allocation.invoice_id.is_not(None), Allocation.amount > 0
        )
    ).all()
    if not placed:
        return
    remaining = payment.amount
    for allocation in placed:
        assert allocation.invoice_id is not None
        amount = min(allocation.amount, remaining)
        invoice = locked(session, Invoice, allocation.invoice_id)
        assert invoice is not None
        session.add(Allocation(payment_id=payment.id, invoice_id=invoice.id, kind="return", amount=-amount))
        journal.book_placement(session, payment, invoice, -amount, settings, event="return")
        if payment.return_fee and remaining == payment.amount:
            invoice.charges_total += payment.return_fee
            journal.book_return_fee(session, payment, invoice, settings)
            history.record(
                session,
                ENTITY,
                invoice.id,
                "return fee charged",
                actor=actor,
                reason=payment.return_reason,
                amount=payment.return_fee,
            )
        _book(
            session,
            invoice,
            -amount,
            settings,
            actor=actor,
            rule=f"direct debit returned ({payment.return_reason})",
            payment_id=payment.id,
        )
        payment.party_id = invoice.party_id
        remaining -= amount
        if remaining == 0:
            break
    payment.unallocated = remaining
    payment.status = RETURNED if remaining == 0 else REVIEW


def refund(
    session: Session, payment: Payment, amount: Decimal, settings: Settings, *, actor: str, reason: str
) -> None:
    """Pay back part or all of a credit balance."""
    if payment.status not in (CREDIT, REVIEW) or amount <= 0 or amount > payment.unallocated:
        raise PaymentError(f"the payment has {payment.unallocated} to refund, not {amount}")
    session.add(Allocation(payment_id=payment.id, invoice_id=None, kind="refund", amount=amount))
    journal.book_refund(session, payment, amount, settings.business_day(), settings)
    payment.unallocated -= amount
    if payment.unallocated == 0:
        payment.status = REFUNDED
        payment.remittance = None
    history.record(session, "payment", payment.id, "refunded", actor=actor, reason=reason, amount=amount)
    if payment.party_id is not None:
        purge_if_done(session, payment.party_id, actor=actor)


def release_paid(session: Session, invoice: Invoice, settings: Settings, *, actor: str) -> list[Payment]:
    """Take the money paid on a cancelled invoice off it: it becomes credit on its payments."""
    allocations = session.scalars(select(Allocation).where(Allocation.invoice_id == invoice.id)).all()
    per_payment: dict[uuid.UUID, Decimal] = {}
    for allocation in allocations:
        per_payment[allocation.payment_id] = per_payment.get(allocation.payment_id, ZERO) + allocation.amount
    released = []
    for payment_id, amount in per_payment.items():
        if amount <= 0:
            continue
        payment = session.get_one(Payment, payment_id, with_for_update=True)
        session.add(Allocation(payment_id=payment_id, invoice_id=invoice.id, kind="transfer", amount=-amount))
        journal.book_placement(session, payment, invoice, -amount, settings, event="transfer")
        payment.unallocated += amount
        payment.status = CREDIT
        history.record(
            session, "payment", payment_id, "released", actor=actor, invoice=invoice.number, amount=amount
        )
        released.append(payment)
    invoice.paid_total = ZERO
    return released


def suggestions(session: Session, payment: Payment, limit: int = 5) -> list[Invoice]:
    """Open invoices a clerk may want for a payment in review: named numbers, the same amount,
    the paying IBAN's party."""
    numbers = numbers_in(payment.remittance, payment.creditor_reference)
    conditions = [Invoice.open_amount == payment.amount]
    if numbers:
        conditions.append(Invoice.number.in_(numbers))
    if payment.counterparty_iban_sha256:
        conditions.append(
            Invoice.party_id.in_(
                select(Party.id).where(Party.iban_sha256 == payment.counterparty_iban_sha256)
            )
        )
    query = (
        select(Invoice)
        .where(Invoice.status.in_(OPEN_INVOICE_STATES), Invoice.kind != "credit_note", or_(*conditions))
        .order_by(func.abs(Invoice.open_amount - payment.amount), Invoice.issue_date)
        .limit(limit)
    )
    return list(session.scalars(query))
