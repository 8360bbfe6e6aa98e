"""The GoBD Z3 data export: invoice lines read back from archived PDFs, the ZIP, its CSV files and
``index.xml`` validated against the shipped GDPdU DTD.

Each example is rendered once (``render_example`` caches); its archive PDF stands for many
documents of the export, which differ in id, number and totals.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from postroom.einvoice.cii import NAMESPACES
from postroom.einvoice.read import InvoiceLine, UnreadableInvoiceXml, extract_cii, read_cii_lines
from postroom.jobs.z3 import (
    DOCUMENTS,
    DTD_NAME,
    LINES,
    ExportDocument,
    Z3ExportError,
    Z3Summary,
    write_z3_export,
)
from tests.conftest import example
from tests.pdf_checks import render_example

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
SUPPLIER = "Muster Immobilien GmbH"
EXAMPLES = ("invoice", "reference_invoice", "credit_note", "dunning_letter")
"""Three e-invoices (380, XRechnung, 381) and a letter without XML, cycled through the export."""
DOCUMENT_COUNT = 120
HEADER_LINE_TOTAL = (
    "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    "/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:LineTotalAmount"
)


def archive_pdf(name: str) -> bytes:
    return render_example(example(name), "archive")


def cii_of(name: str) -> bytes:
    xml = extract_cii(archive_pdf(name))
    assert xml is not None
    return xml


def header_line_total(xml: bytes) -> Decimal:
    found = etree.fromstring(xml).xpath(HEADER_LINE_TOTAL, namespaces=NAMESPACES)
    assert isinstance(found, list)
    [element] = found
    assert isinstance(element, etree._Element)
    return Decimal(element.text or "")


def export_document(index: int) -> ExportDocument:
    """The ``index``-th document: an example's archive PDF under its own id, number and totals."""
    name = EXAMPLES[index % len(EXAMPLES)]
    pdf = archive_pdf(name)
    document_id = uuid.UUID(int=index + 1)
    number = f"RE-2026-{index + 1:04d}"
    issued = date(2026, 1 + index % 12, 1 + index % 28)
    return ExportDocument(
        document_id=document_id,
        number=number,
        document_type=name,
        issue_date=issued,
        customer_id=f"K-{index % 7}" if index % 5 else None,
        order_reference=f'PO "{index}"; Lager' if index % 3 == 0 else None,
        currency="EUR",
        net_total=Decimal("1000.005") + index,
        tax_total=Decimal("190.1") + index,
        gross_total=Decimal("1190.105") + 2 * index,
        sha256=hashlib.sha256(pdf).hexdigest(),
        archive_key=f"{name}/2026/{number}--{document_id}.pdf",
        retain_until=datetime(2037, 1, 1, tzinfo=UTC),
    )


def read_pdf(document: ExportDocument) -> bytes:
    return archive_pdf(document.document_type)


@dataclass(frozen=True)
class Export:
    documents: list[ExportDocument]
    summary: Z3Summary
    zip_path: Path
    unpacked: Path
    progress: list[int]

    def csv_rows(self, name: str) -> list[list[str]]:
        text = (self.unpacked / name).read_bytes().decode("utf-8")
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"'))

    def index(self) -> etree._ElementTree:
        return etree.parse(str(self.unpacked / "index.xml"))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    folder = tmp_path_factory.mktemp("z3")
    documents = [export_document(index) for index in range(DOCUMENT_COUNT)]
    progress: list[int] = []
    target = folder / "z3-2026.zip"
    summary = write_z3_export(
        iter(documents),  # the export reads its documents once, one at a time
        read_pdf,
        target,
        period=PERIOD,
        supplier=SUPPLIER,
        location="München",
        include_pdfs=True,
        progress=progress.append,
    )
    unpacked = folder / "unpacked"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(unpacked)
    return Export(documents, summary, target, unpacked, progress)


# --- reading the embedded CII XML -------------------------------------------------------------------------


def test_reference_invoice_has_40_lines_adding_up_to_the_line_total() -> None:
    xml = cii_of("reference_invoice")
    lines = read_cii_lines(xml)
    assert len(lines) == 40
    assert all(isinstance(line.line_total, Decimal) for line in lines)
    assert all(isinstance(line.quantity, Decimal) and isinstance(line.net_price, Decimal) for line in lines)
    assert sum(line.line_total for line in lines) == header_line_total(xml)
    assert [line.line_id for line in lines] == [str(position) for position in range(1, 41)]
    first = example("reference_invoice")["data"]["lines"][0]
    assert lines[0] == InvoiceLine(
        line_id="1",
        name=first["description"],
        quantity=Decimal(first["quantity"]),
        unit_code=first["unit"],
        net_price=Decimal(first["unit_price"]),
        line_total=Decimal("450.00"),
        tax_category="S",
        tax_rate=Decimal(first["tax_rate"]),
    )
    assert {line.tax_rate for line in lines} == {Decimal(19), Decimal(7)}


def test_a_letter_embeds_no_xml() -> None:
    assert extract_cii(archive_pdf("dunning_letter")) is None


def test_xml_that_is_not_well_formed_is_refused_without_quoting_it() -> None:
    with pytest.raises(UnreadableInvoiceXml, match="not well-formed") as raised:
        read_cii_lines(b"<Invoice><Buyer>Erika Mustermann</Invoice>")
    assert "Erika" not in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_xml_that_is_not_cii_is_refused() -> None:
    with pytest.raises(UnreadableInvoiceXml, match="not a UN/CEFACT Cross Industry Invoice") as raised:
        read_cii_lines(b"<Invoice><Buyer>Erika Mustermann</Buyer></Invoice>")
    assert "Erika" not in str(raised.value)


def test_a_line_without_quantity_is_refused_naming_the_element_not_the_values() -> None:
    tree = etree.fromstring(cii_of("invoice"))
    quantity = tree.find(".//ram:IncludedSupplyChainTradeLineItem//ram:BilledQuantity", NAMESPACES)
    assert quantity is not None
    delivery = quantity.getparent()
    assert delivery is not None
    delivery.remove(quantity)
    with pytest.raises(
        UnreadableInvoiceXml, match="invoice line 1 has no SpecifiedLineTradeDelivery/BilledQuantity"
    ):
        read_cii_lines(etree.tostring(tree))


def test_an_amount_that_is_no_decimal_number_is_refused() -> None:
    tree = etree.fromstring(cii_of("invoice"))
    total = tree.find(".//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", NAMESPACES)
    assert total is not None
    total.text = "NaN"
    with pytest.raises(UnreadableInvoiceXml, match="invoice line 1: LineTotalAmount is not a decimal number"):
        read_cii_lines(etree.tostring(tree))


# --- the ZIP and index.xml ----------------------------------------------------------------------------------


def test_zip_holds_index_dtd_csv_files_and_the_pdfs(export: Export) -> None:
    with zipfile.ZipFile(export.zip_path) as archive:
        names = archive.namelist()
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    pdfs = [f"pdf/{document.archive_key}" for document in export.documents]
    assert sorted(names) == sorted(["index.xml", DTD_NAME, "documents.csv", "lines.csv", *pdfs])
    assert (export.unpacked / DTD_NAME).read_bytes() == (
        resources.files("postroom.jobs.z3") / DTD_NAME
    ).read_bytes()


def test_summary_counts_and_hashes_the_finished_zip(export: Export) -> None:
    summary = export.summary
    data = export.zip_path.read_bytes()
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    assert summary.size == len(data)
    assert summary.path == export.zip_path
    assert summary.documents == summary.pdfs == DOCUMENT_COUNT
    assert summary.einvoices == DOCUMENT_COUNT * 3 // 4
    assert export.progress == [100, DOCUMENT_COUNT]
    assert not list(export.zip_path.parent.glob("*.part"))


def test_index_xml_is_valid_against_the_shipped_dtd(export: Export) -> None:
    dtd_path = resources.files("postroom.jobs.z3") / DTD_NAME
    with resources.as_file(dtd_path) as path:
        dtd = etree.DTD(str(path))
    index = export.index()
    assert dtd.validate(index), dtd.error_log
    doctype = (export.unpacked / "index.xml").read_bytes().splitlines()[1]
    assert doctype == f'<!DOCTYPE DataSet SYSTEM "{DTD_NAME}">'.encode()
    # The DTD constrains: the standard wants a Location in the DataSupplier.
    data_supplier = index.find("DataSupplier")
    assert data_supplier is not None
    data_supplier.remove(data_supplier[1])
    assert data_supplier[1].tag == "Comment"
    assert not dtd.validate(index)


def test_index_xml_validates_with_the_dtd_from_the_zip(export: Export) -> None:
    parser = etree.XMLParser(dtd_validation=True, load_dtd=True, no_network=True)
    tree = etree.parse(str(export.unpacked / "index.xml"), parser)  # raises unless valid
    assert tree.getroot().tag == "DataSet"


def test_index_xml_states_the_csv_layout(export: Export) -> None:
    root = export.index().getroot()
    assert root.findtext("Version") == "1.0"
    assert root.findtext("DataSupplier/Name") == SUPPLIER
    assert root.findtext("DataSupplier/Location") == "München"
    assert "01.01.2026 bis 31.12.2026" in (root.findtext("DataSupplier/Comment") or "")
    tables = root.findall("Media/Table")
    assert [table.findtext("URL") for table in tables] == ["documents.csv", "lines.csv"]
    for table in tables:
        assert table.findtext("Validity/Range/From") == "01.01.2026"
        assert table.findtext("Validity/Range/To") == "31.12.2026"
        assert table.findtext("Validity/Format") == "DD.MM.YYYY"
        assert table.find("UTF8") is not None
        assert table.findtext("DecimalSymbol") == ","
        assert table.findtext("Range/From") == "2"
        assert table.findtext("VariableLength/ColumnDelimiter") == ";"
        assert table.findtext("VariableLength/RecordDelimiter") == "\r\n"
        assert table.findtext("VariableLength/TextEncapsulator") == '"'
        for numeric in table.iterfind("VariableLength/*/Numeric"):
            assert numeric.findtext("Accuracy") in {"0", "2", "4"}
        for date_column in table.iterfind("VariableLength/*/Date"):
            assert date_column.findtext("Format") == "DD.MM.YYYY"
    documents, lines = tables
    assert [key.findtext("Name") for key in documents.iterfind("VariableLength/VariablePrimaryKey")] == [
        "document_number",
        "document_id",
    ]
    assert amount_accuracy(documents, "gross_total") == "2"
    assert amount_accuracy(lines, "line_total") == "2"
    assert amount_accuracy(lines, "quantity") == "4"
    foreign_key = lines.find("VariableLength/ForeignKey")
    assert foreign_key is not None
    assert [name.text for name in foreign_key.iterfind("Name")] == ["document_number", "document_id"]
    assert foreign_key.findtext("References") == documents.findtext("Name") == "documents"


def amount_accuracy(table: etree._Element, column: str) -> str | None:
    return table.findtext(f"VariableLength/*[Name='{column}']/Numeric/Accuracy")


# --- the CSV files ------------------------------------------------------------------------------------------


def column_names(export: Export, url: str) -> list[str]:
    [table] = [table for table in export.index().iterfind("Media/Table") if table.findtext("URL") == url]
    columns = table.iterfind("VariableLength/*")
    return [
        column.findtext("Name") or ""
        for column in columns
        if column.tag in {"VariablePrimaryKey", "VariableColumn"}
    ]


@pytest.mark.parametrize("url", ["documents.csv", "lines.csv"])
def test_csv_columns_are_those_index_xml_describes_in_order(export: Export, url: str) -> None:
    header, *records = export.csv_rows(url)
    assert header == column_names(export, url)
    assert header == [column.name for column in (DOCUMENTS if url == "documents.csv" else LINES).all_columns]
    assert {len(record) for record in records} == {len(header)}


def test_csv_files_are_utf8_with_crlf_records(export: Export) -> None:
    data = (export.unpacked / "documents.csv").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == DOCUMENT_COUNT + 1
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_documents_csv_has_one_record_per_document(export: Export) -> None:
    _, *records = export.csv_rows("documents.csv")
    assert len(records) == DOCUMENT_COUNT == export.summary.documents
    assert [record[1] for record in records] == [str(document.document_id) for document in export.documents]


def test_lines_csv_has_every_line_of_every_invoice(export: Export) -> None:
    expected = sum(
        len(read_cii_lines(xml))
        for document in export.documents
        if (xml := extract_cii(read_pdf(document))) is not None
    )
    _, *records = export.csv_rows("lines.csv")
    assert len(records) == expected == export.summary.lines
    document_keys = {(record[0], record[1]) for record in export.csv_rows("documents.csv")[1:]}
    assert {(record[0], record[1]) for record in records} <= document_keys


def test_document_record_formats_amounts_dates_and_text(export: Export) -> None:
    header, *records = export.csv_rows("documents.csv")
    record = dict(zip(header, records[0], strict=True))
    assert record == {
        "document_number": "RE-2026-0001",
        "document_id": "00000000-0000-0000-0000-000000000001",
        "document_type": "invoice",
        "issue_date": "01.01.2026",
        "customer_id": "",
        "order_reference": 'PO "0"; Lager',
        "currency": "EUR",
        "net_total": "1000,01",  # 1000.005 rounded half up
        "tax_total": "190,10",
        "gross_total": "1190,11",
        "line_count": str(len(read_cii_lines(cii_of("invoice")))),
        "sha256": hashlib.sha256(archive_pdf("invoice")).hexdigest(),
        "archive_key": f"invoice/2026/RE-2026-0001--{uuid.UUID(int=1)}.pdf",
        "retain_until": "01.01.2037",
    }
    letters = [dict(zip(header, row, strict=True)) for row in records if row[2] == "dunning_letter"]
    assert {letter["line_count"] for letter in letters} == {"0"}
    raw = (export.unpacked / "documents.csv").read_text(encoding="utf-8")
    assert '"PO ""0""; Lager"' in raw  # text encapsulated, the encapsulator doubled


def test_lines_of_the_reference_invoice_add_up_in_the_csv(export: Export) -> None:
    header, *records = export.csv_rows("lines.csv")
    reference = next(
        document for document in export.documents if document.document_type == "reference_invoice"
    )
    rows = [dict(zip(header, row, strict=True)) for row in records if row[1] == str(reference.document_id)]
    assert len(rows) == 40
    total = sum(Decimal(row["line_total"].replace(",", ".")) for row in rows)
    assert total == header_line_total(cii_of("reference_invoice"))
    assert rows[0]["quantity"] == "1,0000"
    assert rows[0]["net_price"] == "450,0000"
    assert rows[0]["line_total"] == "450,00"
    assert rows[0]["tax_rate"] == "19,00"


def test_pdfs_in_the_zip_have_the_documents_sha256(export: Export) -> None:
    with zipfile.ZipFile(export.zip_path) as archive:
        for document in export.documents:
            data = archive.read(f"pdf/{document.archive_key}")
            assert hashlib.sha256(data).hexdigest() == document.sha256


# --- what the export refuses --------------------------------------------------------------------------------


def export_of(documents: list[ExportDocument], target: Path, *, include_pdfs: bool = False) -> Z3Summary:
    return write_z3_export(
        documents, read_pdf, target, period=PERIOD, supplier=SUPPLIER, include_pdfs=include_pdfs
    )


def test_an_export_without_pdfs_or_documents_still_describes_both_tables(tmp_path: Path) -> None:
    progress: list[int] = []
    target = tmp_path / "empty.zip"
    summary = write_z3_export(
        [], read_pdf, target, period=PERIOD, supplier=SUPPLIER, progress=progress.append
    )
    assert (summary.documents, summary.lines, summary.pdfs) == (0, 0, 0)
    assert progress == [0]
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == sorted(["index.xml", DTD_NAME, "documents.csv", "lines.csv"])
        assert archive.read("lines.csv") == LINES.header()


def test_a_pdf_that_does_not_match_its_sha256_fails_the_export(tmp_path: Path) -> None:
    documents = [export_document(0), replace(export_document(1), sha256="0" * 64)]
    target = tmp_path / "z3.zip"
    with pytest.raises(
        Z3ExportError, match=f"document {documents[1].document_id}: .* does not match its SHA-256"
    ):
        export_of(documents, target)
    assert list(tmp_path.iterdir()) == []  # neither the ZIP nor a partial file nor a spool file


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda document: replace(document, issue_date=date(2025, 12, 31)),
            "issued outside the export period",
        ),
        (lambda document: replace(document, document_id=uuid.UUID(int=1)), "is given twice"),
        (lambda document: replace(document, archive_key="../../etc/cron.d/job.pdf"), "no relative file path"),
        (
            lambda document: replace(document, archive_key=export_document(0).archive_key),
            "repeats the archive key",
        ),
    ],
)
def test_documents_that_do_not_fit_fail_the_export(
    tmp_path: Path, change: Callable[[ExportDocument], ExportDocument], message: str
) -> None:
    documents = [export_document(0), change(export_document(1))]
    with pytest.raises(Z3ExportError, match=message):
        export_of(documents, tmp_path / "z3.zip", include_pdfs=True)
    assert not (tmp_path / "z3.zip").exists()


def test_documents_are_taken_one_at_a_time_and_their_pdf_read_before_the_next(tmp_path: Path) -> None:
    events: list[str] = []

    def documents() -> Iterator[ExportDocument]:
        for index in range(3):
            events.append(f"document {index + 1}")
            yield export_document(index)

    def reading(document: ExportDocument) -> bytes:
        events.append(f"pdf {document.number}")
        return read_pdf(document)

    summary = write_z3_export(documents(), reading, tmp_path / "z3.zip", period=PERIOD, supplier=SUPPLIER)
    assert events == [
        "document 1",
        "pdf RE-2026-0001",
        "document 2",
        "pdf RE-2026-0002",
        "document 3",
        "pdf RE-2026-0003",
    ]
    assert (summary.documents, summary.pdfs) == (3, 0)
