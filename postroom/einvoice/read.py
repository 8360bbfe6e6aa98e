"""Reading back what :mod:`postroom.einvoice.cii` and :mod:`postroom.einvoice.embed` write.

:func:`extract_cii` takes the ``factur-x.xml`` out of an archived PDF/A-3, and
:func:`read_cii_lines` reads the invoice lines (BG-25) of that EN 16931 CII XML, every
figure as a :class:`~decimal.Decimal` exactly as the XML states it.

Errors name the line position and the element, never a value: the XML holds names,
addresses and bank details of the buyer.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from decimal import Decimal

import pikepdf
from facturx.facturx import FACTURX_FILENAME
from lxml import etree

from postroom.einvoice.cii import NAMESPACES

_ROOT = f"{{{NAMESPACES['rsm']}}}CrossIndustryInvoice"
_LINE_ITEMS = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"
_LINE_ID = "ram:AssociatedDocumentLineDocument/ram:LineID"
_NAME = "ram:SpecifiedTradeProduct/ram:Name"
_NET_PRICE = "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"
_QUANTITY = "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"
_TAX = "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
_LINE_TOTAL = (
    "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"
)
# The decimal lexical form of XML Schema, which CII amounts, quantities and percentages use;
# Decimal() alone would also accept "NaN", "Infinity" and exponents.
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class UnreadableInvoiceXml(ValueError):
    """The XML is not a CII invoice this module can read; the message names elements, never values."""


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One invoice line (BG-25) as the CII XML states it.

    ``net_price`` is the price per unit (BT-146), ``line_total`` the line's net amount
    (BT-131); ``tax_rate`` is ``None`` for category ``O`` (not subject to VAT), which has none.
    """

    line_id: str
    name: str
    quantity: Decimal
    unit_code: str
    net_price: Decimal
    line_total: Decimal
    tax_category: str
    tax_rate: Decimal | None


def extract_cii(pdf: bytes) -> bytes | None:
    """The embedded ``factur-x.xml`` of ``pdf``, or ``None`` when the PDF has none (e.g. a letter).

    Raises :class:`pikepdf.PdfError` when ``pdf`` is not a readable PDF.
    """
    with pikepdf.Pdf.open(io.BytesIO(pdf)) as document:
        attachment = document.attachments.get(FACTURX_FILENAME)
        if attachment is None:
            return None
        return attachment.get_file().read_bytes()


def read_cii_lines(xml: bytes) -> list[InvoiceLine]:
    """The invoice lines of the CII ``xml`` in document order.

    Raises :class:`UnreadableInvoiceXml` when ``xml`` is not well-formed, is not a
    ``rsm:CrossIndustryInvoice`` or lacks an element every EN 16931 line has.
    """
    # No entities, no DTD, no network: the XML may come from outside the hub.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as error:
        # lxml's message may quote the document; the line number is enough to find the fault.
        raise UnreadableInvoiceXml(f"the XML is not well-formed (line {error.lineno})") from None
    if root.tag != _ROOT:
        raise UnreadableInvoiceXml(
            "the XML is not a UN/CEFACT Cross Industry Invoice (rsm:CrossIndustryInvoice)"
        )
    return [_line(item, position) for position, item in enumerate(_find_all(root, _LINE_ITEMS), start=1)]


def _line(item: etree._Element, position: int) -> InvoiceLine:
    quantity = _required(item, _QUANTITY, position)
    tax = _required(item, _TAX, position)
    rate = tax.find("ram:RateApplicablePercent", NAMESPACES)
    return InvoiceLine(
        line_id=_text(_required(item, _LINE_ID, position)),
        name=_text(_required(item, _NAME, position)),
        quantity=_decimal(quantity, position),
        unit_code=_unit_code(quantity, position),
        net_price=_decimal(_required(item, _NET_PRICE, position), position),
        line_total=_decimal(_required(item, _LINE_TOTAL, position), position),
        tax_category=_text(_required(tax, "ram:CategoryCode", position)),
        tax_rate=None if rate is None else _decimal(rate, position),
    )


def _find_all(parent: etree._Element, path: str) -> list[etree._Element]:
    return list(parent.iterfind(path, NAMESPACES))


def _required(parent: etree._Element, path: str, position: int) -> etree._Element:
    found = parent.find(path, NAMESPACES)
    if found is None:
        raise UnreadableInvoiceXml(f"invoice line {position} has no {_local_names(path)}")
    return found


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _decimal(element: etree._Element, position: int) -> Decimal:
    text = _text(element)
    if not _DECIMAL.fullmatch(text):
        raise UnreadableInvoiceXml(
            f"invoice line {position}: {etree.QName(element).localname} is not a decimal number"
        )
    return Decimal(text)


def _unit_code(quantity: etree._Element, position: int) -> str:
    unit_code = quantity.get("unitCode")
    if not unit_code:
        raise UnreadableInvoiceXml(f"invoice line {position}: BilledQuantity has no unitCode")
    return unit_code


def _local_names(path: str) -> str:
    """``ram:A/ram:B`` as ``A/B``, for messages."""
    return "/".join(step.split(":")[-1] for step in path.split("/"))
