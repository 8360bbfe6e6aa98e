"""Commission statement (Provisionsabrechnung): a broker's self-billed invoice ("Gutschrift") to its agent.

The broker (``data.seller``, the issuer of the letter) receives the agent's brokering
service and bills it itself (§14(2) S. 5 UStG); the document must carry the word
"Gutschrift" (§14(4) S. 1 Nr. 10 UStG). For VAT the AGENT (the request's recipient) is
the supplier: the agent's full address and tax number or VAT ID are required
(§14(4) Nr. 1 and 2 UStG), and in the e-invoice (type code 389) the agent is the seller
(BG-4) and the broker the buyer (BG-7).

Arithmetic, all through :mod:`postroom.money` (half-up to the cent):

* each commission line: ``base_amount`` × ``rate`` % → commission net (BT-131), rounded per line;
* ``discounting`` (early payout): ``rate`` % of the net commission of the line named by
  ``applies_to``, rounded once, deducted as a document-level ALLOWANCE (BG-20) at that
  line's tax rate. It lowers the taxable amount, because the fee reduces the consideration
  the agent receives for that very supply (§17 UStG-style reduction rather than a separate
  financial service of the broker). The choice keeps one document and one VAT computation;
* VAT per rate on the taxable amount (BT-116/117), none for a §19 UStG small business
  (category E with the §19 note as exemption reason);
* ``advances_offset``: advances already paid, deducted from the payout as prepaid amount
  (BT-113), never from the taxable amount (they were consideration paid in advance);
* payout = gross (BT-112) − advances = amount due (BT-115), transferred to the agent's IBAN
  (payee account BT-84 of the agent-as-seller) on ``payout_date`` (BT-9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import (
    Amount,
    CurrencyCode,
    DocumentNumber,
    IsoDate,
    LongText,
    Percent,
    TaxRate,
    Text,
)
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import Recipient, Seller, StrictModel
from postroom.documents.request import DocumentData, DocumentRequest, Period
from postroom.documents.types.invoice import recipient_party, seller_party, tax_breakdown
from postroom.einvoice.model import DocumentAdjustment, EInvoice, TradeLine, tax_category, tax_subtotals
from postroom.money import ZERO, Adjustment, LineItem, Totals, compute_totals, percent_of

SMALL_BUSINESS_NOTE: dict[str, str] = {
    "de": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
    "en": "In accordance with section 19 of the German VAT Act (UStG), no VAT is charged.",
}
"""The §19 UStG (small business) note, printed and used as e-invoice exemption reason (BT-120)."""

SELF_BILLING_NOTE: dict[str, str] = {
    "de": "Gutschrift im Sinne des § 14 Abs. 2 Satz 5 UStG (Abrechnung durch den Leistungsempfänger).",
    "en": "Gutschrift: self-billed invoice issued by the recipient of the service "
    "(section 14 (2) sentence 5 German VAT Act).",
}
"""The self-billing statement, in the e-invoice notes (BT-22)."""

# German tax number (Steuernummer): 10 or 11 digits in the Länder format (e.g. 231/123/45678),
# 13 digits in the federal format; digits with "/" or spaces between groups.
_GERMAN_TAX_NUMBER = re.compile(r"[0-9]+([/ ][0-9]+)*")
_REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,99}$"


def _positive(value: Decimal, field: str) -> Decimal:
    if value <= 0:
        raise ValueError(f"{field} must be positive")
    return value


class Commission(StrictModel):
    """One commission: ``rate`` percent of ``base_amount`` (e.g. the agent's share of a courtage)."""

    order_reference: str = Field(pattern=_REFERENCE, description="The brokered order; unique per statement.")
    description: Text
    base_amount: Amount = Field(description="The amount the commission is computed on.")
    rate: Percent = Field(description="Commission rate in percent of base_amount (0 to 100).")
    tax_rate: TaxRate | None = Field(
        default=None, description="VAT rate; required unless agent_small_business, then omitted or 0."
    )

    @field_validator("base_amount")
    @classmethod
    def _positive_base(cls, value: Decimal) -> Decimal:
        return _positive(value, "base_amount")

    @field_validator("rate")
    @classmethod
    def _positive_rate(cls, value: Decimal) -> Decimal:
        return _positive(value, "rate")

    @property
    def net(self) -> Decimal:
        """The commission net: ``rate`` % of ``base_amount``, rounded half-up to the cent."""
        return percent_of(self.base_amount, self.rate)


class AdvanceOffset(StrictModel):
    """An advance already paid to the agent, deducted from the payout (BT-113)."""

    reference: str = Field(pattern=_REFERENCE)
    description: Text
    amount: Amount

    @field_validator("amount")
    @classmethod
    def _positive_amount(cls, value: Decimal) -> Decimal:
        return _positive(value, "amount")


class Discounting(StrictModel):
    """Fee for paying one commission early: ``rate`` % of that commission's net (an allowance, BG-20)."""

    description: Text
    rate: Percent
    applies_to: str = Field(pattern=_REFERENCE, description="order_reference of the discounted commission.")

    @field_validator("rate")
    @classmethod
    def _positive_rate(cls, value: Decimal) -> Decimal:
        return _positive(value, "rate")


@dataclass(frozen=True, slots=True)
class StatementFigures:
    """Every computed figure of a statement: the commission totals, the discount and the payout."""

    totals: Totals
    discount_basis: Decimal | None
    discount: Decimal
    advances: Decimal
    payout: Decimal


class CommissionStatementData(DocumentData):
    """The statement. Commission amounts, VAT, totals and the payout are computed, never given."""

    number: DocumentNumber
    issue_date: IsoDate
    period: Period
    currency: CurrencyCode = "EUR"
    seller: Seller = Field(description="The broker, who issues the self-billed invoice (buyer BG-7).")
    agent_small_business: bool = Field(
        default=False, description="The agent is a small business (§19 UStG): no VAT is charged."
    )
    commissions: list[Commission] = Field(min_length=1, max_length=2000)
    discounting: Discounting | None = None
    advances_offset: list[AdvanceOffset] = Field(default_factory=list, max_length=200)
    payout_date: IsoDate
    tax_exemption_reason: Text | None = Field(
        default=None, description="Why commissions at 0 % carry no VAT (not for agent_small_business)."
    )
    note: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CommissionStatementData:
        if self.period.end > self.issue_date:
            raise ValueError("period.end must not be after issue_date")
        if self.payout_date < self.issue_date:
            raise ValueError("payout_date must not be before issue_date")
        references = [commission.order_reference for commission in self.commissions]
        if len(set(references)) != len(references):
            raise ValueError("commissions.order_reference must be unique")
        if self.discounting is not None and self.discounting.applies_to not in references:
            raise ValueError("discounting.applies_to must name the order_reference of a commission")
        for index, commission in enumerate(self.commissions):
            if self.agent_small_business and commission.tax_rate not in (None, Decimal(0)):
                raise ValueError(
                    f"commissions.{index}.tax_rate must be omitted or 0: "
                    "an agent_small_business charges no VAT (§19 UStG)"
                )
            if not self.agent_small_business and commission.tax_rate is None:
                raise ValueError(f"commissions.{index}.tax_rate is required")
        if self.agent_small_business and self.tax_exemption_reason is not None:
            raise ValueError("tax_exemption_reason does not apply to an agent_small_business (§19 UStG)")
        if (
            not self.agent_small_business
            and any(self.vat_rate(c) == 0 for c in self.commissions)
            and self.tax_exemption_reason is None
        ):
            raise ValueError("commissions at 0 % VAT need tax_exemption_reason (§14(4) Nr. 8 UStG)")
        figures = self.figures()
        if figures.totals.net <= 0:
            raise ValueError("the commissions after discounting must be positive")
        if figures.payout < 0:
            raise ValueError("advances_offset exceed the statement's gross amount")
        return self

    def vat_rate(self, commission: Commission) -> Decimal:
        """The VAT rate a commission is taxed at: 0 for a §19 UStG small business."""
        if self.agent_small_business or commission.tax_rate is None:
            return Decimal(0)
        return commission.tax_rate

    def discounted(self) -> Commission | None:
        """The commission the discounting fee applies to."""
        if self.discounting is None:
            return None
        return next(c for c in self.commissions if c.order_reference == self.discounting.applies_to)

    def figures(self) -> StatementFigures:
        """Commission nets, the discount allowance, VAT per rate, gross, advances and payout."""
        items = [
            LineItem(quantity=Decimal(1), unit_price=commission.net, tax_rate=self.vat_rate(commission))
            for commission in self.commissions
        ]
        adjustments: list[Adjustment] = []
        discounted, basis, discount = self.discounted(), None, ZERO
        if discounted is not None and self.discounting is not None:
            basis = discounted.net
            discount = percent_of(basis, self.discounting.rate)
            adjustments.append(Adjustment(amount=-discount, tax_rate=self.vat_rate(discounted)))
        totals = compute_totals(items, adjustments)
        advances = sum((advance.amount for advance in self.advances_offset), ZERO)
        return StatementFigures(
            totals=totals,
            discount_basis=basis,
            discount=discount,
            advances=advances,
            payout=totals.gross - advances,
        )

    def exemption_reason(self, locale: str) -> str | None:
        """Why commissions carry no VAT: the §19 note for a small business, else the given reason."""
        if self.agent_small_business:
            return SMALL_BUSINESS_NOTE.get(locale, SMALL_BUSINESS_NOTE["de"])
        return self.tax_exemption_reason


def _valid_tax_number(recipient: Recipient) -> bool:
    number = recipient.tax_number
    if number is None or recipient.country != "DE":
        return True
    digits = sum(char.isdigit() for char in number)
    return bool(_GERMAN_TAX_NUMBER.fullmatch(number)) and 10 <= digits <= 13


class CommissionStatementRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: commission_statement``; the recipient is the agent."""

    type: Literal["commission_statement"]
    data: CommissionStatementData

    @model_validator(mode="after")
    def _agent(self) -> CommissionStatementRequest:
        agent = self.recipient
        if agent.vat_id is None and agent.tax_number is None:
            raise ValueError(
                "recipient.tax_number or recipient.vat_id is required: the agent is the supplier "
                "of a self-billed invoice (§14(4) Nr. 2 UStG)"
            )
        if not _valid_tax_number(agent):
            raise ValueError("recipient.tax_number is not a German tax number (10 to 13 digits)")
        if not agent.is_complete:
            raise ValueError(
                "a commission_statement needs the agent's full address: "
                "recipient.street, postcode and city (§14(4) Nr. 1 UStG)"
            )
        if agent.kind != "business":
            raise ValueError(
                "recipient.kind must be 'business': a self-billed invoice goes to an entrepreneur"
            )
        if agent.iban is None and self.data.figures().payout > 0:
            raise ValueError("recipient.iban is required: the payout is transferred to the agent's account")
        return self


def _negative(fmt: Formatter, amount: Decimal) -> str:
    """A deduction, printed with a minus sign: ``−73,50 €``."""
    return "\u2212" + fmt.money(amount)


def commission_statement_context(request: CommissionStatementRequest) -> dict[str, Any]:
    """Everything the commission statement template prints, formatted for the request's locale."""
    data = request.data
    agent = request.recipient
    fmt = Formatter(request.locale, data.currency)
    figures = data.figures()
    totals = figures.totals
    discounting = data.discounting
    discount = (
        {
            "description": discounting.description,
            "applies_to": discounting.applies_to,
            "rate": fmt.percent(discounting.rate),
            "basis": fmt.money(figures.discount_basis),
            "amount": _negative(fmt, figures.discount),
        }
        if discounting is not None and figures.discount_basis is not None
        else None
    )
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(agent, data.seller, fmt),
        "agent": {
            "name": agent.name,
            "tax_number": agent.tax_number,
            "vat_id": agent.vat_id,
            "iban": fmt.iban(agent.iban) if agent.iban else None,
        },
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "period": {"start": fmt.date(data.period.start), "end": fmt.date(data.period.end)},
        "payout_date": fmt.date(data.payout_date),
        "payout_due": figures.payout > 0,
        "small_business": data.agent_small_business,
        "commissions": [
            {
                "position": str(index),
                "order_reference": commission.order_reference,
                "description": commission.description,
                "base_amount": fmt.amount(commission.base_amount),
                "rate": fmt.percent(commission.rate),
                "tax_rate": None if data.agent_small_business else fmt.percent(data.vat_rate(commission)),
                "commission": fmt.amount(total),
            }
            for index, (commission, total) in enumerate(
                zip(data.commissions, totals.line_totals, strict=True), start=1
            )
        ],
        "discount": discount,
        "taxes": [] if data.agent_small_business else tax_breakdown(totals, fmt),
        "totals": {
            "commissions": fmt.money(totals.line_net),
            "net": fmt.money(totals.net),
            "tax": fmt.money(totals.tax),
            "gross": fmt.money(totals.gross),
            "payout": fmt.money(figures.payout),
        },
        "advances": [
            {
                "reference": advance.reference,
                "description": advance.description,
                "amount": _negative(fmt, advance.amount),
            }
            for advance in data.advances_offset
        ],
        "currency": data.currency,
        "tax_exemption_reason": data.exemption_reason(request.locale),
        "note": data.note,
    }


def commission_statement_einvoice(request: CommissionStatementRequest) -> EInvoice:
    """The statement as EN 16931 data: type code 389, the agent as seller and the broker as buyer."""
    data = request.data
    figures = data.figures()
    totals = figures.totals
    reason = data.exemption_reason(request.locale)
    discounted = data.discounted()
    adjustments = (
        (
            DocumentAdjustment(
                is_charge=False,
                amount=figures.discount,
                reason=data.discounting.description,
                tax_category=tax_category(data.vat_rate(discounted), exempt=reason is not None),
                tax_rate=data.vat_rate(discounted),
            ),
        )
        if data.discounting is not None and discounted is not None
        else ()
    )
    return EInvoice(
        type_code="389",
        number=data.number,
        issue_date=data.issue_date,
        currency=data.currency,
        seller=recipient_party(request.recipient),
        buyer=seller_party(data.seller),
        lines=tuple(
            TradeLine(
                id=str(index),
                name=commission.description,
                quantity=Decimal(1),
                unit_code="C62",
                net_price=total,
                net_amount=total,
                tax_category=tax_category(data.vat_rate(commission), exempt=reason is not None),
                tax_rate=data.vat_rate(commission),
                order_reference=commission.order_reference,
            )
            for index, (commission, total) in enumerate(
                zip(data.commissions, totals.line_totals, strict=True), start=1
            )
        ),
        taxes=tax_subtotals(totals.tax_groups, reason),
        line_total=totals.line_net,
        allowance_total=totals.allowances,
        charge_total=totals.charges,
        adjustments=adjustments,
        tax_basis=totals.net,
        tax_total=totals.tax,
        grand_total=totals.gross,
        prepaid=figures.advances,
        due_payable=figures.payout,
        period=(data.period.start, data.period.end),
        due_date=data.payout_date,
        payee_iban=request.recipient.iban,
        payment_reference=data.number,
        notes=tuple(
            note
            for note in (SELF_BILLING_NOTE.get(request.locale, SELF_BILLING_NOTE["de"]), data.note)
            if note
        ),
    )


DOCUMENT_TYPE = DocumentType(
    name="commission_statement",
    request_model=CommissionStatementRequest,
    build_context=commission_statement_context,
    titles={"de": "Provisionsabrechnung (Gutschrift)", "en": "Commission statement"},
    retention="voucher",
    template="commission_statement",
    einvoice=commission_statement_einvoice,
)
