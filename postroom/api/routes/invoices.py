"""``/v1/invoices``: an invoice's state and history, and its cancellation (Storno)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import HistoryEntry, business_day, enqueue, history_view, runtime_of
from postroom.api.problems import ProblemError
from postroom.core.billing import storno
from postroom.core.billing.models import Invoice
from postroom.documents.parties import StrictModel
from postroom.documents.types.invoice import InvoiceLine
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/invoices", tags=["core"])


class InvoiceView(BaseModel):
    """An invoice's figures and state; the recipient is referred to by its pseudonymous party id."""

    id: uuid.UUID
    kind: str
    number: str | None
    status: str
    party_id: uuid.UUID
    order_id: uuid.UUID | None
    role: str | None
    currency: str
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    paid_total: Decimal
    charges_total: Decimal
    open_amount: Decimal
    issue_date: date | None
    due_date: date | None
    document_id: uuid.UUID | None
    cancels_id: uuid.UUID | None
    cancelled_by_id: uuid.UUID | None
    corrected_by_id: uuid.UUID | None
    due_after_id: uuid.UUID | None
    sent_at: datetime | None
    default_since: date | None
    dunning_level: int | None
    dunning_blocked_until: date | None
    disputed: bool
    collection_case_id: uuid.UUID | None
    payment_plan_id: uuid.UUID | None

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceView:
        """The view of one invoice row."""
        return cls.model_validate(invoice, from_attributes=True)


class Correction(StrictModel):
    """The lines of the corrected invoice."""

    lines: list[InvoiceLine] = Field(min_length=1, max_length=2000)


class CancelRequest(StrictModel):
    """Why the invoice is cancelled and, optionally, what replaces it."""

    reason: str = Field(min_length=3, max_length=500)
    correction: Correction | None = None


class Cancellation(BaseModel):
    """The credit note and the corrected invoice a cancellation issued."""

    cancelled: InvoiceView
    credit_note: InvoiceView
    correction: InvoiceView | None


def invoice_or_404(session: Session, invoice_id: uuid.UUID, lock: bool = False) -> Invoice:
    """The invoice, or a 404 problem."""
    invoice = session.get(Invoice, invoice_id, with_for_update=lock)
    if invoice is None:
        raise ProblemError(404, "Not found", f"no invoice {invoice_id}", slug="not-found")
    return invoice


@router.get("/{invoice_id}", response_model=InvoiceView)
def get_invoice(
    request: Request, invoice_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> InvoiceView:
    """State, totals, what is paid and what is open."""
    with runtime_of(request).db.session() as session:
        return InvoiceView.of(invoice_or_404(session, invoice_id))


@router.post("/{invoice_id}/cancel", response_model=Cancellation)
def cancel_invoice(
    request: Request,
    invoice_id: uuid.UUID,
    body: CancelRequest,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> Cancellation:
    """Cancel by a credit note referencing the invoice; with ``correction``, issue a new invoice under a new
    number. The original is never changed; money paid on it moves to the correction or becomes credit."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        invoice = invoice_or_404(session, invoice_id, lock=True)
        lines = [line.model_dump(mode="json") for line in body.correction.lines] if body.correction else None
        credit_note, corrected, outbox = storno.cancel_invoice(
            session,
            invoice,
            rt.settings,
            reason=body.reason,
            correction=lines,
            today=business_day(rt),
            actor=key.id,
        )
        result = Cancellation(
            cancelled=InvoiceView.of(invoice),
            credit_note=InvoiceView.of(credit_note),
            correction=InvoiceView.of(corrected) if corrected else None,
        )
    enqueue(request, outbox)
    return result


@router.get("/{invoice_id}/history", response_model=list[HistoryEntry])
def invoice_history(
    request: Request, invoice_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> list[HistoryEntry]:
    """Every transition and booking of the invoice."""
    with runtime_of(request).db.session() as session:
        invoice_or_404(session, invoice_id)
        return history_view(session, "invoice", invoice_id)
