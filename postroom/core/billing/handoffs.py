"""What the core does when the hub confirms a document's hand-offs."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import history
from postroom.core.billing.models import Invoice
from postroom.core.billing.parties import purge_if_done
from postroom.core.billing.states import InvoiceStatus
from postroom.core.models import utcnow


def document_delivered(session: Session, document_id: uuid.UUID) -> None:
    """Every channel confirmed the document: its invoice is ``sent``, and its party may be purged."""
    invoice = session.scalars(
        select(Invoice).where(Invoice.document_id == document_id).with_for_update()
    ).first()
    if invoice is None:
        return
    invoice.sent_at = invoice.sent_at or utcnow()
    if invoice.status is InvoiceStatus.ISSUED:
        history.move(session, "invoice", invoice, InvoiceStatus.SENT, "sent", actor="postroom")
    purge_if_done(session, invoice.party_id, actor="postroom")


def acknowledge_booking(session: Session, invoice_ids: list[uuid.UUID], *, actor: str) -> int:
    """The accounting system acknowledged the booking export of these items (part 2's export
    calls this); parties nothing else needs are purged. Returns how many items were new."""
    acknowledged = 0
    invoices = session.scalars(select(Invoice).where(Invoice.id.in_(invoice_ids)).with_for_update()).all()
    for invoice in invoices:
        if invoice.booking_acknowledged_at is None:
            invoice.booking_acknowledged_at = utcnow()
            history.record(session, "invoice", invoice.id, "booking acknowledged", actor=actor)
            acknowledged += 1
    for party_id in {invoice.party_id for invoice in invoices}:
        purge_if_done(session, party_id, actor=actor)
    return acknowledged
