"""Account statement, payment plan and follow-up notice: arithmetic, validation and rendered PDFs.

The PDFs are rendered with the production renderer over the shipped templates; a template folder
another type has half-finished cannot break these tests, as the template store only fails the
broken template itself when it is asked for.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from postroom.documents.doctype import DocumentType
from postroom.documents.schedule import add_months, monthly_dates
from postroom.documents.types import account_statement, followup_notice, payment_plan
from postroom.documents.types.account_statement import AccountStatementRequest, compute_balances
from postroom.documents.types.payment_plan import PaymentPlanRequest, split_installments
from postroom.renderer.engine import Variant
from tests.conftest import example
from tests.pdf_checks import (
    assert_only_address_in_window,
    declares_pdf_a_3b,
    flowing,
    page_texts,
    postal_address,
    reader_of,
    render_example,
    return_line_of,
    text_of,
)

TYPES: dict[str, DocumentType] = {
    "account_statement": account_statement.DOCUMENT_TYPE,
    "payment_plan": payment_plan.DOCUMENT_TYPE,
    "followup_notice": followup_notice.DOCUMENT_TYPE,
}
VARIANTS: tuple[Variant, ...] = ("print", "email", "archive")


def errors_of(doc_type: DocumentType, body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        doc_type.parse(body)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


def messages(errors: dict[str, str]) -> str:
    return " ".join(errors.values())


# --- catalogue and examples ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(TYPES))
def test_examples_validate_unchanged(name: str) -> None:
    request = TYPES[name].parse(example(name))
    assert request.data.number
    assert TYPES[name].retention == "letter"
    assert TYPES[name].template == name


def test_the_catalogue_discovers_the_three_types() -> None:
    from postroom.documents.catalogue import CATALOGUE

    for name, doc_type in TYPES.items():
        assert CATALOGUE[name] is doc_type


# --- account statement ----------------------------------------------------------------------


def statement(body: dict[str, Any] | None = None) -> AccountStatementRequest:
    request = TYPES["account_statement"].parse(body or example("account_statement"))
    assert isinstance(request, AccountStatementRequest)
    return request


def test_running_and_closing_balance_of_the_example() -> None:
    balances = statement().data.balances()
    opening = Decimal("4760.00")
    after_invoice = opening + Decimal("2380.00")
    after_payment = after_invoice - Decimal("1000.00")
    after_fee = after_payment + Decimal("2.50")
    assert (after_invoice, after_payment, after_fee) == (
        Decimal("7140.00"),
        Decimal("6140.00"),
        Decimal("6142.50"),
    )
    assert balances.opening == opening
    assert [line.balance for line in balances.lines] == [after_invoice, after_payment, after_fee]
    assert balances.closing == Decimal("6142.50")
    assert balances.debits == Decimal("2382.50")
    assert balances.credits == Decimal("-1000.00")
    assert balances.opening + balances.debits + balances.credits == balances.closing
    assert balances.side == "ours"


@pytest.mark.parametrize(
    ("opening", "side"), [("4760.00", "ours"), ("-1382.50", "settled"), ("-7000.00", "yours")]
)
def test_the_sign_decides_whose_favour(opening: str, side: str) -> None:
    body = example("account_statement")
    body["data"]["opening_balance"] = opening
    assert statement(body).data.balances().side == side


def test_entries_run_in_date_order_ties_kept_in_given_order() -> None:
    body = example("account_statement")
    entries = body["data"]["entries"]
    body["data"]["entries"] = [entries[2], entries[0], {**entries[1], "date": "2026-10-05"}]
    lines = statement(body).data.balances().lines
    assert [line.entry.reference for line in lines] == [
        "RE-2026-000097",
        "Überweisung 2026-10-28",
        "MA-2026-000290",
    ]
    assert lines[-1].balance == Decimal("6142.50")


def test_balances_are_never_taken_from_the_input() -> None:
    body = example("account_statement")
    body["data"]["closing_balance"] = "1.00"
    assert "data.closing_balance" in errors_of(TYPES["account_statement"], body)


def test_no_entries_closes_at_the_opening_balance() -> None:
    assert compute_balances(Decimal("12.5"), []).closing == Decimal("12.50")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"entries": [{"date": "2026-09-30", "kind": "fee", "amount": "1.00"}]}, "entries.0.date"),
        ({"period": {"start": "2026-10-01", "end": "2026-12-31"}}, "period.end"),
        ({"period": {"start": "2026-11-01", "end": "2026-10-01"}}, "period.end"),
        ({"confirm_by": None}, "confirm_by"),
        ({"confirm_by": "2026-11-01"}, "confirm_by"),
        ({"request_confirmation": False}, "confirm_by"),
    ],
)
def test_statement_validation_names_the_field(change: dict[str, Any], field: str) -> None:
    body = example("account_statement")
    body["data"].update(change)
    assert field in messages(errors_of(TYPES["account_statement"], body))


def test_unknown_entry_kind_names_the_field() -> None:
    body = example("account_statement")
    body["data"]["entries"][1]["kind"] = "gift"
    assert "data.entries.1.kind" in errors_of(TYPES["account_statement"], body)


def test_german_statement_pdf() -> None:
    pdf = render_example(example("account_statement"))
    pages = page_texts(pdf)
    assert len(pages) == 2  # the letter and the confirmation slip
    text = flowing(text_of(pdf))
    for expected in (
        "Kontoauszug KA-2026-11-200871",
        "01.10.2026 – 30.11.2026",
        "4.760,00",
        "2.380,00",
        "7.140,00",
        "-1.000,00",
        "6.140,00",
        "6.142,50",
        "Belastungen im Zeitraum 2.382,50 €",
        "Endsaldo zum 30.11.2026 6.142,50 €",
        "Saldo zu unseren Gunsten",
        "Saldenbestätigung",
        "15.12.2026",
        "Einverstanden.",
        "Nicht einverstanden.",
        "Differenz:",
        "Unterschrift",
        "Firmenstempel",
    ):
        assert expected in text, expected
    slip = flowing(pages[1])
    assert "Saldenbestätigung" in slip
    assert "6.142,50 €" in slip
    assert "zu Gunsten der Muster Immobilien GmbH" in slip


def test_english_statement_pdf() -> None:
    body = example("account_statement")
    body["locale"] = "en"
    text = flowing(text_of(render_example(body)))
    for expected in (
        "Statement of account KA-2026-11-200871",
        "4,760.00",
        "7,140.00",
        "6,140.00",
        "Closing balance as of 30 Nov 2026 €6,142.50",
        "Balance in our favour",
        "is in our favour",
        "Balance confirmation",
        "15 Dec 2026",
        "Agreed.",
        "Not agreed.",
        "Difference:",
        "Company stamp",
    ):
        assert expected in text, expected


def test_confirmation_slip_only_when_requested() -> None:
    body = example("account_statement")
    body["data"]["request_confirmation"] = False
    del body["data"]["confirm_by"]
    pdf = render_example(body)
    text = flowing(text_of(pdf))
    assert len(reader_of(pdf).pages) == 1
    assert "Saldenbestätigung" not in text
    assert "Antwort bis" not in text
    assert "6.142,50" in text


@pytest.mark.parametrize(
    ("opening", "locale", "wording"),
    [
        ("-7000.00", "de", "Saldo zu Ihren Gunsten"),
        ("-7000.00", "en", "Balance in your favour"),
        ("-1382.50", "de", "Konto ausgeglichen"),
        ("-1382.50", "en", "Account settled"),
    ],
)
def test_statement_wording_follows_the_sign(opening: str, locale: str, wording: str) -> None:
    body = example("account_statement")
    body["locale"] = locale
    body["data"]["opening_balance"] = opening
    text = flowing(text_of(render_example(body)))
    assert wording in text
    assert "unseren Gunsten" not in text
    assert "in our favour" not in text
    if opening == "-7000.00":
        assert ("-5.617,50" if locale == "de" else "-€5,617.50") in text  # the closing balance


# --- payment plan ---------------------------------------------------------------------------


def plan(body: dict[str, Any] | None = None) -> PaymentPlanRequest:
    request = TYPES["payment_plan"].parse(body or example("payment_plan"))
    assert isinstance(request, PaymentPlanRequest)
    return request


def test_schedule_of_the_example() -> None:
    schedule = plan().data.schedule()
    claims_total = Decimal("3570.00") + Decimal("41.18")
    financed = claims_total - Decimal("500.00")
    assert (schedule.claims_total, schedule.down_payment, schedule.financed) == (
        Decimal("3611.18"),
        Decimal("500.00"),
        financed,
    )
    assert financed == Decimal("3111.18")
    amounts = [item.amount for item in schedule.installments]
    assert len(amounts) == 6
    assert amounts[:5] == [Decimal("518.53")] * 5
    assert amounts[5] == financed - 5 * Decimal("518.53")
    assert sum(amounts, Decimal(0)) == financed
    assert schedule.total == financed
    assert [item.due_date for item in schedule.installments] == [
        date(2027, month, 1) for month in range(1, 7)
    ]
    assert [item.remaining for item in schedule.installments][-1] == Decimal("0.00")
    assert schedule.installments[0].remaining == Decimal("2592.65")


@pytest.mark.parametrize(
    ("financed", "count", "expected"),
    [
        ("100.00", 3, ["33.33", "33.33", "33.34"]),
        ("100.00", 6, ["16.67"] * 5 + ["16.65"]),
        ("0.05", 2, ["0.03", "0.02"]),  # 0.025 rounds half-up
        ("10.00", 1, ["10.00"]),
        ("1000.00", 7, ["142.86"] * 6 + ["142.84"]),
    ],
)
def test_the_last_instalment_absorbs_the_rounding(financed: str, count: int, expected: list[str]) -> None:
    amounts = split_installments(Decimal(financed), count)
    assert amounts == [Decimal(amount) for amount in expected]
    assert sum(amounts, Decimal(0)) == Decimal(financed)


@pytest.mark.parametrize("financed", ["3111.18", "0.99", "12345.67", "100000.01"])
def test_a_schedule_always_sums_exactly(financed: str) -> None:
    amount = Decimal(financed)
    for count in range(1, min(121, int(amount * 100) + 1)):
        parts = split_installments(amount, count)
        assert sum(parts, Decimal(0)) == amount, count
        assert len(set(parts[:-1])) <= 1, count


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),  # over the year end
        (date(2026, 11, 15), 14, date(2028, 1, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 8, 31), -6, date(2027, 2, 28)),
        (date(2027, 1, 1), 0, date(2027, 1, 1)),
    ],
)
def test_add_months_clamps_to_the_end_of_month(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_due_dates_are_counted_from_the_first_and_never_drift() -> None:
    assert monthly_dates(date(2027, 1, 31), 4) == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
    ]
    assert monthly_dates(date(2026, 11, 30), 3, interval_months=3) == [
        date(2026, 11, 30),
        date(2027, 2, 28),
        date(2027, 5, 30),
    ]
    assert monthly_dates(date(2027, 1, 1), 0) == []
    with pytest.raises(ValueError, match="interval_months"):
        monthly_dates(date(2027, 1, 1), 2, interval_months=0)
    with pytest.raises(ValueError, match="calendar range"):
        add_months(date(9999, 12, 1), 1)


def test_plan_dates_follow_interval_and_clamping() -> None:
    body = example("payment_plan")
    body["data"].update(first_due_date="2027-01-31", interval_months=1, installments=3)
    dates = [item.due_date for item in plan(body).data.schedule().installments]
    assert dates == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"installments": 0}, "data.installments"),
        ({"installments": 121}, "data.installments"),
        ({"interval_months": 0}, "data.interval_months"),
        ({"claims": []}, "data.claims"),
        ({"claims": [{"reference": "RE-1", "amount": "-5.00"}]}, "data.claims.0.amount"),
        ({"down_payment": "-1.00"}, "data.down_payment"),
        ({"down_payment": "3570,00"}, "data.down_payment"),
    ],
)
def test_plan_field_errors_are_located(change: dict[str, Any], field: str) -> None:
    body = example("payment_plan")
    body["data"].update(change)
    assert field in errors_of(TYPES["payment_plan"], body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"down_payment": "3611.19"}, "down_payment"),
        ({"down_payment": "3611.18"}, "down_payment"),
        ({"first_due_date": "2026-11-22"}, "first_due_date"),
        ({"down_payment_due_date": "2027-02-01"}, "down_payment_due_date"),
        ({"down_payment_due_date": "2026-11-01"}, "down_payment_due_date"),
        ({"down_payment": "0.00", "down_payment_due_date": "2026-12-01"}, "down_payment_due_date"),
        ({"claims": [{"reference": "RE-1", "amount": "0.05"}], "down_payment": "0.00"}, "installments"),
    ],
)
def test_plan_rule_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    body = example("payment_plan")
    body["data"].update(change)
    text = messages(errors_of(TYPES["payment_plan"], body))
    assert field in text
    assert "Mustermann" not in text
    assert "3611" not in text  # no amounts from the request in the message


def test_first_due_date_may_be_the_issue_date() -> None:
    body = example("payment_plan")
    body["data"]["first_due_date"] = body["data"]["issue_date"]
    assert plan(body).data.schedule().installments[0].due_date == date(2026, 11, 23)


def test_german_payment_plan_pdf() -> None:
    pdf = render_example(example("payment_plan"))
    assert len(reader_of(pdf).pages) == 1
    text = flowing(text_of(pdf))
    for expected in (
        "Ratenvereinbarung RV-2026-000014",
        "RE-2026-000102 3.570,00 €",
        "41,18 €",
        "Gesamtforderung 3.611,18 €",
        "abzüglich Anzahlung 500,00 €",
        "In Raten zu zahlen 3.111,18 €",
        "6 monatlichen Raten",
        "Jede Rate beträgt 518,53 €",
        "01.01.2027",
        "01.06.2027",
        "2.592,65 €",
        "Summe der Raten 3.111,18 €",
        "Gerät der Schuldner mit zwei aufeinanderfolgenden Raten in Verzug",
        "Ort, Datum, Unterschrift",
        "Erika Mustermann (Schuldner/in)",
    ):
        assert expected in text, expected
    assert text.count("518,53 €") >= 6


def test_english_payment_plan_pdf() -> None:
    body = example("payment_plan")
    body["locale"] = "en"
    text = flowing(text_of(render_example(body)))
    for expected in (
        "Payment plan RV-2026-000014",
        "Total claims €3,611.18",
        "less down payment €500.00",
        "Payable in instalments €3,111.18",
        "6 monthly instalments",
        "Each instalment is €518.53",
        "1 Jun 2027",
        "Total of instalments €3,111.18",
        "Place, date, signature",
    ):
        assert expected in text, expected


def test_unequal_last_instalment_and_no_signature() -> None:
    body = example("payment_plan")
    body["data"].update(
        installments=7,
        down_payment="0.00",
        interval_months=3,
        first_due_date="2027-01-31",
        signature_required=False,
    )
    text = flowing(text_of(render_example(body)))
    # 3611.18 / 7 = 515.882… → 515.88; the last is 3611.18 - 6 × 515.88 = 515.90
    assert "Die ersten 6 Raten betragen je 515,88 €, die letzte Rate 515,90 €" in text
    assert "7 vierteljährlichen Raten" in text
    assert "30.04.2027" in text  # 31 Jan + 3 months, clamped
    assert "31.07.2028" in text  # back to the 31st
    assert "Unterschrift" not in text
    assert "Anzahlung" not in text


# --- follow-up notice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipient": {"kind": "business"}}, "recipient.kind"),
        (
            {"recipient": {"street": "Hohenzollernring 12", "postcode": "50672", "city": "Köln"}},
            "recipient.street",
        ),
        ({"channels": ["archive"]}, "email"),
        ({"data": {"due_date": "2026-11-22"}}, "due_date"),
    ],
)
def test_followup_rules_name_the_field(change: dict[str, Any], field: str) -> None:
    body = example("followup_notice")
    for key, value in change.items():
        if isinstance(value, dict):
            body[key].update(value)
        else:
            body[key] = value
    text = messages(errors_of(TYPES["followup_notice"], body))
    assert field in text
    assert "forderungen@" not in text


def test_followup_is_never_posted() -> None:
    body = example("followup_notice")
    body["channels"] = ["email", "print"]
    errors = errors_of(TYPES["followup_notice"], body)
    assert "channels" in messages(errors)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"options": []}, "data.options"),
        ({"options": ["Warten", "warten"]}, "data.options"),
        ({"context": {"dunning_level": 4}}, "data.context.dunning_level"),
        ({"context": {"colour": "red"}}, "data.context.colour"),
        ({"subject": ""}, "data.subject"),
    ],
)
def test_followup_field_errors_are_located(change: dict[str, Any], field: str) -> None:
    body = example("followup_notice")
    body["data"].update(change)
    assert field in errors_of(TYPES["followup_notice"], body)


def test_german_followup_pdf() -> None:
    pdf = render_example(example("followup_notice"))
    assert len(reader_of(pdf).pages) == 1
    text = flowing(text_of(pdf))
    for expected in (
        "Wiedervorlage WV-2026-001203",
        "Team Forderungsmanagement",
        "forderungen@muster-immobilien.example",
        "forderungsmanagement",
        "Zahlungseingang RE-2026-000097 prüfen",
        "30.11.2026",
        "23.11.2026",
        "AUF-2026-4730",
        "RE-2026-000097",
        "2 (2. Mahnung)",
        "Schreiben erstellen und versenden",
        "14 Tage auf Zahlungseingang warten",
        "Auf Klärung durch Vertriebspartner warten",
        "An Inkasso übergeben",
        "Vorgang schließen",
        "Nur für den internen Gebrauch",
    ):
        assert expected in text, expected
    assert "Hohenzollernring 12 · 50672 Köln" not in text  # no postal return line


def test_english_followup_pdf() -> None:
    body = example("followup_notice")
    body["locale"] = "en"
    text = flowing(text_of(render_example(body)))
    for expected in (
        "Follow-up WV-2026-001203",
        "30 Nov 2026",
        "2 (2nd reminder)",
        "Please decide how to proceed",
    ):
        assert expected in text, expected


# --- every variant, and the window of the postal types ----------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", list(TYPES))
def test_every_example_renders_in_every_variant(name: str, variant: Variant) -> None:
    pdf = render_example(example(name), variant)
    assert len(reader_of(pdf).pages) >= 1
    assert "none" not in flowing(text_of(pdf)).lower()
    if variant == "archive":
        assert declares_pdf_a_3b(pdf)


@pytest.mark.parametrize("name", ["account_statement", "payment_plan"])
def test_only_the_address_prints_inside_the_window(name: str) -> None:
    body = example(name)
    pdf = render_example(body, "print")
    assert_only_address_in_window(
        pdf, postal_address(body["recipient"]), return_line_of(body["data"]["seller"])
    )
