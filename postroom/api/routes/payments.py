"""``/v1/payments`` and ``/v1/bank-statements``: money in, matched, reviewed, refunded."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from postroom.api.auth import require
from postroom.api.core_calls import runtime_of
from postroom.api.problems import ProblemError
from postroom.api.routes.invoices import InvoiceView
from postroom.core.billing import bank_statements, payments
from postroom.core.billing.models import Payment
from postroom.documents.fields import Amount, CurrencyCode, IsoDate
from postroom.documents.parties import StrictModel
from postroom.settings import ApiKey

router = APIRouter(tags=["core"])
MAX_STATEMENT_BYTES = 20 * 1024 * 1024


class PaymentView(BaseModel):
    """A payment, where it went and what is left of it (a credit balance, or money in review)."""

    id: uuid.UUID
    source: str
    direction: str
    status: str
    amount: Decimal
    unallocated: Decimal
    currency: str
    booking_date: date
    party_id: uuid.UUID | None
    return_reason: str | None
    suggestions: list[InvoiceView] = []

    @classmethod
    def of(cls, payment: Payment, suggestions: list[InvoiceView] | None = None) -> PaymentView:
        """The view of one payment."""
        view = cls.model_validate(payment, from_attributes=True)
        view.suggestions = suggestions or []
        return view


class ManualPayment(StrictModel):
    """A payment a clerk records by hand."""

    amount: Amount
    currency: CurrencyCode = "EUR"
    booking_date: IsoDate
    invoice_id: uuid.UUID | None = Field(default=None, description="Place it on this invoice; else match.")
    reference: str | None = Field(default=None, max_length=140, description="Remittance text, if any.")


class Placement(StrictModel):
    """Place (part of) a payment on an invoice."""

    invoice_id: uuid.UUID
    amount: Amount | None = None


class RefundRequest(StrictModel):
    """Pay back (part of) a credit balance."""

    amount: Amount
    reason: str = Field(min_length=3, max_length=500)


class ImportView(BaseModel):
    """What a bank-file import booked; ``repeated`` when the same file came before."""

    id: uuid.UUID
    message_kind: str
    transactions: int
    booked: int
    duplicates: int
    for_review: int
    repeated: bool


def _payment(session: Session, payment_id: uuid.UUID) -> Payment:
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise ProblemError(404, "Not found", f"no payment {payment_id}", slug="not-found")
    return payment


@router.post("/v1/bank-statements", response_model=ImportView, status_code=201)
async def import_bank_statement(
    request: Request, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> ImportView:
    """Import a camt.053 statement or camt.054 notification (XML body); the same file twice books nothing."""
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_STATEMENT_BYTES:
            raise ProblemError(413, "Too large", "a bank file may have at most 20 MB", slug="too-large")
    rt = runtime_of(request)

    def book() -> ImportView:
        with rt.db.session() as session:
            outcome = bank_statements.import_statement(session, bytes(received), rt.settings, actor=key.id)
            record = outcome.bank_import
            return ImportView(
                id=record.id,
                message_kind=record.message_kind,
                transactions=record.transactions,
                booked=record.booked,
                duplicates=record.duplicates,
                for_review=record.for_review,
                repeated=outcome.repeated,
            )

    return await run_in_threadpool(book)


@router.post("/v1/payments", response_model=PaymentView, status_code=201)
def record_payment(
    request: Request,
    body: ManualPayment,
    key: Annotated[ApiKey, Depends(require("core:write"))],
    idempotency_key: Annotated[str, Header(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")],
) -> PaymentView:
    """Record a payment by hand (``Idempotency-Key`` required): on the given invoice, or matched."""
    rt = runtime_of(request)
    receipt = payments.Receipt(
        transaction_key=f"manual:{key.id}:{idempotency_key}",
        source="manual",
        amount=body.amount,
        currency=body.currency,
        booking_date=body.booking_date,
        remittance=body.reference,
    )
    with rt.db.session() as session:
        payment = payments.record(session, receipt, rt.settings, actor=key.id)
        if payment is None:
            payment = session.query(Payment).filter(Payment.transaction_key == receipt.transaction_key).one()
        elif body.invoice_id is not None and payment.unallocated > 0:
            payments.place(
                session, payment, body.invoice_id, None, rt.settings, actor=key.id, rule="recorded by hand"
            )
        return PaymentView.of(payment)


@router.get("/v1/payments", response_model=list[PaymentView])
def list_payments(
    request: Request,
    _: Annotated[ApiKey, Depends(require("core:read"))],
    status: Annotated[str, Query(pattern="^(review|credit|matched|returned|refunded)$")] = "review",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PaymentView]:
    """Payments by status; the review queue (the default) comes with suggested invoices."""
    with runtime_of(request).db.session() as session:
        found = (
            session.query(Payment)
            .filter(Payment.status == status)
            .order_by(Payment.booking_date)
            .limit(limit)
            .all()
        )
        return [
            PaymentView.of(
                payment,
                [InvoiceView.of(i) for i in payments.suggestions(session, payment)]
                if status == "review"
                else None,
            )
            for payment in found
        ]


@router.post("/v1/payments/{payment_id}/place", response_model=PaymentView)
def place_payment(
    request: Request,
    payment_id: uuid.UUID,
    body: Placement,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> PaymentView:
    """Place a payment from review, or offset a credit balance, on an open invoice."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        payment = _payment(session, payment_id)
        kind = "offset" if payment.status == payments.CREDIT else "payment"
        payments.place(
            session, payment, body.invoice_id, body.amount, rt.settings, actor=key.id, rule="clerk", kind=kind
        )
        return PaymentView.of(payment)


@router.post("/v1/payments/{payment_id}/refund", response_model=PaymentView)
def refund_payment(
    request: Request,
    payment_id: uuid.UUID,
    body: Annotated[RefundRequest, Body()],
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> PaymentView:
    """Pay back (part of) a credit balance or an unmatched payment."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        payment = _payment(session, payment_id)
        payments.refund(session, payment, body.amount, rt.settings, actor=key.id, reason=body.reason)
        return PaymentView.of(payment)
