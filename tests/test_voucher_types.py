"""Credit note (Stornorechnung, 381), corrected invoice (384) and commission statement (Gutschrift, 389).

Figures are checked against values worked out by hand below, never against the code's own sums.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from postroom.documents.catalogue import document_type
from postroom.documents.request import DocumentRequest
from postroom.documents.types.commission_statement import (
    CommissionStatementData,
    CommissionStatementRequest,
    commission_statement_einvoice,
)
from postroom.documents.types.credit_note import CreditNoteRequest, credit_note_einvoice
from postroom.documents.types.invoice import InvoiceRequest, invoice_einvoice
from postroom.einvoice.model import EInvoice
from postroom.renderer.engine import Variant
from tests.conftest import EXAMPLES, example
from tests.pdf_checks import (
    assert_only_address_in_window,
    declares_pdf_a_3b,
    postal_address,
    reader_of,
    render_example,
    return_line_of,
    text_of,
)

D = Decimal


# --- helpers -------------------------------------------------------------------------------------


def parse(body: dict[str, Any]) -> DocumentRequest:
    return document_type(body["type"]).parse(body)


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    """Validation errors as ``{dotted location: message}``."""
    with pytest.raises(ValidationError) as caught:
        parse(body)
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in caught.value.errors()}


def all_messages(body: dict[str, Any]) -> str:
    return " | ".join(f"{loc}: {msg}" for loc, msg in errors_of(body).items())


def english(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["locale"] = "en"
    return body


def small_business(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["data"]["agent_small_business"] = True
    for commission in body["data"]["commissions"]:
        del commission["tax_rate"]
    return body


def corrected_invoice() -> dict[str, Any]:
    body = example("invoice")
    body["data"]["corrects"] = {"number": "RE-2026-000100", "issue_date": "2026-11-10"}
    return body


def einvoice(body: dict[str, Any]) -> EInvoice:
    doc_type = document_type(body["type"])
    assert doc_type.einvoice is not None
    return doc_type.einvoice(doc_type.parse(body))


# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["credit_note", "commission_statement"])
def test_examples_validate_unchanged(name: str) -> None:
    raw = (EXAMPLES / f"{name}.json").read_bytes()
    request = parse(example(name))
    assert request.type == name
    assert (EXAMPLES / f"{name}.json").read_bytes() == raw
    doc_type = document_type(name)
    assert doc_type.retention == "voucher"
    assert doc_type.template == name


def test_titles_never_call_a_cancellation_gutschrift() -> None:
    assert document_type("credit_note").title("de") == "Stornorechnung"
    assert document_type("credit_note").title("en") == "Credit note"
    assert "Gutschrift" in document_type("commission_statement").title("de")


# --- credit note ---------------------------------------------------------------------------------


def test_credit_note_totals_are_computed() -> None:
    request = CreditNoteRequest.model_validate(example("credit_note"))
    totals = request.data.totals()
    # 11,970.00 + 180.00 = 12,150.00 net; 19 % of it = 2,308.50; gross 14,458.50.
    assert totals.line_totals == (D("11970.00"), D("180.00"))
    assert (totals.net, totals.tax, totals.gross) == (D("12150.00"), D("2308.50"), D("14458.50"))


def test_credit_note_needs_the_cancelled_invoice() -> None:
    body = example("credit_note")
    del body["data"]["cancels"]
    assert "data.cancels" in errors_of(body)
    body = example("credit_note")
    del body["data"]["cancels"]["issue_date"]
    assert "data.cancels.issue_date" in errors_of(body)


def test_credit_note_cross_field_checks() -> None:
    body = example("credit_note")
    body["data"]["cancels"]["issue_date"] = "2026-12-01"
    assert "cancels.issue_date" in all_messages(body)
    body = example("credit_note")
    body["data"]["cancels"]["number"] = body["data"]["number"]
    assert "cancels.number" in all_messages(body)
    body = example("credit_note")
    for line in body["data"]["lines"]:
        line["unit_price"] = "-" + line["unit_price"]
    assert "positive" in all_messages(body)
    body = example("credit_note")
    body["data"]["total"] = "14458.50"
    assert "data.total" in errors_of(body)
    body = example("credit_note")
    body["data"]["lines"][0]["unit_price"] = 11970.0
    assert "decimal string" in errors_of(body)["data.lines.0.unit_price"]


def test_credit_note_einvoice_is_381_with_the_preceding_invoice() -> None:
    invoice = einvoice(example("credit_note"))
    assert invoice.type_code == "381"
    assert invoice.preceding_invoice == ("RE-2026-000123", date(2026, 11, 20))
    assert invoice.seller.name == "Muster Immobilien GmbH"
    assert invoice.buyer.name == "Erika Mustermann"
    assert (invoice.tax_basis, invoice.tax_total, invoice.grand_total) == (
        D("12150.00"),
        D("2308.50"),
        D("14458.50"),
    )
    assert invoice.due_payable == D("14458.50")
    assert all(line.net_amount > 0 for line in invoice.lines)
    assert credit_note_einvoice(CreditNoteRequest.model_validate(example("credit_note"))) == invoice


def test_credit_note_pdf_german() -> None:
    text = text_of(render_example(example("credit_note")))
    for expected in (
        "Stornorechnung GS-2026-000017",
        "Storno der Rechnung Nr. RE-2026-000123 vom 20.11.2026",
        "Kaufpreis im Kaufvertrag korrigiert",
        "24.11.2026",
        "11.970,00",
        "12.150,00 €",
        "19 % USt. auf 12.150,00 €",
        "2.308,50 €",
        "Stornobetrag",
        "14.458,50 €",
        "DE999999995",
        "215/5701/1234",
        "Amtsgericht Köln, HRB 12345",
        "Seite 1 von 1",
    ):
        assert expected in text, expected
    assert "Gutschrift" not in text  # self-billing only (§14(2) S. 5 UStG)


def test_credit_note_pdf_english() -> None:
    text = text_of(render_example(english(example("credit_note"))))
    for expected in (
        "Credit note GS-2026-000017",
        "Cancellation of invoice no. RE-2026-000123 of 20 Nov 2026",
        "plus 19% VAT on €12,150.00",
        "€2,308.50",
        "Total credited",
        "€14,458.50",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    assert "Gutschrift" not in text


def test_credit_note_refund_to_a_known_account() -> None:
    body = example("credit_note")
    body["recipient"]["iban"] = "DE93370501981234567890"
    assert "DE93 3705 0198 1234 5678 90" in text_of(render_example(body))
    assert einvoice(body).payee_iban == "DE93370501981234567890"


# --- corrected invoice (384) ---------------------------------------------------------------------


def test_invoice_without_corrects_stays_380() -> None:
    invoice = invoice_einvoice(InvoiceRequest.model_validate(example("invoice")))
    assert invoice.type_code == "380"
    assert invoice.preceding_invoice is None


def test_corrected_invoice_is_384_with_the_preceding_invoice() -> None:
    invoice = einvoice(corrected_invoice())
    assert invoice.type_code == "384"
    assert invoice.preceding_invoice == ("RE-2026-000100", date(2026, 11, 10))
    assert invoice.grand_total == D("14458.50")


def test_corrects_is_checked() -> None:
    body = corrected_invoice()
    body["data"]["corrects"]["issue_date"] = "2026-11-21"
    assert "corrects.issue_date" in all_messages(body)
    body = corrected_invoice()
    body["data"]["corrects"]["number"] = body["data"]["number"]
    assert "corrects.number" in all_messages(body)
    body = corrected_invoice()
    del body["data"]["corrects"]["number"]
    assert "data.corrects.number" in errors_of(body)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de", "Korrektur der Rechnung Nr. RE-2026-000100 vom 10.11.2026"),
        ("en", "Corrects invoice no. RE-2026-000100 of 10 Nov 2026"),
    ],
)
def test_corrected_invoice_names_the_corrected_invoice(locale: str, expected: str) -> None:
    body = corrected_invoice()
    body["locale"] = locale
    assert expected in text_of(render_example(body))


# --- commission statement ------------------------------------------------------------------------

# By hand, from examples/commission_statement.json:
#   AUF-2026-4711: 40 % of 11,970.00 = 4,788.00
#   AUF-2026-4730: 35 % of  8,400.00 = 2,940.00
#   sum of commissions (BT-106)      = 7,728.00
#   discounting: 2.5 % of 2,940.00   =    73.50  (allowance BT-107 at 19 %)
#   taxable amount (BT-109/116)      = 7,728.00 - 73.50 = 7,654.50
#   VAT 19 % of 7,654.50 = 1,454.355 → 1,454.36 (half-up)
#   gross (BT-112)                   = 7,654.50 + 1,454.36 = 9,108.86
#   advance offset (BT-113)          = 1,500.00
#   payout (BT-115)                  = 9,108.86 - 1,500.00 = 7,608.86
COMMISSIONS = (D("4788.00"), D("2940.00"))
LINE_NET = D("7728.00")
DISCOUNT = D("73.50")
NET = D("7654.50")
VAT = D("1454.36")
GROSS = D("9108.86")
ADVANCE = D("1500.00")
PAYOUT = D("7608.86")


def statement(body: dict[str, Any]) -> CommissionStatementData:
    return CommissionStatementRequest.model_validate(body).data


def test_commission_figures_match_the_hand_computation() -> None:
    assert D("11970.00") * D("0.40") == COMMISSIONS[0]
    assert D("8400.00") * D("0.35") == COMMISSIONS[1]
    assert D("2940.00") * D("0.025") == DISCOUNT
    assert NET * D("0.19") == D("1454.355")
    figures = statement(example("commission_statement")).figures()
    totals = figures.totals
    assert totals.line_totals == COMMISSIONS
    assert totals.line_net == LINE_NET
    assert totals.allowances == DISCOUNT
    assert figures.discount == DISCOUNT
    assert figures.discount_basis == COMMISSIONS[1]
    assert [(group.rate, group.net, group.tax) for group in totals.tax_groups] == [(D(19), NET, VAT)]
    assert (totals.net, totals.tax, totals.gross) == (NET, VAT, GROSS)
    assert figures.advances == ADVANCE
    assert figures.payout == PAYOUT


def test_commission_lines_round_half_up_per_line() -> None:
    body = example("commission_statement")
    body["data"]["commissions"][0]["base_amount"] = "10.05"
    body["data"]["commissions"][0]["rate"] = "50"  # 5.025 → 5.03
    body["data"]["advances_offset"] = []
    assert statement(body).figures().totals.line_totals[0] == D("5.03")


def test_small_business_statement_has_no_vat() -> None:
    body = small_business(example("commission_statement"))
    figures = statement(body).figures()
    # No VAT: gross = taxable amount = 7,654.50; payout = 7,654.50 - 1,500.00 = 6,154.50.
    assert figures.totals.tax == D("0.00")
    assert figures.totals.gross == NET
    assert figures.payout == D("6154.50")
    invoice = einvoice(body)
    assert invoice.tax_total == D("0.00")
    assert {line.tax_category for line in invoice.lines} == {"E"}
    assert [(tax.category, tax.rate, tax.basis) for tax in invoice.taxes] == [("E", D(0), NET)]
    assert invoice.taxes[0].exemption_reason == "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet."
    assert invoice.adjustments[0].tax_category == "E"
    assert invoice.due_payable == D("6154.50")
    context = document_type("commission_statement").context(parse(body))
    assert context["taxes"] == []
    text = text_of(render_example(body))
    assert "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet." in text
    assert "USt. auf" not in text
    assert "6.154,50 €" in text
    english_text = text_of(render_example(english(body)))
    assert "In accordance with section 19 of the German VAT Act (UStG), no VAT is charged." in english_text
    assert "Gutschrift" in english_text


def test_small_business_refuses_a_vat_rate() -> None:
    body = small_business(example("commission_statement"))
    body["data"]["commissions"][1]["tax_rate"] = "19"
    assert "commissions.1.tax_rate" in all_messages(body)
    body["data"]["commissions"][1]["tax_rate"] = "0"
    parse(body)


def test_vat_rate_is_required_without_small_business() -> None:
    body = example("commission_statement")
    del body["data"]["commissions"][0]["tax_rate"]
    assert "commissions.0.tax_rate" in all_messages(body)


def test_agent_tax_identifier_is_required() -> None:
    body = example("commission_statement")
    del body["recipient"]["tax_number"]
    message = all_messages(body)
    assert "recipient.tax_number" in message
    assert "recipient.vat_id" in message
    assert "231/123/45678" not in message
    body["recipient"]["vat_id"] = "DE999999995"
    parse(body)


def test_agent_tax_number_is_checked() -> None:
    body = example("commission_statement")
    body["recipient"]["tax_number"] = "12/34"
    message = all_messages(body)
    assert "recipient.tax_number" in message
    assert "12/34" not in message  # messages name fields, never values
    body["recipient"]["tax_number"] = "2315012345678"  # federal 13-digit form
    parse(body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["recipient"].__setitem__("kind", "consumer"), "recipient.kind"),
        (lambda d: d["recipient"].pop("iban"), "recipient.iban"),
        (lambda d: d["recipient"].pop("street"), "recipient.street"),
        (lambda d: d["data"]["discounting"].__setitem__("applies_to", "AUF-0000"), "discounting.applies_to"),
        (lambda d: d["data"]["period"].__setitem__("end", "2026-12-01"), "period.end"),
        (lambda d: d["data"]["period"].__setitem__("start", "2026-12-01"), "period.end"),
        (lambda d: d["data"].__setitem__("payout_date", "2026-11-29"), "payout_date"),
        (lambda d: d["data"]["advances_offset"][0].__setitem__("amount", "9108.87"), "advances_offset"),
        (
            lambda d: d["data"]["commissions"][1].__setitem__("order_reference", "AUF-2026-4711"),
            "order_reference",
        ),
        (lambda d: d["data"]["commissions"][0].__setitem__("rate", "0"), "commissions.0.rate"),
        (lambda d: d["data"]["commissions"][0].__setitem__("base_amount", "-1.00"), "base_amount"),
        (lambda d: d["data"]["commissions"][0].__setitem__("base_amount", 11970), "base_amount"),
        (lambda d: d["data"]["advances_offset"][0].__setitem__("amount", "0"), "advances_offset.0.amount"),
        (lambda d: d["data"].__setitem__("payout", "7608.86"), "data.payout"),
        (lambda d: d["data"].pop("period"), "data.period"),
        (lambda d: d["data"].__setitem__("issue_date", "30.11.2026"), "data.issue_date"),
    ],
)
def test_commission_statement_validation_names_the_field(change: Any, field: str) -> None:
    body = example("commission_statement")
    change(body)
    assert field in all_messages(body)


def test_advances_may_use_up_the_whole_gross_amount() -> None:
    body = example("commission_statement")
    body["data"]["advances_offset"][0]["amount"] = "9108.86"
    del body["recipient"]["iban"]  # nothing to transfer, so no account needed
    assert statement(body).figures().payout == D("0.00")
    text = text_of(render_example(body))
    assert "Nach Verrechnung der Vorschüsse ergibt sich kein Auszahlungsbetrag." in text
    assert "überweisen wir" not in text


def test_statement_without_discount_and_advances() -> None:
    body = example("commission_statement")
    del body["data"]["discounting"]
    body["data"]["advances_offset"] = []
    figures = statement(body).figures()
    # 7,728.00 net; 19 % = 1,468.32; gross = payout = 9,196.32.
    assert (figures.totals.net, figures.totals.tax, figures.totals.gross) == (
        LINE_NET,
        D("1468.32"),
        D("9196.32"),
    )
    assert figures.payout == D("9196.32")
    invoice = einvoice(body)
    assert invoice.adjustments == ()
    assert invoice.prepaid == D("0.00")
    text = text_of(render_example(body))
    assert "9.196,32 €" in text
    assert "Vorschuss" not in text


def test_commission_einvoice_is_389_with_the_agent_as_seller() -> None:
    invoice = commission_statement_einvoice(
        CommissionStatementRequest.model_validate(example("commission_statement"))
    )
    assert invoice.type_code == "389"
    # Roles swap: the agent (the letter's recipient) supplies the service, the broker buys it.
    assert invoice.seller.name == "Lukas Weber"
    assert invoice.seller.tax_number == "231/123/45678"
    assert invoice.seller.city == "Leipzig"
    assert invoice.buyer.name == "Muster Immobilien GmbH"
    assert invoice.buyer.vat_id == "DE999999995"
    assert [line.net_amount for line in invoice.lines] == list(COMMISSIONS)
    assert [line.order_reference for line in invoice.lines] == ["AUF-2026-4711", "AUF-2026-4730"]
    assert invoice.line_total == LINE_NET
    assert invoice.allowance_total == DISCOUNT
    assert len(invoice.adjustments) == 1
    allowance = invoice.adjustments[0]
    assert (allowance.is_charge, allowance.amount, allowance.tax_category, allowance.tax_rate) == (
        False,
        DISCOUNT,
        "S",
        D(19),
    )
    assert [(tax.category, tax.rate, tax.basis, tax.tax) for tax in invoice.taxes] == [("S", D(19), NET, VAT)]
    assert (invoice.tax_basis, invoice.tax_total, invoice.grand_total) == (NET, VAT, GROSS)
    assert invoice.prepaid == ADVANCE
    assert invoice.due_payable == PAYOUT
    assert invoice.period == (date(2026, 11, 1), date(2026, 11, 30))
    assert invoice.due_date == date(2026, 12, 5)
    assert invoice.payee_iban == "DE93370501981234567890"  # the agent's account
    assert any("Gutschrift" in note for note in invoice.notes)


def test_commission_pdf_german() -> None:
    text = text_of(render_example(example("commission_statement")))
    for expected in (
        "Gutschrift PA-2026-11-0042",
        "Provisionsabrechnung",
        "§ 14 Abs. 2 Satz 5 UStG",
        "Lukas Weber",
        "Lindenallee 8",
        "04109 Leipzig",
        "231/123/45678",  # the agent's tax number (§14(4) Nr. 2 UStG)
        "01.11.2026 – 30.11.2026",
        "30.11.2026",
        "AUF-2026-4711",
        "11.970,00",
        "4.788,00",
        "2.940,00",
        "7.728,00 €",
        "−73,50 €",
        "7.654,50 €",
        "19 % USt. auf 7.654,50 €",
        "1.454,36 €",
        "9.108,86 €",
        "−1.500,00 €",
        "7.608,86 €",
        "05.12.2026",
        "DE93 3705 0198 1234 5678 90",
        "Muster Immobilien GmbH",
        "Seite 1 von 1",
    ):
        assert expected in text, expected


def test_commission_pdf_english() -> None:
    text = text_of(render_example(english(example("commission_statement"))))
    for expected in (
        "Commission statement PA-2026-11-0042",
        "Self-billed invoice (Gutschrift)",
        "1 Nov 2026 – 30 Nov 2026",
        "Your tax number",
        "231/123/45678",
        "€7,728.00",
        "−€73.50",
        "plus 19% VAT on €7,654.50",
        "€1,454.36",
        "€9,108.86",
        "−€1,500.00",
        "€7,608.86",
        "5 Dec 2026",
        "Page 1 of 1",
    ):
        assert expected in text, expected


# --- e-invoice XML, where the CII writer is available ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (example("credit_note"), "381"),
        (corrected_invoice(), "384"),
        (example("commission_statement"), "389"),
        (small_business(example("commission_statement")), "389"),
    ],
)
def test_cii_xml_carries_type_code_and_roles(body: dict[str, Any], code: str) -> None:
    cii = pytest.importorskip("postroom.einvoice.cii")
    invoice = einvoice(body)
    tree = cii.cii_tree(invoice)
    cii.check_xsd(tree)
    namespaces = cii.NAMESPACES
    assert tree.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=namespaces) == code
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
    seller = tree.findtext(f"{agreement}/ram:SellerTradeParty/ram:Name", namespaces=namespaces)
    buyer = tree.findtext(f"{agreement}/ram:BuyerTradeParty/ram:Name", namespaces=namespaces)
    if code == "389":
        assert (seller, buyer) == ("Lukas Weber", "Muster Immobilien GmbH")
    else:
        assert seller == "Muster Immobilien GmbH"
    if code in ("381", "384"):
        reference = tree.findtext(
            "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
            "/ram:InvoiceReferencedDocument/ram:IssuerAssignedID",
            namespaces=namespaces,
        )
        assert reference == invoice.preceding_invoice[0]  # type: ignore[index]


# --- layout --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        example("credit_note"),
        english(example("credit_note")),
        example("commission_statement"),
        english(example("commission_statement")),
        small_business(example("commission_statement")),
    ],
)
def test_only_the_address_prints_inside_the_window(body: dict[str, Any]) -> None:
    pdf = render_example(body, "print")
    assert_only_address_in_window(
        pdf, postal_address(body["recipient"]), return_line_of(body["data"]["seller"])
    )


@pytest.mark.parametrize("name", ["credit_note", "commission_statement"])
@pytest.mark.parametrize("variant", ["print", "email", "archive"])
def test_every_variant_renders_one_page(name: str, variant: Variant) -> None:
    pdf = render_example(example(name), variant)
    assert len(reader_of(pdf).pages) == 1
    if variant == "archive":
        assert declares_pdf_a_3b(pdf)


def test_many_commissions_repeat_the_table_header() -> None:
    body = example("commission_statement")
    template = body["data"]["commissions"][0]
    body["data"]["commissions"] = [
        {
            **template,
            "order_reference": f"AUF-2026-{index:04d}",
            "description": f"Provisionsanteil Objekt {index}",
        }
        for index in range(1, 61)
    ]
    del body["data"]["discounting"]
    reader = reader_of(render_example(body))
    assert len(reader.pages) >= 2
    second = reader.pages[1].extract_text()
    assert "Bemessung" in second or "Grundlage" in second  # repeated header
    assert "Gutschrift PA-2026-11-0042" in second  # running title
    # 60 × 4,788.00 = 287,280.00 net; 19 % = 54,583.20; gross 341,863.20; payout 340,363.20.
    assert "340.363,20" in text_of(reader)


def test_a_commission_share_may_be_the_whole_courtage() -> None:
    body = example("commission_statement")
    body["data"]["commissions"][0]["rate"] = "100"
    body["data"]["commissions"][1]["rate"] = "12.3456"
    request = document_type("commission_statement").parse(body)
    assert str(request.data.commissions[0].rate) == "100"  # type: ignore[attr-defined]
    body["data"]["commissions"][0]["rate"] = "100.01"
    with pytest.raises(ValidationError, match=r"data\.commissions\.0\.rate"):
        document_type("commission_statement").parse(body)
