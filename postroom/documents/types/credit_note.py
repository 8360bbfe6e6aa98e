"""Credit note (Stornorechnung): the cancellation of an issued invoice, referencing it (EN 16931 BT-25/26).

An issued invoice never changes (DESIGN §4): a correction is this cancellation plus a new
invoice with a new number. The lines are given with positive amounts, as on the cancelled
invoice; the document (type code 381) credits them. In German VAT law "Gutschrift" means a
self-billed invoice (§14(2) S. 5 UStG, see ``commission_statement``), so this document is
called "Stornorechnung" and never "Gutschrift".
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import CurrencyCode, DocumentNumber, IsoDate, LongText, Text
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Seller
from postroom.documents.request import DocumentData, DocumentRequest
from postroom.documents.types.invoice import (
    InvoiceLine,
    InvoiceReference,
    line_figures,
    recipient_party,
    seller_party,
    trade_lines,
)
from postroom.einvoice.model import EInvoice, tax_subtotals
from postroom.money import Totals, compute_totals


class CreditNoteData(DocumentData):
    """The cancellation: which invoice it cancels, why, and the credited lines. Totals are computed."""

    number: DocumentNumber
    issue_date: IsoDate
    currency: CurrencyCode = "EUR"
    seller: Seller
    cancels: InvoiceReference = Field(
        description="The cancelled invoice: number (BT-25) and issue date (BT-26)."
    )
    reason: LongText | None = Field(default=None, description="Why the invoice is cancelled.")
    delivery_date: IsoDate | None = Field(
        default=None, description="Date of supply of the cancelled invoice (BT-72), printed when given."
    )
    order_reference: str | None = Field(default=None, max_length=100)
    buyer_reference: str | None = Field(
        default=None, max_length=100, description="Buyer reference BT-10, e.g. the Leitweg-ID for XRechnung."
    )
    lines: list[InvoiceLine] = Field(
        min_length=1, max_length=2000, description="The credited lines, amounts positive as invoiced."
    )
    note: LongText | None = None
    tax_exemption_reason: Text | None = Field(
        default=None, description="Why lines at 0 % carry no VAT (required when such lines exist)."
    )

    @model_validator(mode="after")
    def _statutory_content(self) -> CreditNoteData:
        if self.seller.vat_id is None and self.seller.tax_number is None:
            raise ValueError(
                "seller.vat_id or seller.tax_number is required on a credit_note (§14(4) Nr. 2 UStG)"
            )
        if self.cancels.issue_date > self.issue_date:
            raise ValueError("cancels.issue_date must not be after issue_date")
        if self.cancels.number == self.number:
            raise ValueError("cancels.number must differ from number: a credit_note has its own number")
        if self.delivery_date is not None and self.delivery_date > self.issue_date:
            raise ValueError("delivery_date must not be after issue_date")
        if any(line.tax_rate == 0 for line in self.lines) and self.tax_exemption_reason is None:
            raise ValueError("lines at 0 % VAT need tax_exemption_reason (§14(4) Nr. 8 UStG)")
        if self.totals().net <= 0:
            raise ValueError(
                "the lines of a credit_note are given with positive amounts, as invoiced; "
                "their net total must be positive"
            )
        return self

    def totals(self) -> Totals:
        """Line totals, net and tax per rate, and gross of the credited lines."""
        return compute_totals(line.item() for line in self.lines)


class CreditNoteRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: credit_note``."""

    type: Literal["credit_note"]
    data: CreditNoteData

    @model_validator(mode="after")
    def _recipient_address(self) -> CreditNoteRequest:
        if not self.recipient.is_complete:
            raise ValueError(
                "a credit_note needs the recipient's full address: "
                "recipient.street, postcode and city (§14(4) Nr. 1 UStG)"
            )
        return self


def _optional_date(fmt: Formatter, value: date | None) -> str | None:
    return fmt.date(value) if value is not None else None


def credit_note_context(request: CreditNoteRequest) -> dict[str, Any]:
    """Everything the credit note template prints, formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    totals = data.totals()
    recipient = request.recipient
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(recipient, data.seller, fmt),
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "cancels": {"number": data.cancels.number, "issue_date": fmt.date(data.cancels.issue_date)},
        "reason": data.reason,
        "delivery_date": _optional_date(fmt, data.delivery_date),
        "order_reference": data.order_reference,
        "buyer_reference": data.buyer_reference,
        **line_figures(data.lines, totals, fmt),
        "currency": data.currency,
        "refund_iban": fmt.iban(recipient.iban) if recipient.iban else None,
        "note": data.note,
        "tax_exemption_reason": data.tax_exemption_reason,
    }


def credit_note_einvoice(request: CreditNoteRequest) -> EInvoice:
    """The credit note as EN 16931 data: type code 381, the cancelled invoice as BT-25/BT-26.

    Amounts stay positive, as EN 16931 wants for a credit note. The refund goes to the
    buyer, so the payee account (BT-84) is the recipient's IBAN when it is known.
    """
    data = request.data
    totals = data.totals()
    return EInvoice(
        type_code="381",
        number=data.number,
        issue_date=data.issue_date,
        currency=data.currency,
        seller=seller_party(data.seller),
        buyer=recipient_party(request.recipient),
        lines=trade_lines(data.lines, totals, exempt=data.tax_exemption_reason is not None),
        taxes=tax_subtotals(totals.tax_groups, data.tax_exemption_reason),
        line_total=totals.line_net,
        tax_basis=totals.net,
        tax_total=totals.tax,
        grand_total=totals.gross,
        due_payable=totals.gross,
        buyer_reference=data.buyer_reference,
        order_reference=data.order_reference,
        delivery_date=data.delivery_date,
        payee_iban=request.recipient.iban,
        payment_reference=data.number,
        preceding_invoice=(data.cancels.number, data.cancels.issue_date),
        notes=tuple(note for note in (data.reason, data.note) if note),
    )


DOCUMENT_TYPE = DocumentType(
    name="credit_note",
    request_model=CreditNoteRequest,
    build_context=credit_note_context,
    titles={"de": "Stornorechnung", "en": "Credit note"},
    retention="voucher",
    template="credit_note",
    einvoice=credit_note_einvoice,
)
