"""The GoBD data export for a tax audit ("Datenträgerüberlassung", Z3 access).

:func:`write_z3_export` writes one ZIP that an auditor's analysis software (IDEA and
others) imports as it is:

``index.xml``
    The description of the tables after the GDPdU "Beschreibungsstandard", checked against
    ``gdpdu-01-09-2004.dtd``, which lies next to it.
``documents.csv``
    One record per archived document (invoice, credit note, letter): number, type, date,
    customer id, totals, SHA-256 and archive key of its PDF.
``lines.csv``
    One record per invoice line of every document whose PDF embeds an e-invoice
    (``factur-x.xml``), as the XML states it; a letter has no lines.
``pdf/<archive key>``
    The archived PDFs themselves, with ``include_pdfs``.

Both CSV files are UTF-8 without byte order mark, ``;`` between columns, CR LF after each
record, text in ``"`` (a ``"`` inside doubled), numbers with a decimal comma and no digit
grouping, dates as ``DD.MM.YYYY``. The first record of each file names the columns; the
table's ``Range`` starts the import at record 2.

Only the customer id (the pseudonymous customer number) identifies a customer; names and
addresses stay in the PDFs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO, Literal

import pikepdf
from lxml import etree

from postroom.einvoice.read import InvoiceLine, UnreadableInvoiceXml, extract_cii, read_cii_lines

DTD_NAME = "gdpdu-01-09-2004.dtd"
INDEX_NAME = "index.xml"
PDF_FOLDER = "pdf"
GDPDU_VERSION = "1.0"
DATE_FORMAT = "DD.MM.YYYY"
"""The date format in the GDPdU notation, for the ``Date`` columns and the validity period."""
COLUMN_DELIMITER = ";"
RECORD_DELIMITER = "\r\n"
TEXT_ENCAPSULATOR = '"'
DECIMAL_SYMBOL = ","
DIGIT_GROUPING_SYMBOL = "."
"""Declared because the DTD wants it together with the decimal symbol; no value is grouped."""
PROGRESS_EVERY = 100
"""``progress`` is called after every this many documents, and once at the end."""
SPOOL_IN_MEMORY = 8 * 1024 * 1024
"""Bytes of each CSV file kept in memory before it moves to a temporary file on disk."""

Kind = Literal["AlphaNumeric", "Numeric", "Date"]
Value = str | Decimal | date | None
"""A field before formatting: text, number, date, or ``None`` for an empty field."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


class Z3ExportError(ValueError):
    """The export cannot be made from the documents given; names the document id, never personal data."""


@dataclass(frozen=True, slots=True)
class ExportDocument:
    """One archived document as the export lists it; ``sha256`` is that of its archived PDF."""

    document_id: uuid.UUID
    number: str
    document_type: str
    issue_date: date
    customer_id: str | None
    order_reference: str | None
    currency: str
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    sha256: str
    archive_key: str
    retain_until: datetime | None


@dataclass(frozen=True)
class Z3Summary:
    """What one export holds: records per CSV file, PDFs, and the finished ZIP's SHA-256 and size."""

    documents: int
    lines: int
    pdfs: int
    sha256: str
    einvoices: int
    """Documents whose PDF embeds an e-invoice (and so have records in ``lines.csv``)."""
    size: int
    path: Path


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV column as ``index.xml`` describes it; ``accuracy`` is the decimals of a Numeric."""

    name: str
    description: str
    kind: Kind
    accuracy: int = 0

    def format(self, value: Value) -> str:
        """``value`` as this column's CSV field (not yet delimited)."""
        if value is None:
            return ""
        if self.kind == "AlphaNumeric" and isinstance(value, str):
            return _encapsulated(value)
        if self.kind == "Numeric" and isinstance(value, Decimal):
            return _number(value, self.accuracy)
        if self.kind == "Date" and isinstance(value, date) and not isinstance(value, datetime):
            return _date(value)
        raise TypeError(f"column {self.name} ({self.kind}) cannot hold a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class CsvTable:
    """One CSV file of the export and its description in ``index.xml``.

    ``foreign_key`` names this table's columns that refer to the primary key of the table
    named ``references``; both use the same column names, so no ``Alias`` is needed.
    """

    url: str
    name: str
    description: str
    primary_key: tuple[Column, ...]
    columns: tuple[Column, ...]
    foreign_key: tuple[str, ...] = ()
    references: str | None = None

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Primary key columns first, then the others: the order of the CSV fields."""
        return self.primary_key + self.columns

    def header(self) -> bytes:
        """The first record: the column names."""
        return self._join(_encapsulated(column.name) for column in self.all_columns)

    def record(self, values: Sequence[Value]) -> bytes:
        """One record of ``values``, in the order of :attr:`all_columns`."""
        columns = self.all_columns
        if len(values) != len(columns):
            raise ValueError(f"{self.name} has {len(columns)} columns, {len(values)} values given")
        return self._join(column.format(value) for column, value in zip(columns, values, strict=True))

    @staticmethod
    def _join(fields: Iterable[str]) -> bytes:
        return (COLUMN_DELIMITER.join(fields) + RECORD_DELIMITER).encode("utf-8")


def _text(name: str, description: str) -> Column:
    return Column(name, description, "AlphaNumeric")


def _amount(name: str, description: str) -> Column:
    return Column(name, description, "Numeric", accuracy=2)


_DOCUMENT_KEY = (
    _text("document_number", "Belegnummer (Rechnungs-, Gutschrift- oder Schreibennummer)"),
    _text("document_id", "Beleg-ID (UUID), eindeutig je Beleg"),
)

DOCUMENTS = CsvTable(
    url="documents.csv",
    name="documents",
    description="Archivierte Belege: Rechnungen, Gutschriften und Schreiben mit Beträgen und Prüfsumme",
    primary_key=_DOCUMENT_KEY,
    columns=(
        _text("document_type", "Belegart (invoice, credit_note, dunning_letter, ...)"),
        Column("issue_date", "Belegdatum", "Date"),
        _text("customer_id", "Kundennummer"),
        _text("order_reference", "Bestellnummer des Kunden"),
        _text("currency", "Währung (ISO 4217)"),
        _amount("net_total", "Nettobetrag"),
        _amount("tax_total", "Umsatzsteuer"),
        _amount("gross_total", "Bruttobetrag"),
        Column("line_count", "Anzahl der Positionen in lines.csv (0: keine E-Rechnung)", "Numeric"),
        _text("sha256", "SHA-256 der archivierten PDF-Datei (hexadezimal)"),
        _text("archive_key", "Schlüssel im Archiv; beigelegte PDF-Datei unter pdf/<archive_key>"),
        Column("retain_until", "Aufbewahrung bis (Datum in UTC)", "Date"),
    ),
)

LINES = CsvTable(
    url="lines.csv",
    name="lines",
    description="Rechnungspositionen aus der eingebetteten E-Rechnung (factur-x.xml, EN 16931)",
    primary_key=(*_DOCUMENT_KEY, _text("line_id", "Positionsnummer (BT-126)")),
    columns=(
        _text("name", "Bezeichnung der Leistung (BT-153)"),
        Column("quantity", "Menge (BT-129)", "Numeric", accuracy=4),
        _text("unit_code", "Mengeneinheit, UN/ECE Rec. 20 (BT-130)"),
        Column("net_price", "Nettopreis je Einheit (BT-146)", "Numeric", accuracy=4),
        _amount("line_total", "Nettobetrag der Position (BT-131)"),
        _text("tax_category", "Umsatzsteuerkategorie, UNTDID 5305 (BT-151)"),
        Column("tax_rate", "Umsatzsteuersatz in Prozent (BT-152); leer bei Kategorie O", "Numeric", 2),
    ),
    foreign_key=tuple(column.name for column in _DOCUMENT_KEY),
    references=DOCUMENTS.name,
)


@cache
def gdpdu_dtd() -> bytes:
    """The GDPdU DTD of 01-09-2004 shipped with this package, which ``index.xml`` names."""
    return (resources.files(__name__) / DTD_NAME).read_bytes()


def index_xml(period: tuple[date, date], supplier: str, location: str = "") -> bytes:
    """``index.xml`` describing :data:`DOCUMENTS` and :data:`LINES` for documents issued in ``period``."""
    start, end = period
    data_set = etree.Element("DataSet")
    _element(data_set, "Version", GDPDU_VERSION)
    data_supplier = _element(data_set, "DataSupplier")
    _element(data_supplier, "Name", supplier)
    _element(data_supplier, "Location", location)
    _element(
        data_supplier, "Comment", f"Archivierte Belege mit Belegdatum vom {_date(start)} bis {_date(end)}"
    )
    media = _element(data_set, "Media")
    _element(media, "Name", f"Belegarchiv {_date(start)} bis {_date(end)}")
    for table in (DOCUMENTS, LINES):
        _table(media, table, period)
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(
        data_set, encoding="UTF-8", pretty_print=True, doctype=f'<!DOCTYPE DataSet SYSTEM "{DTD_NAME}">'
    )
    # lxml escapes the CR of the record delimiter but writes the LF as a line break; every
    # published example spells out both, which reads the same and survives editors.
    return xml.replace(
        b"<RecordDelimiter>&#13;\n</RecordDelimiter>", b"<RecordDelimiter>&#13;&#10;</RecordDelimiter>"
    )


def write_z3_export(
    documents: Iterable[ExportDocument],
    read_pdf: Callable[[ExportDocument], bytes],
    target: Path,
    *,
    period: tuple[date, date],
    supplier: str,
    include_pdfs: bool = False,
    progress: Callable[[int], None] | None = None,
    location: str = "",
) -> Z3Summary:
    """Write the Z3 export of ``documents`` (issued in ``period``) to the ZIP file ``target``.

    ``read_pdf`` gives each document's archived PDF; its SHA-256 must be the document's,
    its embedded ``factur-x.xml`` (if any) gives the lines. ``supplier`` and ``location``
    name the taxpayer in ``index.xml``. ``progress`` gets the number of documents done
    after every :data:`PROGRESS_EVERY` documents and once at the end.

    Memory stays bounded whatever the number of documents: ``documents`` is read once,
    one at a time, and one PDF is held at a time. A ZIP file takes one member at a time,
    while each document adds to both CSV files (and to ``pdf/``), so the two CSV files are
    first written to spooled temporary files (in memory up to :data:`SPOOL_IN_MEMORY`
    bytes each, then on disk next to ``target``) and copied into the ZIP at the end; the
    PDFs go into the ZIP as they come. Only the document ids and archive keys seen are
    kept, to refuse duplicates.

    The ZIP is written under a temporary name and renamed to ``target`` when complete, so
    a failed export leaves no partial file. Raises :class:`Z3ExportError` for a document
    that does not fit (issued outside ``period``, given twice, PDF not matching its
    SHA-256 or unreadable, unsafe archive key).
    """
    start, end = period
    if start > end:
        raise ValueError("the period ends before it starts")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    stamp = time.localtime()[:6]
    export = _Export(include_pdfs=include_pdfs, period=period)
    try:
        with (
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            _spool(target.parent) as documents_csv,
            _spool(target.parent) as lines_csv,
        ):
            archive.writestr(_member(INDEX_NAME, stamp), index_xml(period, supplier, location))
            archive.writestr(_member(DTD_NAME, stamp), gdpdu_dtd())
            documents_csv.write(DOCUMENTS.header())
            lines_csv.write(LINES.header())
            for document in documents:
                export.add(document, read_pdf(document), archive, documents_csv, lines_csv, stamp)
                if progress is not None and export.documents % PROGRESS_EVERY == 0:
                    progress(export.documents)
            _copy_into(archive, DOCUMENTS.url, documents_csv, stamp)
            _copy_into(archive, LINES.url, lines_csv, stamp)
        digest, size = _sha256_of(partial)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if progress is not None and (export.documents % PROGRESS_EVERY or not export.documents):
        progress(export.documents)  # unless the loop just reported this count
    return Z3Summary(
        documents=export.documents,
        lines=export.lines,
        pdfs=export.pdfs,
        sha256=digest,
        einvoices=export.einvoices,
        size=size,
        path=target,
    )


class _Export:
    """The running counts of one export and the keys it has seen."""

    def __init__(self, *, include_pdfs: bool, period: tuple[date, date]) -> None:
        self.include_pdfs = include_pdfs
        self.period = period
        self.documents = 0
        self.lines = 0
        self.pdfs = 0
        self.einvoices = 0
        self._document_ids: set[uuid.UUID] = set()
        self._archive_keys: set[str] = set()

    def add(
        self,
        document: ExportDocument,
        pdf: bytes,
        archive: zipfile.ZipFile,
        documents_csv: IO[bytes],
        lines_csv: IO[bytes],
        stamp: tuple[int, int, int, int, int, int],
    ) -> None:
        """Check ``document`` and its PDF, then write its records and, if wanted, the PDF."""
        self._check(document, pdf)
        lines = _lines_of(document, pdf)
        documents_csv.write(DOCUMENTS.record(_document_values(document, lines)))
        for line in lines or ():
            lines_csv.write(LINES.record(_line_values(document, line)))
        if self.include_pdfs:
            archive.writestr(_member(f"{PDF_FOLDER}/{document.archive_key}", stamp), pdf)
            self.pdfs += 1
        self.documents += 1
        if lines is not None:
            self.einvoices += 1
            self.lines += len(lines)

    def _check(self, document: ExportDocument, pdf: bytes) -> None:
        start, end = self.period
        label = f"document {document.document_id}"
        if document.document_id in self._document_ids:
            raise Z3ExportError(f"{label} is given twice")
        self._document_ids.add(document.document_id)
        if not start <= document.issue_date <= end:
            raise Z3ExportError(f"{label} was issued outside the export period")
        expected = document.sha256.lower()
        if not _SHA256.fullmatch(expected):
            raise Z3ExportError(f"{label} has no SHA-256 of 64 hexadecimal digits")
        if hashlib.sha256(pdf).hexdigest() != expected:
            raise Z3ExportError(f"{label}: the archived PDF does not match its SHA-256")
        if self.include_pdfs:
            if not _safe_member_path(document.archive_key):
                raise Z3ExportError(f"{label} has an archive key that is no relative file path")
            if document.archive_key in self._archive_keys:
                raise Z3ExportError(f"{label} repeats the archive key of another document")
            self._archive_keys.add(document.archive_key)


def _lines_of(document: ExportDocument, pdf: bytes) -> list[InvoiceLine] | None:
    """The invoice lines of the PDF's e-invoice; ``None`` when it embeds none."""
    try:
        xml = extract_cii(pdf)
    except pikepdf.PdfError:
        raise Z3ExportError(f"document {document.document_id}: the archived PDF cannot be read") from None
    if xml is None:
        return None
    try:
        return read_cii_lines(xml)
    except UnreadableInvoiceXml as error:
        raise Z3ExportError(f"document {document.document_id}: {error}") from error


def _document_values(document: ExportDocument, lines: list[InvoiceLine] | None) -> tuple[Value, ...]:
    retain_until = document.retain_until
    if retain_until is not None and retain_until.tzinfo is not None:
        retain_until = retain_until.astimezone(UTC)
    return (
        document.number,
        str(document.document_id),
        document.document_type,
        document.issue_date,
        document.customer_id,
        document.order_reference,
        document.currency,
        document.net_total,
        document.tax_total,
        document.gross_total,
        Decimal(len(lines or ())),
        document.sha256.lower(),
        document.archive_key,
        None if retain_until is None else retain_until.date(),
    )


def _line_values(document: ExportDocument, line: InvoiceLine) -> tuple[Value, ...]:
    return (
        document.number,
        str(document.document_id),
        line.line_id,
        line.name,
        line.quantity,
        line.unit_code,
        line.net_price,
        line.line_total,
        line.tax_category,
        line.tax_rate,
    )


def _number(value: Decimal, accuracy: int) -> str:
    """``value`` rounded half up to ``accuracy`` decimals, with the decimal comma: ``1234,50``."""
    if not value.is_finite():
        raise ValueError("a number in the export must be finite")
    rounded = value.quantize(Decimal(1).scaleb(-accuracy), rounding=ROUND_HALF_UP)
    if rounded.is_zero():
        rounded = abs(rounded)  # no "-0,00"
    return f"{rounded:f}".replace(".", DECIMAL_SYMBOL)


def _encapsulated(text: str) -> str:
    """``text`` in the text encapsulator, an encapsulator inside doubled (``a"b`` as ``"a""b"``)."""
    doubled = text.replace(TEXT_ENCAPSULATOR, TEXT_ENCAPSULATOR * 2)
    return f"{TEXT_ENCAPSULATOR}{doubled}{TEXT_ENCAPSULATOR}"


def _date(value: date) -> str:
    return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"


def _safe_member_path(key: str) -> bool:
    """Whether ``key`` unpacks below ``pdf/``: relative, forward slashes, no ``..`` or empty parts."""
    parts = key.split("/")
    return (
        bool(key)
        and "\\" not in key
        and "\x00" not in key
        and not PurePosixPath(key).is_absolute()
        and all(part not in ("", ".", "..") for part in parts)
    )


def _member(name: str, stamp: tuple[int, int, int, int, int, int], size: int = 0) -> zipfile.ZipInfo:
    member = zipfile.ZipInfo(name, date_time=stamp)
    member.compress_type = zipfile.ZIP_DEFLATED
    member.external_attr = 0o644 << 16
    # A known size lets zipfile choose ZIP64 headers for a member beyond 2 GiB.
    member.file_size = size
    return member


def _spool(directory: Path) -> tempfile.SpooledTemporaryFile[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=str(directory))


def _copy_into(
    archive: zipfile.ZipFile, name: str, spool: IO[bytes], stamp: tuple[int, int, int, int, int, int]
) -> None:
    size = spool.tell()
    spool.seek(0)
    with archive.open(_member(name, stamp, size), "w") as member:
        shutil.copyfileobj(spool, member, 1024 * 1024)


def _sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest(), os.path.getsize(path)


def _element(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, name)
    if text is not None:
        element.text = text
    return element


def _table(media: etree._Element, table: CsvTable, period: tuple[date, date]) -> None:
    """One ``Table`` in the element order the DTD prescribes."""
    start, end = period
    element = _element(media, "Table")
    _element(element, "URL", table.url)
    _element(element, "Name", table.name)
    _element(element, "Description", table.description)
    validity = _element(element, "Validity")
    validity_range = _element(validity, "Range")
    _element(validity_range, "From", _date(start))
    _element(validity_range, "To", _date(end))
    _element(validity, "Format", DATE_FORMAT)
    _element(element, "UTF8")
    _element(element, "DecimalSymbol", DECIMAL_SYMBOL)
    _element(element, "DigitGroupingSymbol", DIGIT_GROUPING_SYMBOL)
    _element(_element(element, "Range"), "From", "2")  # record 1 names the columns
    layout = _element(element, "VariableLength")
    _element(layout, "ColumnDelimiter", COLUMN_DELIMITER)
    _element(layout, "RecordDelimiter", RECORD_DELIMITER)
    _element(layout, "TextEncapsulator", TEXT_ENCAPSULATOR)
    for column in table.primary_key:
        _column(layout, "VariablePrimaryKey", column)
    for column in table.columns:
        _column(layout, "VariableColumn", column)
    if table.foreign_key and table.references:
        foreign_key = _element(layout, "ForeignKey")
        for name in table.foreign_key:
            _element(foreign_key, "Name", name)
        _element(foreign_key, "References", table.references)


def _column(layout: etree._Element, tag: str, column: Column) -> None:
    element = _element(layout, tag)
    _element(element, "Name", column.name)
    _element(element, "Description", column.description)
    kind = _element(element, column.kind)
    if column.kind == "Numeric":
        _element(kind, "Accuracy", str(column.accuracy))
    elif column.kind == "Date":
        _element(kind, "Format", DATE_FORMAT)
