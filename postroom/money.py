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


def round_money(amount: Decimal) -> Decimal:
    """Round to the cent, half-up (0.005 → 0.01, -0.005 → -0.01)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class LineItem:
    """The arithmetic part of an invoice line."""

    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class TaxGroup:
    """Net amount, rate and tax of all lines sharing one tax rate."""

    rate: Decimal
    net: Decimal
    tax: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    """Computed totals of a document: per line, per tax rate and overall."""

    line_totals: tuple[Decimal, ...]
    tax_groups: tuple[TaxGroup, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal


def line_total(item: LineItem) -> Decimal:
    """Net amount of one line: quantity × unit price, rounded to the cent."""
    return round_money(item.quantity * item.unit_price)


def compute_totals(items: Iterable[LineItem]) -> Totals:
    """Totals of ``items``; tax groups are ordered by descending rate."""
    items = list(items)
    totals = tuple(line_total(item) for item in items)
    net_by_rate: dict[Decimal, Decimal] = {}
    for item, total in zip(items, totals, strict=True):
        rate = item.tax_rate.normalize()
        net_by_rate[rate] = net_by_rate.get(rate, Decimal(0)) + total
    groups = tuple(
        TaxGroup(rate=rate, net=net, tax=round_money(net * rate / HUNDRED))
        for rate, net in sorted(net_by_rate.items(), key=lambda pair: pair[0], reverse=True)
    )
    net = sum((group.net for group in groups), Decimal(0))
    tax = sum((group.tax for group in groups), Decimal(0))
    return Totals(line_totals=totals, tax_groups=groups, net=net, tax=tax, gross=net + tax)
