from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from postroom.documents.catalogue import CATALOGUE, document_type
from postroom.documents.types.invoice import InvoiceRequest
from tests.conftest import example


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        InvoiceRequest.model_validate(body)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize("name", ["invoice", "reference_invoice"])
def test_examples_validate_unchanged(name: str) -> None:
    request = document_type("invoice").parse(example(name))
    assert request.number.startswith("RE-2026-")


def test_invoice_totals_are_computed() -> None:
    request = InvoiceRequest.model_validate(example("invoice"))
    totals = request.data.totals()
    assert (totals.net, totals.tax, totals.gross) == (
        Decimal("12150.00"),
        Decimal("2308.50"),
        Decimal("14458.50"),
    )


def test_reference_invoice_has_two_rates() -> None:
    totals = InvoiceRequest.model_validate(example("reference_invoice")).data.totals()
    assert {str(group.rate) for group in totals.tax_groups} == {"19", "7"}


def test_missing_number_names_the_field() -> None:
    body = example("invoice")
    del body["data"]["number"]
    assert "data.number" in errors_of(body)


@pytest.mark.parametrize("bad", ["12,50", "1e3", "12.50505", "", " ", "NaN", "abc", "1.234.56"])
def test_malformed_amount_names_the_field(bad: str) -> None:
    body = example("invoice")
    body["data"]["lines"][1]["unit_price"] = bad
    errors = errors_of(body)
    assert "data.lines.1.unit_price" in errors


def test_json_numbers_are_refused_for_amounts() -> None:
    body = example("invoice")
    body["data"]["lines"][0]["unit_price"] = 11970.0
    assert "decimal string" in errors_of(body)["data.lines.0.unit_price"]


def test_unknown_fields_are_refused_not_dropped() -> None:
    body = example("invoice")
    body["data"]["total"] = "1.00"
    assert "data.total" in errors_of(body)


def test_due_date_before_issue_date() -> None:
    body = example("invoice")
    body["data"]["due_date"] = "2026-11-01"
    assert "due_date" in " ".join(errors_of(body).values())


def test_seller_needs_vat_id_or_tax_number() -> None:
    body = example("invoice")
    del body["data"]["seller"]["vat_id"]
    del body["data"]["seller"]["tax_number"]
    assert "§14(4) Nr. 2" in " ".join(errors_of(body).values())


def test_identifiers_are_checked() -> None:
    body = example("invoice")
    body["data"]["seller"]["vat_id"] = "DE999999990"
    body["data"]["seller"]["iban"] = "DE89370400440532013001"
    body["recipient"]["postcode"] = "5114"
    errors = errors_of(body)
    assert {"data.seller.vat_id", "data.seller.iban", "recipient"} <= set(errors)


def test_zero_rate_needs_exemption_reason() -> None:
    body = example("invoice")
    body["data"]["lines"][1]["tax_rate"] = "0"
    assert "tax_exemption_reason" in " ".join(errors_of(body).values())
    body["data"]["tax_exemption_reason"] = "Steuerfreie Leistung nach § 4 Nr. 8 UStG"
    InvoiceRequest.model_validate(body)


def test_email_channel_needs_an_address() -> None:
    body = example("invoice")
    del body["recipient"]["email"]
    assert "recipient.email" in " ".join(errors_of(body).values())


def test_dates_must_be_iso_strings() -> None:
    body = example("invoice")
    body["data"]["issue_date"] = 1763596800
    assert "data.issue_date" in errors_of(body)
    body["data"]["issue_date"] = "20.11.2026"
    assert "data.issue_date" in errors_of(body)


def test_negative_invoice_is_a_credit_note() -> None:
    body = copy.deepcopy(example("invoice"))
    for line in body["data"]["lines"]:
        line["unit_price"] = "-" + line["unit_price"]
    assert "credit_note" in " ".join(errors_of(body).values())


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_type_publishes_a_json_schema_without_json_numbers(name: str) -> None:
    """Amounts are decimal strings: no property of any request schema is a JSON (floating-point) number."""
    schema = CATALOGUE[name].request_model.model_json_schema()
    assert schema["properties"]["type"]["const"] == name
    assert "data" in schema["properties"]

    def numbers(node: object, path: str) -> list[str]:
        if isinstance(node, dict):
            found = [path] if node.get("type") == "number" else []
            return found + [hit for key, value in node.items() for hit in numbers(value, f"{path}/{key}")]
        if isinstance(node, list):
            return [hit for index, item in enumerate(node) for hit in numbers(item, f"{path}/{index}")]
        return []

    assert numbers(schema, "") == []


def test_validation_errors_never_quote_the_input() -> None:
    body = example("invoice")
    body["recipient"]["postcode"] = "5114"
    body["recipient"]["email"] = "erika.mustermann(at)example.org"
    with pytest.raises(ValidationError) as caught:
        InvoiceRequest.model_validate(body)
    assert "Mustermann" not in str(caught.value)
    assert "Heidestraße" not in str(caught.value)
