"""HTML (WeasyPrint) and DOCX (docxtpl + pooled LibreOffice) engines beside Typst.

LibreOffice conversions cost about a second each, so every docx rendering is done once per
module (``rendered``) and the pool tests share one small pool.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pdfplumber
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import parse_xml

from postroom.documents.catalogue import document_type
from postroom.renderer.docx import DocxEngine
from postroom.renderer.engine import TemplateError, Variant
from postroom.renderer.html import HtmlEngine
from postroom.renderer.libreoffice import OfficeError, OfficePool
from postroom.renderer.service import Renderer
from postroom.renderer.templates import TemplateStore
from postroom.settings import PROJECT_ROOT
from tests.conftest import example
from tests.pdf_checks import (
    MM,
    TIMESTAMP,
    WINDOW,
    declares_pdf_a_3b,
    font_names,
    overlaps,
    page_words,
    postal_address,
    reader_of,
    render_example,
    renderer,
    return_line_of,
    text_of,
    unembedded_fonts,
    within,
)

ENGINES = ("typst", "html", "docx")
FONTS = PROJECT_ROOT / "templates" / "fonts"


@pytest.fixture(scope="module", autouse=True)
def _stop_pool() -> Iterator[None]:
    yield
    docx_engine = renderer().engines["docx"]
    assert isinstance(docx_engine, DocxEngine)
    docx_engine.close()


def rendered(engine: str, variant: Variant = "print") -> bytes:
    """The example invoice rendered with ``engine``'s template."""
    return render_example(example("invoice"), variant, engine=engine)


def invoice_tokens() -> list[str]:
    """Every figure, date, address line and identifier of examples/invoice.json, formatted."""
    body = example("invoice")
    doc_type = document_type(body["type"])
    context = doc_type.context(doc_type.parse(body))
    tokens = [context["number"], context["issue_date"], context["delivery_date"], context["due_date"]]
    tokens += [context["order_reference"], context["recipient"]["customer_number"]]
    tokens += [value for line in context["lines"] for value in (line["unit_price"], line["total"])]
    tokens += [value for group in context["taxes"] for value in (group["net"], group["tax"])]
    tokens += list(context["totals"].values())
    tokens += [line for line in context["recipient"]["address"] if line]
    seller = context["seller"]
    tokens += [seller["vat_id"], seller["tax_number"], seller["iban"], seller["bic"], seller["register"]]
    tokens += [seller["return_address"], *seller["address"]]
    labels = ["Rechnung RE-2026-000123", "Nettobetrag", "Rechnungsbetrag", "19 % USt. auf 12.150,00 €"]
    labels += [
        "Verwendungszweck",
        "Scannen & bezahlen",
        "§ 286 Abs. 3 BGB",
        "Die Leistung wurde am 15.11.2026",
    ]
    labels += ["Geschäftsführer:", "Dr. Anna Beispiel", "Jonas Muster", "Sitz: Köln", "Seite 1 von 1"]
    return [str(token).replace("\xa0", " ") for token in tokens + labels]


def test_the_docx_pool_starts_only_on_the_first_docx_render() -> None:
    engine = Renderer.for_folder(PROJECT_ROOT / "templates").engines["docx"]
    assert isinstance(engine, DocxEngine)
    assert engine.pool.started == 0
    assert engine.pool.processes == []


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_prints_the_same_invoice_content(engine: str) -> None:
    text = text_of(rendered(engine))
    missing = [token for token in invoice_tokens() if token not in text]
    assert not missing, f"{engine} lacks {missing}"


@pytest.mark.parametrize("engine", ["html", "docx"])
def test_archive_variant_declares_pdf_a_3(engine: str) -> None:
    assert declares_pdf_a_3b(rendered(engine, "archive"))


@pytest.mark.parametrize("engine", ["html", "docx"])
def test_identical_input_gives_identical_bytes(engine: str) -> None:
    first = rendered(engine)
    body = example("invoice")
    doc_type = document_type(body["type"])
    again = renderer().render(doc_type, doc_type.parse(body), ["print"], timestamp=TIMESTAMP, engine=engine)
    assert again.pdfs["print"].data == first
    metadata = reader_of(first).metadata
    assert metadata is not None
    assert metadata.creation_date == TIMESTAMP  # dates come from the timestamp, not the clock


@pytest.mark.parametrize("engine", ["html", "docx"])
def test_every_font_is_embedded_inter(engine: str) -> None:
    pdf = rendered(engine)
    assert not unembedded_fonts(pdf)
    names = font_names(pdf)
    assert names
    assert all("Inter" in name for name in names), names


@pytest.mark.parametrize("engine", ["html", "docx"])
def test_only_the_address_prints_inside_the_window(engine: str) -> None:
    words = page_words(rendered(engine))
    inside = [word["text"] for word in words if within(word, WINDOW)]
    overlapping = [word["text"] for word in words if overlaps(word, WINDOW)]
    body = example("invoice")
    address = postal_address(body["recipient"])
    allowed = " ".join([*address, return_line_of(body["data"]["seller"])]).split()
    assert " ".join(inside).count("Mustermann") == 1
    for line in address:
        assert all(word in inside for word in line.split()), f"{line!r} is not inside the window"
    assert inside == overlapping, "something lies across the window's edge"
    for word in inside:
        assert word in allowed, f"{word!r} prints inside the window"


@pytest.mark.parametrize("engine", ["html", "docx"])
def test_the_print_variant_is_the_archive_rendering_without_marks(engine: str) -> None:
    """The posted letter is the archived one; the print file adds the marks (tests/test_print.py)."""
    printed = rendered(engine, "print")
    assert printed == rendered(engine, "archive")
    with pdfplumber.open(io.BytesIO(printed)) as document:
        page = document.pages[0]
        edges = [*page.lines, *page.rects]
    assert not [edge for edge in edges if edge["x0"] < 10 * MM and edge["x1"] < 15 * MM]


# --- the HTML sandbox ---------------------------------------------------------------------


def html_template(root: Path, source: str, name: str = "evil") -> TemplateStore:
    folder = root / name / "html"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(
        f'id = "{name}"\nversion = 1\nengine = "html"\nentry = "main.html.j2"\n', encoding="utf-8"
    )
    (folder / "main.html.j2").write_text(source, encoding="utf-8")
    return TemplateStore(root)


def render_html(root: Path, source: str, context: dict[str, Any] | None = None) -> bytes:
    store = html_template(root, source)
    return HtmlEngine(FONTS).render(store.resolve("evil"), context or {}, "email", timestamp=TIMESTAMP)


@pytest.mark.parametrize(
    "source",
    [
        '<img src="file:///etc/passwd">',
        "<style>@import url(http://127.0.0.1:9/x.css);</style><p>x</p>",
        '<link rel="stylesheet" href="../../../../../../etc/passwd">',
        '<img src="https://example.org/logo.png">',
        '<img src="data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22%3E'
        '%3Cimage href=%22file:///etc/passwd%22/%3E%3C/svg%3E">',
    ],
)
def test_html_templates_cannot_reach_outside_their_sandbox(tmp_path: Path, source: str) -> None:
    with pytest.raises(TemplateError, match="not a file inside the template sandbox"):
        render_html(tmp_path, source)


def test_html_templates_may_use_their_own_files_and_data_urls(tmp_path: Path) -> None:
    (tmp_path / "evil" / "html").mkdir(parents=True)
    (tmp_path / "evil" / "html" / "style.css").write_text("p { color: red }", encoding="utf-8")
    pdf = render_html(
        tmp_path,
        '<link rel="stylesheet" href="style.css"><img src="data:image/svg+xml,'
        '%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%221%22 height=%221%22/%3E"><p>{{ name }}</p>',
        {"name": "<b>Erika</b>"},
    )
    assert "<b>Erika</b>" in text_of(pdf)  # autoescaped: data is text, never markup


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "failed to render"),
        ('{% include "../../../../etc/passwd" %}', "not in the template sandbox"),
        ('{% include "/etc/passwd" %}', "not in the template sandbox"),
        ("{{ numbr }}", "'numbr' is undefined"),
    ],
)
def test_jinja_sandbox(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render_html(tmp_path, source, {"number": "RE-1"})


def test_html_errors_do_not_quote_data(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        render_html(tmp_path, "{{ name | int(strict) }}{{ name.split()[5] }}", {"name": "Erika Mustermann"})
    assert "Mustermann" not in str(caught.value)
    assert "evil v1 (html)" in str(caught.value)


# --- docx: external content ----------------------------------------------------------------


def docx_template(root: Path, build: Any) -> TemplateStore:
    folder = root / "evil" / "docx"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(
        'id = "evil"\nversion = 1\nengine = "docx"\nentry = "main.docx"\n', encoding="utf-8"
    )
    document = docx.Document()
    document.add_paragraph("Hello {{ name }}")
    build(document)
    document.save(str(folder / "main.docx"))
    return TemplateStore(root)


def linked_image(document: Any) -> None:
    document.part.relate_to("file:///etc/passwd", RELATIONSHIP_TYPE.IMAGE, is_external=True)


def include_text(document: Any) -> None:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    document.element.body.insert(
        0, parse_xml(f"<w:p {w}><w:fldSimple w:instr=' INCLUDETEXT \"/etc/passwd\" '/></w:p>")
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [(linked_image, r"relationship rId\d+ \(image\) points outside"), (include_text, "INCLUDETEXT field")],
)
def test_docx_templates_may_not_pull_external_resources(tmp_path: Path, build: Any, message: str) -> None:
    store = docx_template(tmp_path, build)
    engine = DocxEngine(FONTS)
    with pytest.raises(TemplateError, match=message):
        engine.render(store.resolve("evil"), {"name": "x"}, "email", timestamp=TIMESTAMP)
    assert engine.pool.started == 0  # refused before LibreOffice was involved


def test_docx_errors_name_the_template_not_the_data(tmp_path: Path) -> None:
    store = docx_template(tmp_path, lambda document: document.add_paragraph("{{ name.missing }}"))
    with pytest.raises(TemplateError) as caught:
        DocxEngine(FONTS).fill(store.resolve("evil"), {"name": "Erika Mustermann"}, "email")
    assert "evil v1 (docx)" in str(caught.value)
    assert "'missing'" in str(caught.value)
    assert "Mustermann" not in str(caught.value)


# --- the LibreOffice pool -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Pool test")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_pool_recycles_and_kills_hung_conversions(small_docx: bytes) -> None:
    pool = OfficePool(fonts=FONTS, size=1, max_conversions=2)
    try:
        assert pool.processes == []
        assert b"%PDF" in pool.convert(small_docx)[:8]
        (first,) = pool.processes
        pool.convert(small_docx)  # the second conversion retires the process
        assert pool.processes == []
        assert not alive(first)
        pool.convert(small_docx)
        (second,) = pool.processes
        assert second != first
        assert pool.started == 2

        with pytest.raises(OfficeError, match=r"exceeded 0\.001 s"):
            pool.convert(small_docx, timeout=0.001)  # no conversion is that fast: taken as hung
        assert pool.processes == []
        assert not alive(second)
        assert "Pool test" in text_of(pool.convert(small_docx))  # a fresh process took its place
        assert pool.started == 3
    finally:
        pool.close()
    assert pool.processes == []
