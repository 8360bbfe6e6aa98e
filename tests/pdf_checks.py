"""Checks on rendered PDFs shared by the test modules: window, fonts, PDF/A-3b and text.

Every ``pdf`` argument is the bytes of a PDF or a :class:`pypdf.PdfReader` over them.
Positions are in PDF points; ``y`` is measured from the top edge of an A4 page, as DIN 5008 does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeAlias

import pdfplumber
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, PdfObject

from postroom.documents.catalogue import document_type
from postroom.renderer.engine import Variant
from postroom.renderer.service import Renderer
from postroom.settings import PROJECT_ROOT

Pdf: TypeAlias = bytes | PdfReader
Box: TypeAlias = tuple[float, float, float, float]
"""x from, x to, y from, y to (from the top edge), in points."""
Word: TypeAlias = dict[str, Any]
"""A word as :meth:`pdfplumber.page.Page.extract_words` gives it (``text``, ``x0``, ``x1``, ``top``, …)."""

MM = 72 / 25.4
"""One millimetre in points."""
PAGE_HEIGHT = 297 * MM
"""The height of an A4 page."""
WINDOW: Box = (20 * MM, 110 * MM, 45 * MM, 90 * MM)
"""The window of a DL window envelope: 90 × 45 mm at x 20, y 45 mm."""
ADDRESS_FIELD: Box = (20 * MM, 105 * MM, 45 * MM, 90 * MM)
"""The address field of a DIN 5008 form B letter: 85 × 45 mm at x 20, y 45 mm."""
TIMESTAMP = datetime(2026, 11, 20, 12, tzinfo=UTC)
"""When :func:`render_example` renders; it only sets the PDFs' dates."""
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
PDFAID = "http://www.aiim.org/pdfa/ns/id/"


def reader_of(pdf: Pdf) -> PdfReader:
    """``pdf`` as a reader."""
    return pdf if isinstance(pdf, PdfReader) else PdfReader(io.BytesIO(pdf))


# --- rendering and text --------------------------------------------------------------------------


@cache
def renderer() -> Renderer:
    """The production renderer over the shipped templates, shared by all test modules."""
    return Renderer.for_folder(PROJECT_ROOT / "templates")


def render_example(
    body: Mapping[str, Any], variant: Variant = "email", *, engine: str | None = None
) -> bytes:
    """``body`` (a request as JSON data) rendered in ``variant`` at :data:`TIMESTAMP`.

    ``engine`` picks the template of that engine (and checks it was used); renders are cached
    for the session, so modules asking for the same document share one.
    """
    return _render(json.dumps(body, ensure_ascii=False), variant, engine)


@cache
def _render(body: str, variant: Variant, engine: str | None) -> bytes:
    request = json.loads(body)
    doc_type = document_type(request["type"])
    rendering = renderer().render(
        doc_type, doc_type.parse(request), [variant], timestamp=TIMESTAMP, engine=engine
    )
    if engine is not None:
        assert rendering.template.engine == engine
    return rendering.pdfs[variant].data


def page_texts(pdf: Pdf) -> list[str]:
    """The text of each page, non-breaking spaces (between figure and unit) read as spaces."""
    return [page.extract_text().replace("\xa0", " ") for page in reader_of(pdf).pages]


def text_of(pdf: Pdf) -> str:
    """The text of all pages, one after the other; see :func:`page_texts`."""
    return "\n".join(page_texts(pdf))


def flowing(text: str) -> str:
    """``text`` as one line: every run of white space, line breaks included, read as one space."""
    return " ".join(text.split())


def assert_contains(text: str, expected: Iterable[str]) -> None:
    """Every one of ``expected`` is in ``text``; the message lists those that are not."""
    missing = [fragment for fragment in expected if fragment not in text]
    assert not missing, missing


# --- the window ----------------------------------------------------------------------------------


def text_fragments(pdf: Pdf, page: int = 0) -> list[tuple[str, float, float]]:
    """The non-blank text fragments of a page (stripped) with the point each starts at: ``(text, x, y)``."""
    found: list[tuple[str, float, float]] = []

    def visit(text: str, cm: Any, tm: Any, _font: Any, _size: Any) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y_from_top = PAGE_HEIGHT - (tm[4] * cm[1] + tm[5] * cm[3] + cm[5])
            found.append((text.strip(), x, y_from_top))

    reader_of(pdf).pages[page].extract_text(visitor_text=visit)
    return found


def window_fragments(pdf: Pdf) -> list[str]:
    """The text fragments on page 1 that start inside the :data:`WINDOW`."""
    left, right, top, bottom = WINDOW
    return [text for text, x, y in text_fragments(pdf) if left <= x <= right and top <= y <= bottom]


def postal_address(recipient: Mapping[str, Any]) -> list[str]:
    """The lines of a domestic address: name, attention (if any), street, postcode and city."""
    lines = [recipient["name"], recipient.get("attention"), recipient["street"]]
    return [str(line) for line in lines if line] + [f"{recipient['postcode']} {recipient['city']}"]


def return_line_of(seller: Mapping[str, Any]) -> str:
    """The seller's small return-address line above the address."""
    return f"{seller['name']} · {seller['street']} · {seller['postcode']} {seller['city']}"


def assert_only_address_in_window(pdf: Pdf, address: Sequence[str], return_line: str) -> None:
    """Each line of ``address`` prints in the window; besides, at most (parts of) ``return_line``."""
    inside = window_fragments(pdf)
    missing = [line for line in address if line not in inside]
    assert not missing, f"{missing} must print inside the window"
    allowed = [*address, return_line]
    strangers = [fragment for fragment in inside if not any(fragment in line for line in allowed)]
    assert not strangers, f"{strangers} print inside the window"


def page_words(pdf: bytes, *, text_flow: bool = False) -> list[Word]:
    """The words of page 1 as pdfplumber finds them (in content-stream order with ``text_flow``)."""
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        words: list[Word] = document.pages[0].extract_words(use_text_flow=text_flow)
    return words


def within(word: Word, box: Box) -> bool:
    """``word`` lies wholly inside ``box``."""
    return bool(
        box[0] <= word["x0"] and word["x1"] <= box[1] and box[2] <= word["top"] and word["bottom"] <= box[3]
    )


def overlaps(word: Word, box: Box) -> bool:
    """Some of ``word`` lies inside ``box``."""
    return bool(
        word["x0"] < box[1] and word["x1"] > box[0] and word["top"] < box[3] and word["bottom"] > box[2]
    )


# --- fonts and PDF/A -----------------------------------------------------------------------------


def _resolved(value: PdfObject | None) -> PdfObject | None:
    return value.get_object() if isinstance(value, IndirectObject) else value


def fonts(pdf: Pdf) -> list[DictionaryObject]:
    """Every font the pages use, also in the form XObjects they draw, each once."""
    found: dict[tuple[int, int] | int, DictionaryObject] = {}
    visited: set[int] = set()

    def visit(resources: PdfObject | None) -> None:
        resources = _resolved(resources)
        if not isinstance(resources, DictionaryObject) or id(resources) in visited:
            return
        visited.add(id(resources))
        font_dict = _resolved(resources.get("/Font"))
        for reference in font_dict.values() if isinstance(font_dict, DictionaryObject) else ():
            font = _resolved(reference)
            assert isinstance(font, DictionaryObject)
            key = (
                (reference.idnum, reference.generation) if isinstance(reference, IndirectObject) else id(font)
            )
            found.setdefault(key, font)
            visit(font.get("/Resources"))  # a Type 3 font's glyphs may use fonts too
        xobjects = _resolved(resources.get("/XObject"))
        for reference in xobjects.values() if isinstance(xobjects, DictionaryObject) else ():
            xobject = _resolved(reference)
            if isinstance(xobject, DictionaryObject) and xobject.get("/Subtype") == "/Form":
                visit(xobject.get("/Resources"))

    for page in reader_of(pdf).pages:
        visit(page.get("/Resources"))
    return list(found.values())


def font_names(pdf: Pdf) -> list[str]:
    """The ``/BaseFont`` of each of :func:`fonts`."""
    return [str(font.get("/BaseFont")) for font in fonts(pdf)]


def is_embedded(font: DictionaryObject) -> bool:
    """The font's program is in the file: its descriptor, or a descendant font's, has a font file.

    A Type 3 font (no font file) counts as not embedded: the templates use OpenType fonts only.
    """
    descendants = _resolved(font.get("/DescendantFonts"))
    children = [_resolved(child) for child in descendants] if isinstance(descendants, ArrayObject) else []
    descriptors = [_resolved(font.get("/FontDescriptor"))] + [
        _resolved(child.get("/FontDescriptor")) for child in children if isinstance(child, DictionaryObject)
    ]
    return any(
        key in descriptor
        for descriptor in descriptors
        if isinstance(descriptor, DictionaryObject)
        for key in FONT_FILES
    )


def unembedded_fonts(pdf: Pdf) -> list[str]:
    """The names of the fonts that are not embedded; see :func:`is_embedded`."""
    return [str(font.get("/BaseFont")) for font in fonts(pdf) if not is_embedded(font)]


def declares_pdf_a_3b(pdf: Pdf) -> bool:
    """The XMP metadata declares PDF/A part 3, conformance B, exactly once each (as element or attribute)."""
    metadata = reader_of(pdf).xmp_metadata
    if metadata is None:
        return False
    tree = etree.fromstring(metadata.stream.get_data())

    def declared(name: str) -> list[str]:
        found = tree.xpath(f"//pdfaid:{name} | //@pdfaid:{name}", namespaces={"pdfaid": PDFAID})
        assert isinstance(found, list)
        return [str(item.text) if isinstance(item, etree._Element) else str(item) for item in found]

    return declared("part") == ["3"] and declared("conformance") == ["B"]
