"""Invoices from release to settlement: draft, issue (gapless number, §14 content, document),
sent on the hub's confirmation, and cancellation by credit note plus an optional correction.

An issued invoice never changes (DESIGN §4); only its state and the amounts paid on it move.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import history, journal, numbers
from postroom.core.billing.models import Invoice, Order, Party
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import OPEN_INVOICE_STATES, InvoiceStatus
from postroom.core.models import utcnow
from postroom.documents.formatting import Formatter
from postroom.money import ZERO, LineItem, compute_totals, decimal_text
from postroom.settings import Settings

ENTITY = "invoice"
CANCELLABLE = frozenset(
    {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE}
)


class InvoiceStateError(Exception):
    """The invoice is not in a state that allows the step."""


def courtage_line(order: Order, rate: Decimal, amount: Decimal) -> dict[str, Any]:
    """The invoice line of one party's courtage share."""
    fmt = Formatter("de", order.currency)
    description = (
        f"Maklercourtage {order.object_description or order.object_id}, "
        f"Kaufpreis {fmt.money(order.price)}, {fmt.percent(rate)} zzgl. USt."
    )
    return {
        "description": description[:500],
        "quantity": "1",
        "unit": "C62",
        "unit_price": str(amount),
        "tax_rate": decimal_text(order.tax_rate),
    }


def new_invoice(
    session: Session,
    *,
    kind: str,
    party_id: uuid.UUID,
    lines: Sequence[dict[str, Any]],
    currency: str,
    channels: list[str],
    order_id: uuid.UUID | None = None,
    role: str | None = None,
    delivery_date: date | None = None,
    actor: str,
    reason: str | None = None,
) -> Invoice:
    """A draft with totals computed from its lines."""
    totals = compute_totals(
        LineItem(Decimal(line["quantity"]), Decimal(line["unit_price"]), Decimal(line["tax_rate"]))
        for line in lines
    )
    invoice = Invoice(
        id=uuid.uuid4(),
        kind=kind,
        order_id=order_id,
        party_id=party_id,
        role=role,
        status=InvoiceStatus.DRAFT,
        currency=currency,
        lines=list(lines),
        net_total=totals.net,
        tax_total=totals.tax,
        gross_total=totals.gross,
        paid_total=ZERO,
        charges_total=ZERO,
        open_amount=totals.gross,
        delivery_date=delivery_date,
        channels=channels,
        reason=reason,
    )
    session.add(invoice)
    session.flush()
    history.record(session, ENTITY, invoice.id, "drafted", actor=actor, after=InvoiceStatus.DRAFT, kind=kind)
    return invoice


def channels_for(party: Party) -> list[str]:
    """E-mail when the party has an address for it, else print; always the archive."""
    return ["email", "archive"] if party.email else ["print", "archive"]


def issue(session: Session, invoice: Invoice, settings: Settings, *, today: date, actor: str) -> Outbox:
    """Number the draft, fix its dates and submit its document; fails on missing §14 content."""
    if invoice.status is not InvoiceStatus.DRAFT:
        raise InvoiceStateError(f"invoice {invoice.id} is {invoice.status}, not draft")
    prefix = settings.credit_note_prefix if invoice.kind == "credit_note" else settings.invoice_prefix
    invoice.number = numbers.next_number(session, prefix, today.year)
    invoice.issue_date = today
    invoice.delivery_date = invoice.delivery_date or today
    if invoice.kind != "credit_note":
        invoice.due_date = today + timedelta(days=settings.payment_terms_days)
    outbox = Outbox()
    document = submit(
        session,
        outbox,
        _document_body(session, invoice, settings),
        key=f"core:{invoice.id}",
        api_key_id=actor,
    )
    invoice.document_id = document.id
    invoice.issued_at = utcnow()
    journal.book_invoice(session, invoice, settings)
    history.move(session, ENTITY, invoice, InvoiceStatus.ISSUED, "issued", actor=actor, number=invoice.number)
    return outbox


def _document_body(session: Session, invoice: Invoice, settings: Settings) -> dict[str, Any]:
    party = session.get_one(Party, invoice.party_id)
    order = session.get(Order, invoice.order_id) if invoice.order_id else None
    consumer = party.kind == "consumer"
    data: dict[str, Any] = {
        "number": invoice.number,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "delivery_date": invoice.delivery_date.isoformat() if invoice.delivery_date else None,
        "currency": invoice.currency,
        "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
        "lines": invoice.lines,
    }
    if order is not None:
        data["order_reference"] = order.upstream_id
    original = session.get(Invoice, invoice.cancels_id) if invoice.cancels_id else None
    if invoice.kind == "credit_note":
        data["cancels"] = _reference(original)
        data["reason"] = invoice.reason
    else:
        assert invoice.due_date is not None
        data["due_date"] = invoice.due_date.isoformat()
        data["payment_terms"] = (
            f"Zahlbar bis {Formatter('de', invoice.currency).date(invoice.due_date)} ohne Abzug. "
            f"Bitte geben Sie die Rechnungsnummer {invoice.number} als Verwendungszweck an."
        )
        data["default_notice"] = consumer
        if original is not None:
            data["corrects"] = _reference(original)
    return {
        "type": "credit_note" if invoice.kind == "credit_note" else "invoice",
        "locale": "de",
        "recipient": recipient(party).model_dump(mode="json", exclude_none=True),
        "channels": invoice.channels,
        "data": data,
    }


def _reference(original: Invoice | None) -> dict[str, str]:
    if original is None or original.number is None or original.issue_date is None:
        raise InvoiceStateError("a credit note or correction refers to an invoice that was never issued")
    return {"number": original.number, "issue_date": original.issue_date.isoformat()}


def cancel(
    session: Session,
    invoice: Invoice,
    settings: Settings,
    *,
    reason: str,
    correction: Sequence[dict[str, Any]] | None,
    today: date,
    actor: str,
) -> tuple[Invoice, Invoice | None, Outbox]:
    """Cancel ``invoice`` by a credit note over its full amount and, with ``correction`` lines, issue
    a corrected invoice under a new number. Money already paid moves to the correction, or
    becomes the party's credit balance."""
    if invoice.kind == "credit_note" or invoice.status not in CANCELLABLE:
        raise InvoiceStateError(f"invoice {invoice.id} is {invoice.status} and cannot be cancelled")
    outbox = Outbox()
    credit_note = new_invoice(
        session,
        kind="credit_note",
        party_id=invoice.party_id,
        lines=invoice.lines,
        currency=invoice.currency,
        channels=invoice.channels,
        order_id=invoice.order_id,
        role=invoice.role,
        delivery_date=invoice.delivery_date,
        actor=actor,
        reason=reason,
    )
    credit_note.cancels_id = invoice.id
    outbox.extend(issue(session, credit_note, settings, today=today, actor=actor))
    # The credit note settles the original in full; it is never owed by anyone.
    credit_note.open_amount = ZERO
    invoice.cancelled_by_id = credit_note.id
    invoice.open_amount = ZERO
    invoice.settled_at = utcnow()
    history.move(
        session,
        ENTITY,
        invoice,
        InvoiceStatus.CANCELLED,
        "cancelled",
        actor=actor,
        reason=reason,
        credit_note=credit_note.number,
    )
    corrected = None
    if correction is not None:
        corrected = new_invoice(
            session,
            kind="correction",
            party_id=invoice.party_id,
            lines=correction,
            currency=invoice.currency,
            channels=invoice.channels,
            order_id=invoice.order_id,
            role=invoice.role,
            delivery_date=invoice.delivery_date,
            actor=actor,
            reason=reason,
        )
        corrected.cancels_id = invoice.id
        invoice.corrected_by_id = corrected.id
        outbox.extend(issue(session, corrected, settings, today=today, actor=actor))
    return credit_note, corrected, outbox


def open_invoices(session: Session, party_id: uuid.UUID) -> list[Invoice]:
    """The party's invoices that are owed, oldest first."""
    query = (
        select(Invoice)
        .where(Invoice.party_id == party_id, Invoice.status.in_(OPEN_INVOICE_STATES), Invoice.open_amount > 0)
        .order_by(Invoice.issue_date, Invoice.number)
    )
    return list(session.scalars(query))
