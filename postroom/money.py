"""Money arithmetic: the one place where line totals, tax and gross amounts are computed.

Every amount is a :class:`~decimal.Decimal`; rounding is half-up to the cent and
happens at defined points only: once per line (EN 16931 BT-131) and once per tax
rate (BT-117). Templates and e-invoice XML take these figures, never their own sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


def round_money(amount: Decimal) -> Decimal:
    """Round to the cent, half-up (0.005 → 0.01, -0.005 → -0.01)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, rate: Decimal) -> Decimal:
    """``rate`` percent of ``amount``, rounded half-up to the cent."""
    return round_money(amount * rate / HUNDRED)


@dataclass(frozen=True, slots=True)
class LineItem:
    """The arithmetic part of an invoice line."""

    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A document-level allowance (negative amount) or charge (positive) at one rate (EN 16931 BG-20/21)."""

    amount: Decimal
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class TaxGroup:
    """Taxable amount, rate and tax of everything sharing one tax rate."""

    rate: Decimal
    net: Decimal
    tax: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    """Computed totals of a document (EN 16931 BG-22).

    ``line_net`` is the sum of line amounts (BT-106), ``allowances`` and ``charges`` the
    document-level adjustments (BT-107, BT-108, both positive), ``net`` the taxable
    amount (BT-109), ``tax`` the tax total (BT-110), ``gross`` the total with tax (BT-112).
    """

    line_totals: tuple[Decimal, ...]
    tax_groups: tuple[TaxGroup, ...]
    line_net: Decimal
    allowances: Decimal
    charges: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


def line_total(item: LineItem) -> Decimal:
    """Net amount of one line: quantity × unit price, rounded to the cent."""
    return round_money(item.quantity * item.unit_price)


def compute_totals(items: Iterable[LineItem], adjustments: Iterable[Adjustment] = ()) -> Totals:
    """Totals of ``items`` and document-level ``adjustments``; tax groups by descending rate."""
    items, adjustments = list(items), list(adjustments)
    totals = tuple(line_total(item) for item in items)
    net_by_rate: dict[Decimal, Decimal] = {}
    for rate, amount in [
        *((item.tax_rate, total) for item, total in zip(items, totals, strict=True)),
        *((adjustment.tax_rate, round_money(adjustment.amount)) for adjustment in adjustments),
    ]:
        key = rate.normalize()
        net_by_rate[key] = net_by_rate.get(key, ZERO) + amount
    groups = tuple(
        TaxGroup(rate=rate, net=net, tax=percent_of(net, rate))
        for rate, net in sorted(net_by_rate.items(), key=lambda pair: pair[0], reverse=True)
    )
    net = sum((group.net for group in groups), ZERO)
    tax = sum((group.tax for group in groups), ZERO)
    return Totals(
        line_totals=totals,
        tax_groups=groups,
        line_net=sum(totals, ZERO),
        allowances=-sum((round_money(a.amount) for a in adjustments if a.amount < 0), ZERO),
        charges=sum((round_money(a.amount) for a in adjustments if a.amount > 0), ZERO),
        net=net,
        tax=tax,
        gross=net + tax,
    )


def decimal_text(value: Decimal) -> str:
    """``value`` as plain decimal text without trailing zeros: ``40.0000`` → ``"40"`` (not ``"4E+1"``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
