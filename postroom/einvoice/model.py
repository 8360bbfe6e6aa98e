"""An engine-neutral model of an EN 16931 invoice, built by each voucher type from its request.

Field names follow the semantic model; the business-term numbers (BT-…) are noted where
the mapping is not obvious. Amounts are Decimals computed by :mod:`postroom.money`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from postroom.money import TaxGroup

TypeCode = Literal["380", "381", "384", "389"]
"""380 commercial invoice, 381 credit note, 384 corrected invoice, 389 self-billed invoice."""

TaxCategory = Literal["S", "Z", "E", "AE", "K", "G", "O"]
"""UNTDID 5305: standard, zero rated, exempt, reverse charge, intra-community, export, not subject."""


@dataclass(frozen=True, slots=True)
class TradeParty:
    """Seller (BG-4) or buyer (BG-7)."""

    name: str
    street: str | None
    postcode: str | None
    city: str | None
    country: str
    vat_id: str | None = None
    tax_number: str | None = None
    registration: str | None = None
    email: str | None = None
    phone: str | None = None
    contact_name: str | None = None
    customer_number: str | None = None


@dataclass(frozen=True, slots=True)
class TradeLine:
    """One invoice line (BG-25)."""

    id: str
    name: str
    quantity: Decimal
    unit_code: str
    net_price: Decimal
    net_amount: Decimal
    tax_category: TaxCategory
    tax_rate: Decimal
    order_reference: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentAdjustment:
    """A document-level allowance (BG-20) or charge (BG-21); ``amount`` is positive."""

    is_charge: bool
    amount: Decimal
    reason: str
    tax_category: TaxCategory
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class TaxSubtotal:
    """VAT breakdown per category and rate (BG-23)."""

    category: TaxCategory
    rate: Decimal
    basis: Decimal
    tax: Decimal
    exemption_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EInvoice:
    """Everything the CII XML states; ``due_payable`` = ``grand_total`` - ``prepaid`` (BT-115)."""

    type_code: TypeCode
    number: str
    issue_date: date
    currency: str
    seller: TradeParty
    buyer: TradeParty
    lines: tuple[TradeLine, ...]
    taxes: tuple[TaxSubtotal, ...]
    line_total: Decimal
    tax_basis: Decimal
    tax_total: Decimal
    grand_total: Decimal
    due_payable: Decimal
    allowance_total: Decimal = Decimal("0.00")
    charge_total: Decimal = Decimal("0.00")
    prepaid: Decimal = Decimal("0.00")
    adjustments: tuple[DocumentAdjustment, ...] = ()
    buyer_reference: str | None = None
    order_reference: str | None = None
    delivery_date: date | None = None
    period: tuple[date, date] | None = None
    due_date: date | None = None
    payment_terms: str | None = None
    payee_iban: str | None = None
    payee_bic: str | None = None
    payment_reference: str | None = None
    preceding_invoice: tuple[str, date] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def tax_category(rate: Decimal, *, exempt: bool = False) -> TaxCategory:
    """``S`` for a positive rate; a 0 % line is exempt (``E``) when a reason is given, else zero rated."""
    if rate > 0:
        return "S"
    return "E" if exempt else "Z"


def tax_subtotals(groups: Iterable[TaxGroup], exemption_reason: str | None) -> tuple[TaxSubtotal, ...]:
    """The VAT breakdown (BG-23) of computed tax groups; 0 % groups carry the exemption reason."""
    exempt = exemption_reason is not None
    return tuple(
        TaxSubtotal(
            category=tax_category(group.rate, exempt=exempt),
            rate=group.rate,
            basis=group.net,
            tax=group.tax,
            exemption_reason=exemption_reason if group.rate == 0 else None,
        )
        for group in groups
    )
