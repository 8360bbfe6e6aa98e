from __future__ import annotations

from decimal import Decimal

from postroom.money import Adjustment, LineItem, compute_totals, round_money

D = Decimal


def test_round_money_is_half_up_in_both_directions() -> None:
    assert round_money(D("0.005")) == D("0.01")
    assert round_money(D("0.004999")) == D("0.00")
    assert round_money(D("-0.005")) == D("-0.01")
    assert round_money(D("2.675")) == D("2.68")  # a float would give 2.67


def test_tax_is_rounded_once_per_rate_not_per_line() -> None:
    items = [LineItem(D("1"), D("0.35"), D("19"))] * 3
    totals = compute_totals(items)
    assert totals.tax_groups[0].net == D("1.05")
    assert totals.tax_groups[0].tax == D(
        "0.20"
    )  # 0.1995 → 0.20; per-line rounding would give 3 × 0.07 = 0.21


def test_mixed_rates_grouped_and_ordered_by_rate() -> None:
    totals = compute_totals(
        [
            LineItem(D("3"), D("525.00"), D("19")),
            LineItem(D("1"), D("1912.50"), D("7")),
            LineItem(D("2.5"), D("10.333"), D("19")),
        ]
    )
    assert totals.line_totals == (D("1575.00"), D("1912.50"), D("25.83"))
    assert [group.rate for group in totals.tax_groups] == [D("19"), D("7")]
    assert totals.tax_groups[0].net == D("1600.83")
    assert totals.tax_groups[0].tax == D("304.16")  # 304.1577
    assert totals.tax_groups[1].tax == D("133.88")  # 133.875
    assert totals.gross == totals.net + totals.tax == D("3951.37")


def test_equal_rates_written_differently_form_one_group() -> None:
    totals = compute_totals([LineItem(D("1"), D("10"), D("19")), LineItem(D("1"), D("10"), D("19.00"))])
    assert len(totals.tax_groups) == 1
    assert totals.tax == D("3.80")


def test_allowances_and_charges_are_taxed_at_their_rate() -> None:
    totals = compute_totals(
        [LineItem(D("1"), D("4788.00"), D("19")), LineItem(D("1"), D("2940.00"), D("19"))],
        [Adjustment(D("-73.50"), D("19")), Adjustment(D("10.00"), D("7"))],
    )
    assert totals.line_net == D("7728.00")
    assert (totals.allowances, totals.charges) == (D("73.50"), D("10.00"))
    assert [(group.rate, group.net, group.tax) for group in totals.tax_groups] == [
        (D("19"), D("7654.50"), D("1454.36")),  # 1454.355 → half-up
        (D("7"), D("10.00"), D("0.70")),
    ]
    assert totals.net == totals.line_net - totals.allowances + totals.charges == D("7664.50")
    assert totals.gross == D("9119.56")
