"""Cancellation (Storno): a credit note over the full invoice, optionally a corrected invoice under
a new number; money already paid follows to the correction or stays as the party's credit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from postroom.core.billing import commissions, invoices, payments
from postroom.core.billing.models import Invoice, Order
from postroom.core.billing.outbox import Outbox
from postroom.settings import Settings


def cancel_invoice(
    session: Session,
    invoice: Invoice,
    settings: Settings,
    *,
    reason: str,
    correction: Sequence[dict[str, Any]] | None,
    today: date,
    actor: str,
) -> tuple[Invoice, Invoice | None, Outbox]:
    """Cancel ``invoice``; returns the credit note, the correction (if any) and the documents to send."""
    credit_note, corrected, outbox = invoices.cancel(
        session, invoice, settings, reason=reason, correction=correction, today=today, actor=actor
    )
    commissions.void(session, invoice.id, actor=actor, reason=f"invoice {invoice.number} cancelled")
    released = payments.release_paid(session, invoice, settings, actor=actor)
    if corrected is not None:
        order = session.get(Order, corrected.order_id) if corrected.order_id else None
        if order is not None:
            commissions.earn(session, order, corrected, settings, actor=actor)
        for payment in released:
            if corrected.open_amount > 0 and payment.unallocated > 0:
                payments.place(
                    session,
                    payment,
                    corrected.id,
                    None,
                    settings,
                    actor=actor,
                    rule="moved from the cancelled invoice",
                    kind="transfer",
                )
    return credit_note, corrected, outbox
