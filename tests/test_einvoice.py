"""EN 16931 CII XML and its embedding as ``factur-x.xml`` in the archive and e-mail variants."""

from __future__ import annotations

import dataclasses
import io
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, cast

import facturx
import pytest
import typst
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject

from postroom.channels.printing.batch import build_batch
from postroom.core.print_batches import QueuedPiece
from postroom.documents.catalogue import document_type
from postroom.documents.types.invoice import InvoiceRequest
from postroom.einvoice.cii import (
    EN16931,
    NAMESPACES,
    XRECHNUNG,
    EInvoiceError,
    cii_document,
    cii_tree,
)
from postroom.einvoice.embed import FACTUR_X_NAMESPACE, embed_cii
from postroom.einvoice.model import DocumentAdjustment, EInvoice, TaxSubtotal, TradeLine, TradeParty
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer, Rendering
from postroom.settings import PROJECT_ROOT
from tests.conftest import example

TIMESTAMP = datetime(2026, 11, 20, 12, tzinfo=UTC)
EXAMPLES = ["invoice", "reference_invoice"]
XMP_NAMESPACES = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "fx": FACTUR_X_NAMESPACE,
}


@cache
def renderer() -> Renderer:
    return Renderer.for_folder(PROJECT_ROOT / "templates")


@cache
def rendering(name: str) -> Rendering:
    """All three variants of an example, rendered once per test session."""
    doc_type = document_type("invoice")
    return renderer().render(
        doc_type, doc_type.parse(example(name)), ["print", "email", "archive"], timestamp=TIMESTAMP
    )


def request_of(name: str) -> InvoiceRequest:
    request = document_type("invoice").parse(example(name))
    assert isinstance(request, InvoiceRequest)
    return request


def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def embedded_xml(pdf: bytes) -> bytes:
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    assert isinstance(xml, bytes)
    return xml


def values(tree: etree._Element, path: str) -> list[str]:
    found = tree.xpath(path, namespaces=NAMESPACES)
    assert isinstance(found, list)
    return [str(item.text if isinstance(item, etree._Element) else item) for item in found]


def value(tree: etree._Element, path: str) -> str:
    found = values(tree, path)
    assert len(found) == 1, f"{path}: {found}"
    return found[0]


def amount(tree: etree._Element, path: str) -> Decimal:
    return Decimal(value(tree, path))


SUMMATION = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def german_amount(text: str) -> Decimal:
    """``110.182,88`` as a Decimal."""
    return Decimal(text.replace(".", "").replace(",", "."))


def printed_totals(pdf: bytes) -> dict[str, Any]:
    """Net, tax per rate (basis and tax) and gross as printed in the totals block of the PDF."""
    text = "\n".join(page.extract_text() for page in reader(pdf).pages).replace("\xa0", " ")
    figure = r"([\d.]+,\d\d) €"
    net = re.search(rf"Nettobetrag {figure}", text)
    gross = re.search(rf"Rechnungsbetrag {figure}", text)
    assert net is not None
    assert gross is not None
    taxes = {
        Decimal(rate): (german_amount(basis), german_amount(tax))
        for rate, basis, tax in re.findall(rf"zzgl\. (\d+) % USt\. auf {figure} {figure}", text)
    }
    return {"net": german_amount(net.group(1)), "gross": german_amount(gross.group(1)), "taxes": taxes}


@pytest.mark.parametrize("variant", ["archive", "email"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_embedded_xml_passes_the_factur_x_xsd(name: str, variant: Variant) -> None:
    xml = embedded_xml(rendering(name).pdfs[variant].data)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"


@pytest.mark.parametrize("name", EXAMPLES)
def test_xml_totals_equal_the_computed_and_the_printed_totals(name: str) -> None:
    pdf = rendering(name).pdfs["archive"].data
    tree = etree.fromstring(embedded_xml(pdf))
    totals = request_of(name).data.totals()
    printed = printed_totals(pdf)

    assert amount(tree, f"{SUMMATION}/ram:LineTotalAmount") == totals.line_net == printed["net"]
    assert amount(tree, f"{SUMMATION}/ram:TaxBasisTotalAmount") == totals.net == printed["net"]
    assert amount(tree, f"{SUMMATION}/ram:TaxTotalAmount[@currencyID='EUR']") == totals.tax
    assert amount(tree, f"{SUMMATION}/ram:GrandTotalAmount") == totals.gross == printed["gross"]
    assert amount(tree, f"{SUMMATION}/ram:DuePayableAmount") == totals.gross
    assert sum(tax for _, tax in printed["taxes"].values()) == totals.tax

    breakdown = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert len(values(tree, breakdown)) == len(totals.tax_groups) == len(printed["taxes"])
    for group in totals.tax_groups:
        at_rate = f"{breakdown}[number(ram:RateApplicablePercent) = {group.rate}]"
        assert value(tree, f"{at_rate}/ram:CategoryCode") == "S"
        assert amount(tree, f"{at_rate}/ram:BasisAmount") == group.net == printed["taxes"][group.rate][0]
        assert amount(tree, f"{at_rate}/ram:CalculatedAmount") == group.tax == printed["taxes"][group.rate][1]

    lines = request_of(name).data.lines
    line_totals = values(tree, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount")
    assert [Decimal(total) for total in line_totals] == list(totals.line_totals)
    assert len(line_totals) == len(lines)


def test_reference_invoice_totals_are_the_known_figures() -> None:
    tree = etree.fromstring(embedded_xml(rendering("reference_invoice").pdfs["email"].data))
    assert value(tree, f"{SUMMATION}/ram:GrandTotalAmount") == "110182.88"
    seven = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax[ram:RateApplicablePercent = '7']"
    assert value(tree, f"{seven}/ram:CalculatedAmount") == "674.63"
    assert value(tree, f"{seven}/ram:BasisAmount") == "9637.50"


def test_reference_invoice_with_a_leitweg_id_is_an_xrechnung() -> None:
    tree = etree.fromstring(embedded_xml(rendering("reference_invoice").pdfs["archive"].data))
    context = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
    assert (
        value(tree, f"{context}/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == XRECHNUNG.guideline
    )
    assert (
        value(tree, f"{context}/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
        == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    )
    assert value(tree, "//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference") == "04011000-12345-34"
    seller = "//ram:SellerTradeParty"
    assert value(tree, f"{seller}/ram:URIUniversalCommunication/ram:URIID/@schemeID") == "EM"
    assert value(
        tree, f"{seller}/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber"
    )
    assert value(tree, f"{seller}/ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID")
    assert value(tree, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID/@schemeID") == "EM"
    assert (
        value(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
        == "DE987654328"
    )


def test_invoice_without_a_buyer_reference_is_en16931() -> None:
    tree = etree.fromstring(embedded_xml(rendering("invoice").pdfs["archive"].data))
    assert value(tree, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == EN16931.guideline
    assert not values(tree, "//ram:BusinessProcessSpecifiedDocumentContextParameter")
    assert not values(tree, "//ram:BuyerReference")
    assert (
        value(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
        == "DE999999995"
    )
    assert (
        value(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']")
        == "215/5701/1234"
    )
    means = "//ram:SpecifiedTradeSettlementPaymentMeans"
    assert value(tree, f"{means}/ram:TypeCode") == "58"
    assert (
        value(tree, f"{means}/ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == "DE89370400440532013000"
    )
    assert value(tree, f"{means}/ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID") == "COBADEFFXXX"
    assert (
        value(tree, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == "20261204"
    )
    assert value(tree, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString") == "20261115"
    assert value(tree, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == "AUF-2026-4711"


def catalog(pdf: bytes) -> DictionaryObject:
    root = reader(pdf).trailer["/Root"].get_object()
    assert isinstance(root, DictionaryObject)
    return root


@pytest.mark.parametrize("variant", ["archive", "email"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_attachment_is_an_alternative_associated_file(name: str, variant: Variant) -> None:
    root = catalog(rendering(name).pdfs[variant].data)
    associated = cast(ArrayObject, root["/AF"])
    assert len(associated) == 1
    filespec = cast(DictionaryObject, associated[0].get_object())
    assert str(filespec["/AFRelationship"]) == "/Alternative"
    assert str(filespec["/F"]) == str(filespec["/UF"]) == "factur-x.xml"
    embedded = cast(DictionaryObject, cast(DictionaryObject, filespec["/EF"])["/F"].get_object())
    assert str(embedded["/Subtype"]) == "/text/xml"
    assert str(cast(DictionaryObject, embedded["/Params"])["/ModDate"]) == "D:20261120120000Z"
    names = cast(
        ArrayObject,
        cast(DictionaryObject, cast(DictionaryObject, root["/Names"])["/EmbeddedFiles"])["/Names"],
    )
    assert names[0] == "factur-x.xml"
    assert names[1].get_object() == filespec


def xmp_tree(pdf: bytes) -> etree._Element:
    metadata = reader(pdf).xmp_metadata
    assert metadata is not None
    return etree.fromstring(metadata.stream.get_data())


def xmp_values(tree: etree._Element, path: str) -> list[str]:
    found = tree.xpath(path, namespaces=XMP_NAMESPACES)
    assert isinstance(found, list)
    return [str(item.text) if isinstance(item, etree._Element) else str(item) for item in found]


@pytest.mark.parametrize(("name", "level"), [("invoice", "EN 16931"), ("reference_invoice", "XRECHNUNG")])
def test_archive_xmp_declares_pdf_a_3b_and_the_factur_x_schema(name: str, level: str) -> None:
    tree = xmp_tree(rendering(name).pdfs["archive"].data)
    assert xmp_values(tree, "//pdfaid:part") == ["3"]
    assert xmp_values(tree, "//pdfaid:conformance") == ["B"]
    schema = f"//pdfaSchema:namespaceURI[. = '{FACTUR_X_NAMESPACE}']/.."
    assert xmp_values(tree, f"{schema}/pdfaSchema:prefix") == ["fx"]
    declared = xmp_values(tree, f"{schema}/pdfaSchema:property//*[local-name() = 'name']")
    assert sorted(declared) == ["ConformanceLevel", "DocumentFileName", "DocumentType", "Version"]
    assert xmp_values(tree, "//fx:DocumentFileName") == ["factur-x.xml"]
    assert xmp_values(tree, "//fx:DocumentType") == ["INVOICE"]
    assert xmp_values(tree, "//fx:Version") == ["1.0"]
    assert xmp_values(tree, "//fx:ConformanceLevel") == [level]


def test_email_xmp_declares_the_factur_x_schema() -> None:
    tree = xmp_tree(rendering("invoice").pdfs["email"].data)
    assert xmp_values(
        tree, f"//pdfaSchema:namespaceURI[. = '{FACTUR_X_NAMESPACE}']/../pdfaSchema:prefix"
    ) == ["fx"]
    assert xmp_values(tree, "//fx:ConformanceLevel") == ["EN 16931"]


@pytest.mark.parametrize("variant", ["archive", "email"])
def test_embedding_keeps_the_engine_output_unchanged(variant: Variant) -> None:
    """The XML is an incremental update: Typst's PDF/A objects, info and dates stay byte for byte."""
    doc_type = document_type("invoice")
    request = doc_type.parse(example("invoice"))
    template = renderer().template_for(doc_type, request.template)
    engine_pdf = (
        renderer()
        .engines[template.engine]
        .render(template, doc_type.context(request), variant, timestamp=TIMESTAMP)
    )
    embedded = rendering("invoice").pdfs[variant].data
    assert embedded.startswith(engine_pdf)
    assert reader(embedded).metadata == reader(engine_pdf).metadata
    assert reader(embedded).trailer["/ID"] == reader(engine_pdf).trailer["/ID"]


def test_the_letter_shop_gets_the_pages_without_the_xml(tmp_path: Path) -> None:
    """The posted invoice is the archived one, XML included; the print file takes its pages only."""
    copies = [rendering(name).pdfs["print"] for name in EXAMPLES]
    for name, pdf in zip(EXAMPLES, copies, strict=True):
        assert pdf.data == rendering(name).pdfs["archive"].data
    pieces = [
        (number, QueuedPiece(uuid.uuid4(), uuid.uuid4(), "DE", "80802", pdf.pages, pdf.sha256))
        for number, pdf in enumerate(copies, 1)
    ]
    by_piece = {piece.delivery_id: pdf.data for (_, piece), pdf in zip(pieces, copies, strict=True)}
    files = build_batch(
        uuid.uuid4(),
        "test",
        pieces,
        lambda piece: by_piece[piece.delivery_id],
        tmp_path,
        created=TIMESTAMP,
        templates_dir=PROJECT_ROOT / "templates",
    )
    printed = files.pdf.read_bytes()
    assert not reader(printed).attachments
    assert "/AF" not in catalog(printed)
    assert b"factur-x.xml" not in printed


def test_document_types_without_einvoice_get_no_xml() -> None:
    doc_type = dataclasses.replace(document_type("invoice"), einvoice=None)
    result = renderer().render(doc_type, doc_type.parse(example("invoice")), ["archive"], timestamp=TIMESTAMP)
    assert not reader(result.pdfs["archive"].data).attachments


@pytest.mark.parametrize("name", EXAMPLES)
def test_two_renders_are_byte_identical(name: str) -> None:
    doc_type = document_type("invoice")
    again = Renderer.for_folder(PROJECT_ROOT / "templates").render(
        doc_type, doc_type.parse(example(name)), ["print", "email", "archive"], timestamp=TIMESTAMP
    )
    for variant, pdf in rendering(name).pdfs.items():
        assert again.pdfs[variant].data == pdf.data, variant
        assert again.pdfs[variant].sha256 == pdf.sha256


def test_page_count_is_unchanged_by_the_attachment() -> None:
    pdfs = rendering("reference_invoice").pdfs
    assert pdfs["archive"].pages == pdfs["email"].pages == pdfs["print"].pages == 2


# The XML builder on a hand-made credit note: 381 with a preceding invoice, an exempt line, an allowance.

SELLER = TradeParty(
    name="Muster Immobilien GmbH",
    street="Hohenzollernring 12",
    postcode="50672",
    city="Köln",
    country="DE",
    vat_id="DE999999995",
    tax_number="215/5701/1234",
    registration="Amtsgericht Köln HRB 12345",
    email="buchhaltung@muster-immobilien.example",
    phone="+49 221 123456-0",
    contact_name="Buchhaltung",
)
BUYER = TradeParty(
    name="Erika Mustermann",
    street="Heidestraße 17",
    postcode="51147",
    city="Köln",
    country="DE",
    email="erika.mustermann@example.org",
    customer_number="K-100234",
)
EXEMPTION = "Durchlaufender Posten (§ 10 Abs. 1 Satz 6 UStG)"


def credit_note(**changes: Any) -> EInvoice:
    note = EInvoice(
        type_code="381",
        number="GS-2026-000007",
        issue_date=date(2026, 11, 25),
        currency="EUR",
        seller=SELLER,
        buyer=BUYER,
        lines=(
            TradeLine(
                id="1",
                name="Erstattung Maklercourtage",
                quantity=Decimal("1"),
                unit_code="C62",
                net_price=Decimal("1000.00"),
                net_amount=Decimal("1000.00"),
                tax_category="S",
                tax_rate=Decimal("19"),
                order_reference="4",
            ),
            TradeLine(
                id="2",
                name="Erstattung Grundbuchauszug",
                quantity=Decimal("2.5"),
                unit_code="H87",
                net_price=Decimal("12.3456"),
                net_amount=Decimal("30.86"),
                tax_category="E",
                tax_rate=Decimal("0"),
            ),
        ),
        adjustments=(
            DocumentAdjustment(
                is_charge=False,
                amount=Decimal("10.00"),
                reason="Kulanz",
                tax_category="S",
                tax_rate=Decimal("19"),
            ),
        ),
        taxes=(
            TaxSubtotal(category="S", rate=Decimal("19"), basis=Decimal("990.00"), tax=Decimal("188.10")),
            TaxSubtotal(
                category="E",
                rate=Decimal("0"),
                basis=Decimal("30.86"),
                tax=Decimal("0.00"),
                exemption_reason=EXEMPTION,
            ),
        ),
        line_total=Decimal("1030.86"),
        allowance_total=Decimal("10.00"),
        tax_basis=Decimal("1020.86"),
        tax_total=Decimal("188.10"),
        grand_total=Decimal("1208.96"),
        due_payable=Decimal("1208.96"),
        preceding_invoice=("RE-2026-000123", date(2026, 11, 20)),
        period=(date(2026, 10, 1), date(2026, 10, 31)),
        payment_terms="Der Betrag wird Ihrem Konto gutgeschrieben.",
        notes=("Stornierung der Rechnung RE-2026-000123.",),
    )
    return dataclasses.replace(note, **changes)


def test_credit_note_xml_is_valid() -> None:
    document = cii_document(credit_note())
    assert document.profile is EN16931
    assert facturx.xml_check_xsd(document.xml, flavor="factur-x", level="en16931") is True
    assert document.xml == cii_document(credit_note()).xml
    assert document.xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def test_credit_note_type_and_preceding_invoice() -> None:
    tree = cii_tree(credit_note())
    assert value(tree, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert value(tree, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == "20261125"
    assert value(tree, "//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/@format") == "102"
    assert value(tree, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == (
        "Stornierung der Rechnung RE-2026-000123."
    )
    preceding = "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument"
    assert value(tree, f"{preceding}/ram:IssuerAssignedID") == "RE-2026-000123"
    assert value(tree, f"{preceding}/ram:FormattedIssueDateTime/qdt:DateTimeString") == "20261120"
    assert value(tree, f"{preceding}/ram:FormattedIssueDateTime/qdt:DateTimeString/@format") == "102"
    period = "//ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod"
    assert value(tree, f"{period}/ram:StartDateTime/udt:DateTimeString") == "20261001"
    assert value(tree, f"{period}/ram:EndDateTime/udt:DateTimeString") == "20261031"
    assert not values(tree, "//ram:ActualDeliverySupplyChainEvent")
    assert not values(tree, "//ram:SpecifiedTradeSettlementPaymentMeans")  # no payee account, not XRechnung


def test_exempt_line_and_its_vat_breakdown_carry_the_reason() -> None:
    tree = cii_tree(credit_note())
    line = "//ram:IncludedSupplyChainTradeLineItem[ram:AssociatedDocumentLineDocument/ram:LineID = '2']"
    assert (
        value(tree, f"{line}/ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") == "E"
    )
    assert value(tree, f"{line}//ram:ApplicableTradeTax/ram:RateApplicablePercent") == "0"
    assert value(tree, f"{line}//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "12.3456"
    assert value(tree, f"{line}//ram:BilledQuantity") == "2.5"
    assert value(tree, f"{line}//ram:BilledQuantity/@unitCode") == "H87"
    assert value(tree, f"{line}//ram:LineTotalAmount") == "30.86"
    assert not values(tree, f"{line}//ram:ExemptionReason")  # the reason belongs to the breakdown (BT-120)

    exempt = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax[ram:CategoryCode = 'E']"
    assert value(tree, f"{exempt}/ram:ExemptionReason") == EXEMPTION
    assert value(tree, f"{exempt}/ram:BasisAmount") == "30.86"
    assert value(tree, f"{exempt}/ram:CalculatedAmount") == "0.00"
    assert value(tree, f"{exempt}/ram:RateApplicablePercent") == "0"
    standard = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax[ram:CategoryCode = 'S']"
    assert not values(tree, f"{standard}/ram:ExemptionReason")
    assert value(tree, f"{standard}/ram:BasisAmount") == "990.00"
    assert value(tree, f"{standard}/ram:CalculatedAmount") == "188.10"

    first = "//ram:IncludedSupplyChainTradeLineItem[ram:AssociatedDocumentLineDocument/ram:LineID = '1']"
    assert value(tree, f"{first}//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "1000.00"
    assert value(tree, f"{first}//ram:BuyerOrderReferencedDocument/ram:LineID") == "4"


def test_document_level_allowance_and_summation() -> None:
    tree = cii_tree(credit_note())
    allowance = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge"
    assert value(tree, f"{allowance}/ram:ChargeIndicator/udt:Indicator") == "false"
    assert value(tree, f"{allowance}/ram:ActualAmount") == "10.00"
    assert value(tree, f"{allowance}/ram:Reason") == "Kulanz"
    assert value(tree, f"{allowance}/ram:CategoryTradeTax/ram:TypeCode") == "VAT"
    assert value(tree, f"{allowance}/ram:CategoryTradeTax/ram:CategoryCode") == "S"
    assert value(tree, f"{allowance}/ram:CategoryTradeTax/ram:RateApplicablePercent") == "19"

    assert value(tree, f"{SUMMATION}/ram:LineTotalAmount") == "1030.86"
    assert value(tree, f"{SUMMATION}/ram:AllowanceTotalAmount") == "10.00"
    assert not values(tree, f"{SUMMATION}/ram:ChargeTotalAmount")
    assert value(tree, f"{SUMMATION}/ram:TaxBasisTotalAmount") == "1020.86"
    assert value(tree, f"{SUMMATION}/ram:TaxTotalAmount") == "188.10"
    assert value(tree, f"{SUMMATION}/ram:TaxTotalAmount/@currencyID") == "EUR"
    assert value(tree, f"{SUMMATION}/ram:GrandTotalAmount") == "1208.96"
    assert not values(tree, f"{SUMMATION}/ram:TotalPrepaidAmount")
    assert value(tree, f"{SUMMATION}/ram:DuePayableAmount") == "1208.96"
    assert value(tree, "//ram:SpecifiedTradePaymentTerms/ram:Description") == (
        "Der Betrag wird Ihrem Konto gutgeschrieben."
    )
    assert not values(tree, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime")


def test_parties() -> None:
    tree = cii_tree(credit_note())
    seller = "//ram:SellerTradeParty"
    assert value(tree, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID") == "Amtsgericht Köln HRB 12345"
    assert value(tree, f"{seller}/ram:DefinedTradeContact/ram:PersonName") == "Buchhaltung"
    assert value(tree, f"{seller}/ram:PostalTradeAddress/ram:PostcodeCode") == "50672"
    assert value(tree, f"{seller}/ram:PostalTradeAddress/ram:LineOne") == "Hohenzollernring 12"
    assert value(tree, f"{seller}/ram:PostalTradeAddress/ram:CityName") == "Köln"
    assert value(tree, f"{seller}/ram:PostalTradeAddress/ram:CountryID") == "DE"
    assert value(tree, f"{seller}/ram:URIUniversalCommunication/ram:URIID") == SELLER.email
    assert values(tree, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == ["VA", "FC"]
    buyer = "//ram:BuyerTradeParty"
    assert value(tree, f"{buyer}/ram:ID") == "K-100234"
    assert value(tree, f"{buyer}/ram:URIUniversalCommunication/ram:URIID") == BUYER.email
    assert not values(tree, f"{buyer}/ram:DefinedTradeContact")
    assert not values(tree, f"{buyer}/ram:SpecifiedTaxRegistration")


def test_a_buyer_has_its_vat_id_but_no_tax_number() -> None:
    registered = dataclasses.replace(BUYER, vat_id="DE987654328", tax_number="143/456/78901")
    tree = cii_tree(credit_note(buyer=registered))
    assert values(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ["DE987654328"]
    assert values(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == ["VA"]


def test_charges_and_prepaid_amounts() -> None:
    charge = DocumentAdjustment(
        is_charge=True, amount=Decimal("5.00"), reason="Versand", tax_category="S", tax_rate=Decimal("19")
    )
    tree = cii_tree(
        credit_note(
            adjustments=(charge,),
            allowance_total=Decimal("0.00"),
            charge_total=Decimal("5.00"),
            prepaid=Decimal("100.00"),
        )
    )
    assert value(tree, "//ram:SpecifiedTradeAllowanceCharge/ram:ChargeIndicator/udt:Indicator") == "true"
    assert value(tree, f"{SUMMATION}/ram:ChargeTotalAmount") == "5.00"
    assert not values(tree, f"{SUMMATION}/ram:AllowanceTotalAmount")
    assert value(tree, f"{SUMMATION}/ram:TotalPrepaidAmount") == "100.00"


def test_xrechnung_needs_a_reachable_seller() -> None:
    with pytest.raises(EInvoiceError) as raised:
        cii_tree(credit_note(buyer_reference="991-12345-67", seller=dataclasses.replace(SELLER, phone=None)))
    assert "seller.phone" in raised.value.detail
    for personal in (SELLER.name, SELLER.email or "", BUYER.name, "991-12345-67"):
        assert personal not in raised.value.detail


def test_xrechnung_without_an_account_still_states_payment_means() -> None:
    document = cii_document(credit_note(buyer_reference="991-12345-67"))
    assert document.profile is XRECHNUNG
    tree = etree.fromstring(document.xml)
    assert value(tree, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "1"  # BR-DE-1
    assert value(tree, "//ram:BuyerReference") == "991-12345-67"


def test_amounts_with_more_than_two_decimals_are_refused_not_rounded() -> None:
    with pytest.raises(EInvoiceError, match="line_total must have at most two decimals"):
        cii_tree(credit_note(line_total=Decimal("1030.855")))
    with pytest.raises(EInvoiceError, match="line 1 net_price must have at most four decimals"):
        cii_tree(
            credit_note(lines=(dataclasses.replace(credit_note().lines[0], net_price=Decimal("0.12345")),))
        )


def test_amounts_are_formatted_with_two_decimals() -> None:
    tree = cii_tree(credit_note(grand_total=Decimal("1208.9600"), due_payable=Decimal("1209")))
    assert value(tree, f"{SUMMATION}/ram:GrandTotalAmount") == "1208.96"
    assert value(tree, f"{SUMMATION}/ram:DuePayableAmount") == "1209.00"


def test_embedding_twice_is_refused() -> None:
    pdf = rendering("invoice").pdfs["email"].data
    with pytest.raises(EInvoiceError, match=r"already has a factur-x\.xml"):
        embed_cii(pdf, cii_document(credit_note()), modified=TIMESTAMP)


def test_embedding_keeps_the_links_and_attachments_of_a_template(tmp_path: Path) -> None:
    (tmp_path / "main.typ").write_text(
        '#set document(title: "t")\n= Intro <intro>\nSee #link(<intro>)[intro].\n'
        '#pdf.attach("notes.txt", relationship: "supplement")\n#pdf.attach("zz.txt")\n',
        encoding="utf-8",
    )
    (tmp_path / "notes.txt").write_text("notes", encoding="utf-8")
    (tmp_path / "zz.txt").write_text("zz", encoding="utf-8")
    pdf = typst.Compiler(str(tmp_path / "main.typ"), root=str(tmp_path)).compile()
    assert isinstance(pdf, bytes)
    embedded = reader(embed_cii(pdf, cii_document(credit_note()), modified=TIMESTAMP))
    root = cast(DictionaryObject, embedded.trailer["/Root"].get_object())
    names = cast(DictionaryObject, root["/Names"])
    assert "/Dests" in names
    files = cast(ArrayObject, cast(DictionaryObject, names["/EmbeddedFiles"])["/Names"])
    assert [str(name) for name in files[0::2]] == ["factur-x.xml", "notes.txt", "zz.txt"]
    assert sorted(embedded.attachments) == ["factur-x.xml", "notes.txt", "zz.txt"]
    assert embedded.attachments["notes.txt"] == [b"notes"]
    associated = [cast(DictionaryObject, spec.get_object()) for spec in cast(ArrayObject, root["/AF"])]
    assert [str(spec["/F"]) for spec in associated][-1] == "factur-x.xml"


def test_embedding_continues_a_cross_reference_stream() -> None:
    """WeasyPrint ends its PDFs in a cross-reference stream; the update then writes one too."""
    weasyprint = pytest.importorskip("weasyprint")
    pdf = weasyprint.HTML(string="<h1>Rechnung</h1>").write_pdf(pdf_variant="pdf/a-3b")
    assert isinstance(pdf, bytes)
    result = embed_cii(pdf, cii_document(credit_note()), modified=TIMESTAMP)
    assert result.startswith(pdf)
    assert result == embed_cii(pdf, cii_document(credit_note()), modified=TIMESTAMP)
    assert b"/Type /XRef" in result[len(pdf) :]
    assert b"\nxref\n" not in result[len(pdf) :]
    embedded = reader(result)
    assert list(embedded.attachments) == ["factur-x.xml"]
    assert embedded.attachments["factur-x.xml"] == [cii_document(credit_note()).xml]
    tree = xmp_tree(result)
    assert xmp_values(tree, "//pdfaid:part | //@pdfaid:part") == ["3"]  # WeasyPrint writes an attribute
    assert xmp_values(tree, "//fx:ConformanceLevel") == ["EN 16931"]
