"""The shipped invoice template: content, pages, fonts and the DIN 5008 geometry of each variant."""

from __future__ import annotations

import io
import json
import re
from functools import cache
from typing import Any

import pytest
import typst
from pypdf import PdfReader

from postroom.documents.catalogue import document_type
from postroom.renderer.engine import Variant
from postroom.settings import PROJECT_ROOT
from tests.conftest import example
from tests.pdf_checks import (
    MM,
    PAGE_HEIGHT,
    WINDOW,
    assert_only_address_in_window,
    declares_pdf_a_3b,
    font_names,
    page_texts,
    postal_address,
    reader_of,
    render_example,
    return_line_of,
    text_fragments,
    text_of,
    unembedded_fonts,
)

FOLD_MARKS_MM = (105, 148.5, 210)


def render(body: dict[str, Any], variant: Variant = "email") -> PdfReader:
    return reader_of(render_example(body, variant))


def test_invoice_has_the_statutory_content_on_one_page() -> None:
    reader = render(example("invoice"))
    assert len(reader.pages) == 1
    text = text_of(reader)
    for expected in (
        "Rechnung RE-2026-000123",
        "Muster Immobilien GmbH",
        "Hohenzollernring 12",
        "Erika Mustermann",
        "Heidestraße 17",
        "51147 Köln",
        "DE999999995",  # supplier VAT ID
        "215/5701/1234",  # tax number
        "20.11.2026",  # issue date
        "15.11.2026",  # date of supply
        "Maklercourtage Kaufvertrag Eigentumswohnung",
        "11.970,00",
        "12.150,00",  # net
        "19 % USt. auf 12.150,00",  # rate and base
        "2.308,50",  # tax
        "14.458,50",  # gross
        "Amtsgericht Köln, HRB 12345",
        "Dr. Anna Beispiel",  # managing directors (§35a GmbHG)
        "Jonas Muster",
        "DE89 3704 0044 0532 0130 00",
        "§ 286 Abs. 3 BGB",
        "Seite 1 von 1",
    ):
        assert expected in text, expected


def test_reference_invoice_flows_onto_two_pages() -> None:
    first, second = page_texts(render_example(example("reference_invoice")))
    assert "Seite 1 von 2" in first
    assert "Seite 2 von 2" in second
    assert "Rechnung RE-2026-000124" in second  # running header
    assert "Objekt 40" in second
    assert "110.182,88" in second
    assert "19 % USt. auf 83.925,00" in second
    assert "7 % USt. auf 9.637,50" in second
    assert "04011000-12345-34" in first  # buyer reference BT-10
    assert "DE987654328" in first  # buyer VAT ID


def test_english_invoice() -> None:
    body = example("invoice")
    body["locale"] = "en"
    text = text_of(render(body))
    for expected in ("Invoice RE-2026-000123", "€14,458.50", "Page 1 of 1", "plus 19% VAT on €12,150.00"):
        assert expected in text, expected


def test_every_font_is_embedded() -> None:
    pdf = render_example(example("reference_invoice"))
    assert not unembedded_fonts(pdf)
    assert all("Inter" in name for name in font_names(pdf))


def translations(reader: PdfReader) -> set[tuple[float, float]]:
    data = reader.pages[0].get_contents().get_data().decode("latin-1")  # type: ignore[union-attr]
    return {
        (round(float(x), 1), round(float(y), 1))
        for x, y in re.findall(r"1 0 0 -1 ([\d.]+) ([\d.]+) cm", data)
    }


def test_every_variant_is_the_archive_rendering_without_fold_marks() -> None:
    """What is posted or mailed is what is archived; the print file adds the marks on paper."""
    body = example("invoice")
    assert render_example(body, "print") == render_example(body, "email") == render_example(body, "archive")
    marks = {(round(4 * MM, 1), round(PAGE_HEIGHT - y * MM, 1)) for y in FOLD_MARKS_MM}
    assert not marks & translations(render(body, "print"))


@pytest.mark.parametrize("name", ["invoice", "reference_invoice"])
def test_only_the_address_prints_inside_the_window(name: str) -> None:
    body = example(name)
    pdf = render_example(body, "print")
    assert_only_address_in_window(
        pdf, postal_address(body["recipient"]), return_line_of(body["data"]["seller"])
    )


def test_archive_variant_declares_pdf_a_3b() -> None:
    assert declares_pdf_a_3b(render_example(example("invoice"), "archive"))


@cache
def compiler() -> typst.Compiler:
    """The invoice compiled the way production does it, for contexts the request schema would not produce."""
    root = PROJECT_ROOT / "templates"
    return typst.Compiler(
        input=str(root / "invoice" / "typst" / "main.typ"),
        root=str(root),
        font_paths=[str(root / "fonts")],
        ignore_system_fonts=True,
    )


def compile_context(context: dict[str, Any], variant: Variant) -> PdfReader:
    standards: list[str] = ["a-3b"] if variant == "archive" else []
    pdf = compiler().compile(
        sys_inputs={"context": json.dumps({**context, "variant": variant})},
        pdf_standards=standards,  # type: ignore[arg-type]
    )
    assert isinstance(pdf, bytes)
    return PdfReader(io.BytesIO(pdf))


@pytest.mark.parametrize("variant", ["print", "archive"])
def test_optional_values_may_all_be_none(variant: Variant) -> None:
    body = example("invoice")
    doc_type = document_type(body["type"])
    context = doc_type.context(doc_type.parse(body))
    for key in (
        "due_date",
        "order_reference",
        "buyer_reference",
        "payment_terms",
        "default_notice",
        "note",
        "tax_exemption_reason",
        "currency",
    ):
        context[key] = None
    for key in (
        "return_address",
        "registered_office",
        "vat_id",
        "tax_number",
        "register",
        "managing_directors",
        "iban",
        "bic",
        "bank",
        "email",
        "phone",
    ):
        context["seller"][key] = None
    for key in ("customer_number", "vat_id", "kind"):
        context["recipient"][key] = None
    context["taxes"] = []
    context["lines"][0].update(unit=None, tax_rate=None)
    reader = compile_context(context, variant)
    assert len(reader.pages) == 1
    text = text_of(reader)
    assert "Rechnung RE-2026-000123" in text
    assert "14.458,50" in text
    assert "none" not in text.lower()
    assert "Verwendungszweck" not in text  # no bank block without an IBAN
    for label in ("USt-IdNr.", "Steuernummer", "Sitz:"):
        assert label not in text, label


def test_a_long_address_line_never_pushes_the_city_out_of_the_window() -> None:
    body = example("reference_invoice")
    body["recipient"]["name"] = "Schmidt & Söhne Bauträger und Projektentwicklungsgesellschaft mbH & Co. KG"
    body["recipient"]["country"] = "AT"
    fragments = text_fragments(render_example(body, "print"))
    lines = {text: y / MM for text, x, y in fragments if x < WINDOW[1]}
    window = " ".join(line for line, y in lines.items() if 45 < y < 90)
    assert all(word in window for word in body["recipient"]["name"].split())
    assert 62.7 < lines["80331 München"] < 90
    assert any(line.isupper() and 62.7 < y < 90 for line, y in lines.items())  # the country line
