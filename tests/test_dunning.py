"""Statutory interest, dunning letters and collection notices: figures by hand, rules, rendered PDFs."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from postroom.documents.catalogue import document_type
from postroom.documents.interest import (
    SHIPPED_TABLE,
    BaseRate,
    BaseRateError,
    BaseRateTable,
    base_rate_table,
    load_base_rates,
    parse_base_rates,
    statutory_interest,
)
from postroom.documents.payment_qr import epc_qr_svg
from postroom.documents.types.collection_notice import CollectionRequest
from postroom.documents.types.dunning_letter import DunningRequest, dunning_totals, payment_reference
from postroom.renderer.engine import Variant
from postroom.settings import get_settings
from tests.conftest import example
from tests.pdf_checks import (
    assert_contains,
    assert_only_address_in_window,
    declares_pdf_a_3b,
    flowing,
    postal_address,
    reader_of,
    render_example,
    return_line_of,
    text_of,
)

# ---------------------------------------------------------------------------------------------
# Interest, computed by hand
# ---------------------------------------------------------------------------------------------


def test_dunning_example_interest_by_hand() -> None:
    # RE-2026-000088: 4,760.00 − 0.00 = 4,760.00 open; business debtor: 1.27 + 9 = 10.27 %.
    # 2026-09-17..2026-11-23 inclusive: 14 (17–30 Sep) + 31 (Oct) + 23 (1–23 Nov) = 68 days.
    # 4,760.00 × 10.27 × 68 / 36,500 = 3,324,193.60 / 36,500 = 91.0737… → 91.07
    first = statutory_interest(Decimal("4760.00"), date(2026, 9, 17), date(2026, 11, 23), "business")
    assert first.days == 68
    assert [(s.days, s.rate) for s in first.segments] == [(68, Decimal("10.27"))]
    assert first.interest == Decimal("91.07")
    # RE-2026-000097: 2,380.00 − 1,000.00 = 1,380.00 open, from 2026-10-16:
    # 16 (16–31 Oct) + 23 (1–23 Nov) = 39 days.
    # 1,380.00 × 10.27 × 39 / 36,500 = 552,731.40 / 36,500 = 15.1433… → 15.14
    second = statutory_interest(Decimal("1380.00"), date(2026, 10, 16), date(2026, 11, 23), "business")
    assert (second.days, second.interest) == (39, Decimal("15.14"))


def test_dunning_example_totals_are_computed() -> None:
    request = document_type("dunning_letter").parse(example("dunning_letter"))
    assert isinstance(request, DunningRequest)
    totals = dunning_totals(request)
    # principal 4,760.00 + 1,380.00 = 6,140.00; interest 91.07 + 15.14 = 106.21;
    # fees 40.00 + 2.50 = 42.50; total 6,140.00 + 106.21 + 42.50 = 6,288.71
    assert totals.principal == Decimal("6140.00")
    assert totals.interest_total == Decimal("106.21")
    assert totals.fees == Decimal("42.50")
    assert totals.total == Decimal("6288.71")


def test_a_base_rate_change_splits_the_period() -> None:
    # Consumer, 1,000.00 from 2025-06-20 to 2025-07-10: the base rate falls from 2.27 to 1.27
    # on 2025-07-01. 20–30 Jun: 11 days at 7.27 %; 1–10 Jul: 10 days at 6.27 %.
    # 1,000.00 × (7.27 × 11 + 6.27 × 10) / 36,500 = 1,000.00 × 142.67 / 36,500 = 3.9087… → 3.91
    result = statutory_interest(Decimal("1000.00"), date(2025, 6, 20), date(2025, 7, 10), "consumer")
    assert [(s.start, s.end, s.days, s.rate) for s in result.segments] == [
        (date(2025, 6, 20), date(2025, 6, 30), 11, Decimal("7.27")),
        (date(2025, 7, 1), date(2025, 7, 10), 10, Decimal("6.27")),
    ]
    assert result.days == 21
    assert result.interest == Decimal("3.91")


def test_a_table_entry_repeating_the_rate_does_not_split() -> None:
    # 2026-01-01 repeats 1.27: 2025-12-20..2026-01-10 is one segment of 22 days.
    result = statutory_interest(Decimal("100.00"), date(2025, 12, 20), date(2026, 1, 10), "business")
    assert [(s.days, s.rate) for s in result.segments] == [(22, Decimal("10.27"))]


def test_leap_years_still_count_365_days() -> None:
    # Business, 1,000.00 from 2024-02-01 to 2024-03-01: 29 February days + 1 = 30 days at
    # 3.62 + 9 = 12.62 %. 1,000.00 × 12.62 × 30 / 365 / 100 = 10.3726… → 10.37 (/366 would give 10.34).
    result = statutory_interest(Decimal("1000.00"), date(2024, 2, 1), date(2024, 3, 1), "business")
    assert result.days == 30
    assert result.interest == Decimal("10.37")


def test_consumer_and_business_rates() -> None:
    # Same item as RE-2026-000088 but for a consumer: 1.27 + 5 = 6.27 %.
    # 4,760.00 × 6.27 × 68 / 36,500 = 2,029,473.60 / 36,500 = 55.6020… → 55.60
    consumer = statutory_interest(Decimal("4760.00"), date(2026, 9, 17), date(2026, 11, 23), "consumer")
    business = statutory_interest(Decimal("4760.00"), date(2026, 9, 17), date(2026, 11, 23), "business")
    assert consumer.segments[0].rate == Decimal("6.27")
    assert consumer.interest == Decimal("55.60")
    assert business.interest == Decimal("91.07")


def test_interest_is_rounded_once_per_item() -> None:
    # Consumer, 103.00 from 2025-06-20 to 2025-07-10:
    # 103.00 × 7.27 × 11 / 36,500 = 0.22566… and 103.00 × 6.27 × 10 / 36,500 = 0.17693…
    # Rounded per segment 0.23 + 0.18 = 0.41; rounded once: 14,695.01 / 36,500 = 0.40260… → 0.40.
    result = statutory_interest(Decimal("103.00"), date(2025, 6, 20), date(2025, 7, 10), "consumer")
    assert result.interest == Decimal("0.40")


def test_rounding_is_half_up() -> None:
    # Base rate 0 and a consumer: 5 %. 36.50 × 5 × 1 day / 36,500 = 0.005 exactly → 0.01.
    table = BaseRateTable((BaseRate(date(2023, 1, 1), Decimal(0)),))
    result = statutory_interest(Decimal("36.50"), date(2023, 5, 2), date(2023, 5, 2), "consumer", table)
    assert result.interest == Decimal("0.01")


def test_no_interest_before_default() -> None:
    assert statutory_interest(Decimal("100.00"), None, date(2026, 1, 1), "business").interest == 0
    later = statutory_interest(Decimal("100.00"), date(2026, 2, 1), date(2026, 1, 31), "business")
    assert (later.days, later.segments, later.interest) == (0, (), Decimal("0.00"))


def test_a_key_date_beyond_the_table_keeps_the_last_rate() -> None:
    # 2030 is beyond the table: the last known rate 1.27 applies; 2 days at 10.27 % on 36,500.00
    # = 36,500.00 × 10.27 × 2 / 36,500 = 20.54.
    result = statutory_interest(Decimal("36500.00"), date(2030, 3, 1), date(2030, 3, 2), "business")
    assert result.segments[0].base_rate == Decimal("1.27")
    assert result.interest == Decimal("20.54")


def test_a_start_before_the_table_is_refused() -> None:
    with pytest.raises(BaseRateError, match="2023-01-01"):
        statutory_interest(Decimal("100.00"), date(2022, 12, 31), date(2023, 1, 5), "business")


def test_the_shipped_table_matches_the_design() -> None:
    table = load_base_rates(SHIPPED_TABLE)
    assert [(r.valid_from.isoformat(), str(r.rate)) for r in table.rates] == [
        ("2023-01-01", "1.62"),
        ("2023-07-01", "3.12"),
        ("2024-01-01", "3.62"),
        ("2024-07-01", "3.37"),
        ("2025-01-01", "2.27"),
        ("2025-07-01", "1.27"),
        ("2026-01-01", "1.27"),
    ]


def test_table_lines_are_checked() -> None:
    assert parse_base_rates("[base_rates]\n2027-01-01 = -0.5\n").rates[0].rate == Decimal("-0.5")
    with pytest.raises(BaseRateError, match="neither 1 January nor 1 July"):
        parse_base_rates("[base_rates]\n2027-03-01 = 1.5\n")
    with pytest.raises(BaseRateError, match="must be a number"):
        parse_base_rates("[base_rates]\n2027-01-01 = true\n")
    with pytest.raises(BaseRateError, match=r"\[base_rates\]"):
        parse_base_rates("rates = 1\n")


@pytest.fixture
def own_base_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "rates.toml"
    path.write_text("[base_rates]\n2023-01-01 = 1.62\n2027-01-01 = 2.00\n", encoding="utf-8")
    monkeypatch.setenv("POSTROOM_BASE_RATES_FILE", str(path))
    get_settings.cache_clear()
    yield path
    monkeypatch.delenv("POSTROOM_BASE_RATES_FILE")
    get_settings.cache_clear()


def test_the_setting_overrides_the_shipped_table(own_base_rates: Path) -> None:
    # 2027-01-01 takes 2.00 from the configured file: 36,500.00 × 11 % × 1 / 365 = 11.00.
    assert base_rate_table().rates[-1] == BaseRate(date(2027, 1, 1), Decimal("2.00"))
    result = statutory_interest(Decimal("36500.00"), date(2027, 1, 1), date(2027, 1, 1), "business")
    assert result.interest == Decimal("11.00")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def dunning(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(example("dunning_letter"))
    body["data"].update(changes)
    return body


def collection(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(example("collection_notice"))
    body["data"].update(changes)
    return body


def rejects(body: dict[str, Any], *fragments: str) -> str:
    with pytest.raises(ValidationError) as caught:
        document_type(body["type"]).parse(body)
    # What the API and the CLI show: location and message, never the input (DESIGN: no personal values).
    message = "\n".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
        for error in caught.value.errors(include_input=False, include_url=False)
    )
    for fragment in fragments:
        assert fragment in message, message
    for personal in ("Schmidt", "Römerturm", "München", "rechnungen@"):
        assert personal not in message, message
    return message


def test_examples_validate_unchanged() -> None:
    assert isinstance(document_type("dunning_letter").parse(example("dunning_letter")), DunningRequest)
    assert isinstance(
        document_type("collection_notice").parse(example("collection_notice")), CollectionRequest
    )
    assert document_type("dunning_letter").retention == "letter"
    assert document_type("collection_notice").retention == "letter"


def test_the_flat_rate_is_for_business_debtors_only() -> None:
    body = dunning()
    body["recipient"]["kind"] = "consumer"
    rejects(body, "data.fees", "business debtors", "recipient.kind")
    body["data"]["fees"] = [{"description": "Mahnkosten", "amount": "2.50"}]
    assert document_type("dunning_letter").parse(body)  # actual costs remain possible


def test_a_fee_of_kind_flat_rate_counts_whatever_its_description() -> None:
    body = dunning(fees=[{"description": "Pauschale", "amount": "40.00", "kind": "flat_rate"}])
    body["recipient"]["kind"] = "consumer"
    rejects(body, "data.fees")


def test_the_flat_rate_is_owed_once_and_is_forty_euro() -> None:
    flat = {"description": "Verzugspauschale gemäß § 288 Abs. 5 BGB", "amount": "40.00"}
    rejects(dunning(fees=[flat, flat]), "data.fees", "only once")
    rejects(
        dunning(previous_reminders=[{"level": 1, "date": "2026-10-20", "flat_rate_charged": True}]),
        "data.fees",
        "only once",
    )
    rejects(dunning(fees=[{**flat, "amount": "45.00"}]), "data.fees", "40.00 EUR")


def test_the_reminder_that_first_puts_the_debtor_in_default_is_free_of_charge() -> None:
    body = dunning(level=0, previous_reminders=[], interest="none")
    for item in body["data"]["items"]:
        del item["default_since"]
    rejects(body, "data.fees must be empty", "first puts the debtor in default")
    body["data"]["fees"] = []
    assert document_type("dunning_letter").parse(body)
    # Default starting after the issue date (§286(3) still running) does not count either.
    body = dunning(level=0, previous_reminders=[], fees=[{"description": "Mahnkosten", "amount": "2.50"}])
    for item in body["data"]["items"]:
        item["default_since"] = "2026-11-30"
    rejects(body, "data.fees must be empty")


def test_dates_and_levels_of_a_dunning_letter() -> None:
    rejects(dunning(pay_by="2026-11-23"), "data.pay_by")
    rejects(dunning(key_date="2026-11-24"), "data.key_date")
    rejects(dunning(previous_reminders=[{"level": 1, "date": "2026-11-23"}]), "data.previous_reminders")
    rejects(dunning(level=3), "data.previous_reminders", "level-3")
    rejects(dunning(level=4), "level")
    rejects(dunning(previous_reminders=[]), "data.previous_reminders")


def test_items_are_checked() -> None:
    body = dunning()
    body["data"]["items"][1]["paid"] = "2380.00"
    rejects(body, "paid must be less than amount")
    body = dunning()
    body["data"]["items"][0]["default_since"] = "2026-08-17"
    rejects(body, "default_since must be after due_date")
    body = dunning()
    body["data"]["items"][1]["invoice_number"] = "RE-2026-000088"
    rejects(body, "data.items", "twice")
    body = dunning()
    body["data"]["items"][0]["amount"] = 4760
    rejects(body, "decimal string")
    body = dunning()
    body["data"]["items"][0].update(
        invoice_date="2022-11-01", due_date="2022-11-15", default_since="2022-12-16"
    )
    rejects(body, "data.items[0].default_since", "base-rate table")


def test_statutory_interest_needs_a_consumer_or_business_debtor() -> None:
    body = dunning(fees=[])
    body["recipient"]["kind"] = "internal"
    rejects(body, "data.interest", "recipient.kind")


def test_hand_off_needs_two_reminders_the_first_28_days_earlier() -> None:
    # The example: 2026-10-20 is 34 days before the hand-off on 2026-11-23, 2026-11-23 the second.
    request = document_type("collection_notice").parse(example("collection_notice"))
    assert isinstance(request, CollectionRequest)
    assert [r.date for r in request.data.sent_reminders] == [date(2026, 10, 20), date(2026, 11, 23)]
    # 2026-10-27 is only 27 days before 2026-11-23.
    too_early = [{"level": 1, "date": "2026-10-27"}, {"level": 2, "date": "2026-11-10"}]
    rejects(collection(reminders=too_early), "data.reminders", "28 days")
    # 28 days exactly is enough.
    on_time = [{"level": 1, "date": "2026-10-26"}, {"level": 2, "date": "2026-11-10"}]
    assert document_type("collection_notice").parse(collection(reminders=on_time))
    rejects(collection(reminders=[{"level": 1, "date": "2026-10-01"}]), "data.reminders", "at least 2")
    claims = collection()
    claims["data"]["claims"][1]["invoice_number"] = "RE-2026-000088"
    rejects(claims, "data.claims", "twice")
    # A reminder dated after the hand-off did not precede it and does not count.
    later = [{"level": 1, "date": "2026-10-01"}, {"level": 2, "date": "2026-12-01"}]
    rejects(collection(reminders=later), "data.reminders", "at least 2")


# ---------------------------------------------------------------------------------------------
# Rendered letters
# ---------------------------------------------------------------------------------------------


def test_dunning_letter_prints_the_computed_figures_in_german() -> None:
    pdf = render_example(example("dunning_letter"))
    assert len(reader_of(pdf).pages) == 1
    assert_contains(
        text_of(pdf),
        (
            "2. Mahnung",
            "MA-2026-000311",
            "RE-2026-000088",
            "RE-2026-000097",
            "1.000,00",  # paid
            "1.380,00",  # open
            "91,07",
            "15,14",
            "68 Tage zu 10,27 %",
            "39 Tage zu 10,27 %",
            "6.140,00 €",
            "Verzugszinsen bis 23.11.2026 106,21 €",
            "Verzugspauschale gemäß § 288 Abs. 5 BGB 40,00 €",
            "Mahnkosten 2,50 €",
            "Gesamtbetrag 6.288,71 €",
            "07.12.2026",
            "1. Mahnung vom 20.10.2026",
            "§ 288 Abs. 2 BGB",
            "9 Prozentpunkten",
            "DE89 3704 0044 0532 0130 00",
            "Seite 1 von 1",
        ),
    )


def test_dunning_letter_prints_the_computed_figures_in_english() -> None:
    body = example("dunning_letter")
    body["locale"] = "en"
    assert_contains(
        text_of(render_example(body)),
        (
            "Second reminder",
            "91.07",
            "15.14",
            "68 days at 10.27%",
            "39 days at 10.27%",
            "€6,140.00",
            "Default interest to 23 Nov 2026 €106.21",
            "€40.00",
            "Total due €6,288.71",
            "7 Dec 2026",
            "first reminder of 20 Oct 2026",
            "Page 1 of 1",
        ),
    )


def test_the_payment_qr_code_carries_the_total_due() -> None:
    doc_type = document_type("dunning_letter")
    context = doc_type.context(doc_type.parse(example("dunning_letter")))
    assert context["payment_reference"] == "MA-2026-000311 RE-2026-000088 RE-2026-000097"
    assert context["payment_qr"] == epc_qr_svg(
        name="Muster Immobilien GmbH",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        amount=Decimal("6288.71"),
        reference="MA-2026-000311 RE-2026-000088 RE-2026-000097",
    )


def level_body(level: int, locale: str) -> dict[str, Any]:
    previous = [
        {"level": 1, "date": "2026-10-20"},
        {"level": 2, "date": "2026-11-05"},
    ][: max(level - 1, 0)]
    body = dunning(level=level, previous_reminders=previous)
    body["locale"] = locale
    return body


@pytest.mark.parametrize(
    ("locale", "titles", "phrases", "announcement"),
    [
        (
            "de",
            ("Zahlungserinnerung", "1. Mahnung", "2. Mahnung", "Letzte Mahnung"),
            ("Wir bitten Sie freundlich", "trotz Fälligkeit", "Wir fordern Sie auf", "letztmalig"),
            "Inkassounternehmen",
        ),
        (
            "en",
            ("Payment reminder", "First reminder", "Second reminder", "Final notice"),
            ("We kindly ask you", "although they are due", "We request that", "for the last time"),
            "collection agency",
        ),
    ],
)
def test_wording_rises_with_the_level(
    locale: str, titles: tuple[str, ...], phrases: tuple[str, ...], announcement: str
) -> None:
    texts = [text_of(render_example(level_body(level, locale))) for level in range(4)]
    for level, text in enumerate(texts):
        assert text.split("\n").count(titles[level]) >= 1, (level, titles[level])
        one_line = flowing(text)
        for other, phrase in enumerate(phrases):
            assert (phrase in one_line) is (other == level), (level, phrase)
        assert (announcement in text) is (level == 3), level


def test_collection_notice_prints_agency_and_claims() -> None:
    text = text_of(render_example(example("collection_notice")))
    assert_contains(
        text,
        (
            "Inkassounternehmen",
            "Rheinische Inkasso GmbH",
            "Domstraße 1, 50668 Köln",
            "+49 221 98765-0",
            "RI-88231",
            "20.10.2026 und 23.11.2026",
            "91,07",
            "15,14",
            "68 Tage zu 10,27 %",
            "Verzugszinsen bis 23.11.2026 106,21 €",
            "Gesamtforderung 6.246,21 €",
        ),
    )
    assert "10.12.2026" not in text  # the reminder dated after the hand-off is not listed
    body = example("collection_notice")
    body["locale"] = "en"
    assert_contains(
        text_of(render_example(body)),
        ("collection agency", "20 Oct 2026 and 23 Nov 2026", "€106.21", "Total claim €6,246.21", "RI-88231"),
    )


@pytest.mark.parametrize("name", ["dunning_letter", "collection_notice"])
@pytest.mark.parametrize("variant", ["print", "email", "archive"])
def test_every_variant_renders(name: str, variant: Variant) -> None:
    pdf = render_example(example(name), variant)
    assert len(reader_of(pdf).pages) == 1
    if variant == "archive":
        assert declares_pdf_a_3b(pdf)


@pytest.mark.parametrize("name", ["dunning_letter", "collection_notice"])
def test_only_the_address_prints_inside_the_window(name: str) -> None:
    body = example(name)
    pdf = render_example(body, "print")
    assert_only_address_in_window(
        pdf, postal_address(body["recipient"]), return_line_of(body["data"]["seller"])
    )


def test_a_letter_without_interest_fees_or_iban_renders_cleanly() -> None:
    body = dunning(level=0, previous_reminders=[], interest="none", fees=[])
    for key in ("iban", "bic", "bank"):
        del body["data"]["seller"][key]
    text = text_of(render_example(body))
    assert "Zahlungserinnerung" in text
    assert "Gesamtbetrag 6.140,00 €" in text
    for absent in ("Zinsen", "Verwendungszweck", "none", "Scannen"):
        assert absent not in text, absent


def test_a_consumer_is_charged_base_rate_plus_five_points() -> None:
    # 4,760.00 × 6.27 × 68 / 36,500 = 55.60 and 1,380.00 × 6.27 × 39 / 36,500 = 337,467.40 / 36,500
    # = 9.2456… → 9.25; total 6,140.00 + 55.60 + 9.25 + 2.50 = 6,207.35.
    body = dunning(fees=[{"description": "Mahnkosten", "amount": "2.50"}])
    body["recipient"]["kind"] = "consumer"
    assert_contains(
        flowing(text_of(render_example(body))),
        (
            "68 Tage zu 6,27 %",
            "55,60",
            "9,25",
            "Verzugszinsen bis 23.11.2026 64,85 €",
            "Gesamtbetrag 6.207,35 €",
            "§ 288 Abs. 1 BGB",
            "5 Prozentpunkten",
        ),
    )


def test_the_payment_reference_lists_all_invoices_or_none() -> None:
    assert payment_reference("MA-1", ["RE-1", "RE-2"]) == "MA-1 RE-1 RE-2"
    many = [f"RE-2026-{n:06d}" for n in range(12)]
    assert payment_reference("MA-1", many) == "MA-1"
