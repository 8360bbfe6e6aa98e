"""Invoice (Rechnung): request schema with the §14(4) UStG rules, template context and e-invoice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import (
    CurrencyCode,
    DocumentNumber,
    IsoDate,
    LongText,
    Quantity,
    TaxRate,
    Text,
    UnitPrice,
)
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Recipient, Seller, StrictModel
from postroom.documents.payment_qr import epc_qr_svg
from postroom.documents.request import DocumentData, DocumentRequest
from postroom.einvoice.model import EInvoice, TradeLine, TradeParty, tax_category, tax_subtotals
from postroom.money import LineItem, Totals, compute_totals


class InvoiceLine(StrictModel):
    """One invoice line: kind of service, quantity, unit price and VAT rate."""

    description: Text
    quantity: Quantity
    unit: str = Field(default="C62", pattern=r"^[A-Z0-9]{1,3}$", description="UN/ECE Rec. 20 unit code")
    unit_price: UnitPrice
    tax_rate: TaxRate

    def item(self) -> LineItem:
        """The arithmetic part of this line."""
        return LineItem(quantity=self.quantity, unit_price=self.unit_price, tax_rate=self.tax_rate)


class InvoiceReference(StrictModel):
    """A preceding invoice: its number and issue date (EN 16931 BG-3, BT-25/BT-26)."""

    number: DocumentNumber
    issue_date: IsoDate


class InvoiceData(DocumentData):
    """The invoice itself. Totals are never given: postroom computes them."""

    number: DocumentNumber
    issue_date: IsoDate
    delivery_date: IsoDate | None = Field(
        default=None, description="Date of supply (§14(4) Nr. 6 UStG); the issue date when omitted."
    )
    due_date: IsoDate | None = None
    currency: CurrencyCode = "EUR"
    seller: Seller
    order_reference: str | None = Field(default=None, max_length=100)
    buyer_reference: str | None = Field(
        default=None, max_length=100, description="Buyer reference BT-10, e.g. the Leitweg-ID for XRechnung."
    )
    lines: list[InvoiceLine] = Field(min_length=1, max_length=2000)
    payment_terms: LongText | None = None
    default_notice: bool = Field(
        default=False,
        description="Print the §286(3) BGB notice: default 30 days after due date and receipt.",
    )
    note: LongText | None = None
    tax_exemption_reason: Text | None = Field(
        default=None, description="Why lines at 0 % carry no VAT (required when such lines exist)."
    )
    corrects: InvoiceReference | None = Field(
        default=None, description="The invoice this one corrects: e-invoice type 384 with BT-25/BT-26."
    )

    @model_validator(mode="after")
    def _statutory_content(self) -> InvoiceData:
        if self.seller.vat_id is None and self.seller.tax_number is None:
            raise ValueError(
                "seller.vat_id or seller.tax_number is required on an invoice (§14(4) Nr. 2 UStG)"
            )
        if self.due_date is not None and self.due_date < self.issue_date:
            raise ValueError("due_date must not be before issue_date")
        if any(line.tax_rate == 0 for line in self.lines) and self.tax_exemption_reason is None:
            raise ValueError("lines at 0 % VAT need tax_exemption_reason (§14(4) Nr. 8 UStG)")
        if self.corrects is not None and self.corrects.issue_date > self.issue_date:
            raise ValueError("corrects.issue_date must not be after issue_date")
        if self.corrects is not None and self.corrects.number == self.number:
            raise ValueError("corrects.number must differ from number: a correction gets a new number")
        if self.totals().net <= 0:
            raise ValueError("an invoice total must be positive; a negative amount is a credit_note")
        return self

    @property
    def supply_date(self) -> date:
        """The date of supply printed on the invoice."""
        return self.delivery_date or self.issue_date

    def totals(self) -> Totals:
        """Line totals, net and tax per rate, and gross, computed from the lines."""
        return compute_totals(line.item() for line in self.lines)


class InvoiceRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: invoice``."""

    type: Literal["invoice"]
    data: InvoiceData

    @model_validator(mode="after")
    def _recipient_address(self) -> InvoiceRequest:
        if not self.recipient.is_complete:
            raise ValueError(
                "an invoice needs the recipient's full address: "
                "recipient.street, postcode and city (§14(4) Nr. 1 UStG)"
            )
        return self


def tax_breakdown(totals: Totals, fmt: Formatter) -> list[dict[str, str]]:
    """Net and tax per VAT rate, formatted, as the templates' VAT table prints them."""
    return [
        {"rate": fmt.percent(group.rate), "net": fmt.money(group.net), "tax": fmt.money(group.tax)}
        for group in totals.tax_groups
    ]


def line_figures(lines: Sequence[InvoiceLine], totals: Totals, fmt: Formatter) -> dict[str, Any]:
    """The ``lines``, ``taxes`` and ``totals`` an invoice or credit note prints, formatted."""
    return {
        "lines": [
            {
                "position": str(index),
                "description": line.description,
                "quantity": fmt.quantity(line.quantity),
                "unit": fmt.unit(line.unit),
                "unit_price": fmt.unit_price(line.unit_price),
                "tax_rate": fmt.percent(line.tax_rate),
                "total": fmt.amount(total),
            }
            for index, (line, total) in enumerate(zip(lines, totals.line_totals, strict=True), start=1)
        ],
        "taxes": tax_breakdown(totals, fmt),
        "totals": {
            "net": fmt.money(totals.net),
            "tax": fmt.money(totals.tax),
            "gross": fmt.money(totals.gross),
        },
    }


def invoice_context(request: InvoiceRequest) -> dict[str, Any]:
    """Everything the invoice template prints, formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    totals = data.totals()
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(request.recipient, data.seller, fmt),
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "delivery_date": fmt.date(data.supply_date),
        "due_date": fmt.date(data.due_date) if data.due_date else None,
        "order_reference": data.order_reference,
        "buyer_reference": data.buyer_reference,
        **line_figures(data.lines, totals, fmt),
        "currency": data.currency,
        "payment_terms": data.payment_terms,
        "default_notice": data.default_notice,
        "note": data.note,
        "tax_exemption_reason": data.tax_exemption_reason,
        "corrects": (
            {"number": data.corrects.number, "issue_date": fmt.date(data.corrects.issue_date)}
            if data.corrects
            else None
        ),
        "payment_qr": payment_qr(data.seller, totals.gross, data.number, data.currency),
    }


def payment_qr(seller: Seller, amount: Decimal, reference: str, currency: str) -> str | None:
    """The GiroCode for paying ``amount`` to the seller's account, if it has one."""
    if seller.iban is None:
        return None
    return epc_qr_svg(
        name=seller.name,
        iban=seller.iban,
        bic=seller.bic,
        amount=amount,
        reference=reference,
        currency=currency,
    )


def seller_party(seller: Seller) -> TradeParty:
    """The seller as an e-invoice trade party (BG-4)."""
    register = " ".join(part for part in (seller.register_court, seller.register_number) if part)
    return TradeParty(
        name=seller.name,
        street=seller.street,
        postcode=seller.postcode,
        city=seller.city,
        country=seller.country,
        vat_id=seller.vat_id,
        tax_number=seller.tax_number,
        registration=register or None,
        email=seller.email,
        phone=seller.phone,
        contact_name=seller.name,
    )


def recipient_party(recipient: Recipient) -> TradeParty:
    """The recipient as an e-invoice trade party (BG-7)."""
    return TradeParty(
        name=recipient.name,
        street=recipient.street,
        postcode=recipient.postcode,
        city=recipient.city,
        country=recipient.country,
        vat_id=recipient.vat_id,
        tax_number=recipient.tax_number,
        email=recipient.email,
        contact_name=recipient.attention,
        customer_number=recipient.customer_number,
    )


def trade_lines(lines: Sequence[InvoiceLine], totals: Totals, *, exempt: bool) -> tuple[TradeLine, ...]:
    """Invoice lines as e-invoice lines (BG-25), with the line amounts computed in ``totals``."""
    return tuple(
        TradeLine(
            id=str(index),
            name=line.description,
            quantity=line.quantity,
            unit_code=line.unit,
            net_price=line.unit_price,
            net_amount=total,
            tax_category=tax_category(line.tax_rate, exempt=exempt),
            tax_rate=line.tax_rate,
        )
        for index, (line, total) in enumerate(zip(lines, totals.line_totals, strict=True), start=1)
    )


def invoice_einvoice(request: InvoiceRequest) -> EInvoice:
    """The invoice as EN 16931 data (type code 380, or 384 when it corrects a preceding invoice)."""
    data = request.data
    totals = data.totals()
    return EInvoice(
        type_code="384" if data.corrects else "380",
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
        delivery_date=data.supply_date,
        due_date=data.due_date,
        payment_terms=data.payment_terms,
        payee_iban=data.seller.iban,
        payee_bic=data.seller.bic,
        payment_reference=data.number,
        preceding_invoice=(data.corrects.number, data.corrects.issue_date) if data.corrects else None,
        notes=tuple(note for note in (data.note,) if note),
    )


DOCUMENT_TYPE = DocumentType(
    name="invoice",
    request_model=InvoiceRequest,
    build_context=invoice_context,
    titles={"de": "Rechnung", "en": "Invoice"},
    retention="voucher",
    template="invoice",
    einvoice=invoice_einvoice,
)
