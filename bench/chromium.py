"""Documents per CPU-second: postroom's Typst engine against Chromium's print-to-PDF.

Chromium is the engine behind Gotenberg, the usual "HTML in, PDF out" service. Both sides
render the reference invoice with a new document number per round (Typst memoises unchanged
inputs) after one warm-up render, and are charged the CPU time of every process involved:

* Typst runs inside this process (on whatever threads it uses), so its cost is this process's
  CPU time, not wall time.
* Chromium is driven through Playwright's sync API: this process builds the HTML and talks to
  Playwright's Node.js driver, which talks to the browser, its zygotes, renderer and GPU/utility
  processes. Its cost is the CPU time of this process plus all its descendants.

The Chromium side is the best case for Chromium: one warm tab is reused for every document
(Gotenberg opens a tab per conversion). It writes a plain PDF, and so does the first Typst row,
like for like; the second Typst row renders postroom's archive variant, a PDF/A-3b with the
EN 16931 XML built, checked and embedded, and counts its pages: what a document costs postroom.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from bench.render import EXAMPLES, TIMESTAMP, timings
from postroom.documents.catalogue import DocumentType, document_type
from postroom.renderer.engine import Template, Variant
from postroom.renderer.html import sandboxed_environment, svg_data_uri
from postroom.renderer.service import Renderer, page_count
from postroom.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = "reference_invoice"
VARIANT: Variant = "archive"
PLAIN: Variant = "print"
"""The engines' plain-PDF output (no PDF/A, no embedded XML), as Chromium writes it."""

# Headless flags in the spirit of Gotenberg's (chromedp's defaults); Playwright adds its own.
CHROMIUM_ARGS = [
    "--headless=new",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--font-render-hinting=none",
]

# The template is written for WeasyPrint. Chromium clips everything outside the page area and
# knows neither running elements (`position: running()` / `element()`) nor `string()`, so the
# letterhead (above the page area on page 1) would vanish and the footer would print inline at
# the top of page 1. This moves page 1's page area up so the letterhead lies inside it, and hides
# the inline footer, which Chromium gets as its footer template instead (see `_footer_template`).
# Chromium also lets the template's later `@page` margin boxes win over `@page :first`.
_PAGE_CSS = """<style>
@page {{ @top-left {{ content: {title}; }} }}
@page :first {{ margin-top: 10mm; @top-left {{ content: none; }} @top-right {{ content: none; }} }}
.first-page {{ margin-top: 12mm; }}
.page-footer {{ display: none; }}
</style>
"""

# The footer rules of letter.css for Chromium's footer template, which is laid out across the whole
# sheet width in the bottom margin and loads nothing: web fonts do not apply there, so the footer
# prints in the system sans-serif face.
_FOOTER_TEMPLATE = """<style>
.page-footer {{
  width: 100%; padding: 0 20mm 0 25mm;
  font-family: Inter, sans-serif; font-size: 6.8pt; line-height: 1.3; color: #5b6472;
  -webkit-print-color-adjust: exact;
}}
.page-footer .page-of {{ text-align: right; font-size: 7.5pt; margin: 6mm 0 0.5mm; }}
.page-footer .columns {{ display: flex; gap: 4mm; border-top: 0.4pt solid #b9bfc8; padding-top: 2.2mm; }}
.page-footer .columns > div:nth-child(1) {{ flex: 0.9; }}
.page-footer .columns > div:nth-child(2) {{ flex: 1.25; }}
.page-footer .columns > div:nth-child(3) {{ flex: 0.95; }}
.page-footer .columns > div:nth-child(4) {{ flex: 1.3; }}
</style>
<div class="page-footer">{content}</div>
"""

_FOOTER = re.compile(r'<footer class="page-footer">(.*?)</footer>', re.DOTALL)
_PAGE_OF = re.compile(r'\.page-of::after \{ content: "([^"]*) " counter\(page\) " ([^"]*) " counter\(pages\)')
_TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ChromiumPage:
    """What Chromium gets for one document: the page's HTML and the footer template."""

    html: str
    footer_template: str


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal that cannot end the string or the ``<style>`` element."""
    return '"' + "".join(ch if ch.isalnum() or ch in " -.,:/" else f"\\{ord(ch):x} " for ch in text) + '"'


def chromium_page(markup: str) -> ChromiumPage:
    """Adapt the invoice HTML that WeasyPrint would get to Chromium's print model.

    Raises ``RuntimeError`` if the template no longer has the footer, page label or title
    this adaptation relies on.
    """
    footer, page_of, title = _FOOTER.search(markup), _PAGE_OF.search(markup), _TITLE.search(markup)
    if footer is None or page_of is None or title is None:
        raise RuntimeError("the invoice HTML template changed: adapt bench/chromium.py's Chromium page")
    page, of = (html.escape(label) for label in page_of.groups())
    numbers = f'{page} <span class="pageNumber"></span> {of} <span class="totalPages"></span>'
    numbered = f'<div class="page-of">{numbers}</div>'
    content = footer.group(1).replace('<div class="page-of"></div>', numbered, 1)
    style = _PAGE_CSS.format(title=_css_string(html.unescape(title.group(1))))
    return ChromiumPage(
        html=markup.replace("</head>", style + "</head>", 1),
        footer_template=_FOOTER_TEMPLATE.format(content=content),
    )


class InvoiceHtml:
    """The invoice's HTML exactly as :class:`~postroom.renderer.html.HtmlEngine` hands it to WeasyPrint."""

    def __init__(self, renderer: Renderer, doc_type: DocumentType) -> None:
        self.doc_type = doc_type
        self.template: Template = renderer.template_for(doc_type, None, "html")
        environment = sandboxed_environment(self.template, "html")
        environment.filters["svg_data_uri"] = svg_data_uri
        entry = self.template.entry.relative_to(self.template.folder).as_posix()
        self.jinja = environment.get_template(entry)

    def render(self, body: dict[str, Any]) -> str:
        """Validate ``body``, build its context and render the HTML of its archive variant."""
        context = self.doc_type.context(self.doc_type.parse(body))
        return self.jinja.render({**context, "variant": VARIANT})


def _cpu_seconds(process: psutil.Process) -> float:
    # The children's share holds the CPU time of descendants that exited and were reaped: psutil
    # cannot see dead processes, but their time lands with a parent we do see.
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def tree_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process and each living descendant, by kind.

    Kinds: ``python`` (this process), ``chromium`` (browser, zygotes, renderer, GPU and
    utility processes) and ``driver`` (anything else, i.e. Playwright's Node.js driver).
    A descendant that exits is counted only if its parent, also in the tree, reaped it.
    """
    me = psutil.Process()
    totals = {"python": _cpu_seconds(me), "chromium": 0.0, "driver": 0.0}
    for child in me.children(recursive=True):
        try:
            seconds = _cpu_seconds(child)
            kind = "chromium" if "chrom" in child.name().lower() else "driver"
        except psutil.NoSuchProcess:
            continue
        totals[kind] += seconds
    return totals


@dataclass(frozen=True, slots=True)
class Measured:
    """CPU seconds by kind, wall seconds and per-document durations of the measured rounds."""

    cpu: dict[str, float]
    wall_seconds: float
    durations: list[float]


def measure(count: int, render_one: Callable[[int], object]) -> Measured:
    """Call ``render_one(index)`` ``count`` times and account CPU time of the whole process tree."""
    before = tree_cpu_seconds()
    durations = []
    started = time.perf_counter()
    for index in range(count):
        begun = time.perf_counter()
        render_one(index)
        durations.append(time.perf_counter() - begun)
    wall = time.perf_counter() - started
    after = tree_cpu_seconds()
    return Measured({kind: after[kind] - before[kind] for kind in after}, wall, durations)


def _row(name: str, count: int, measured: Measured, cpu: float, pages: int) -> dict[str, Any]:
    return {
        "name": name,
        "count": count,
        **timings(measured.durations),
        "docs_per_second": count / measured.wall_seconds,
        "docs_per_cpu_second": count / cpu,
        "cpu_seconds": cpu,
        "wall_seconds": measured.wall_seconds,
        "pages": pages,
    }


def _example() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{EXAMPLE}.json").read_text(encoding="utf-8"))
    return body


def bench_typst(renderer: Renderer, count: int) -> dict[str, Any]:
    """The reference invoice's archive variant through postroom's Renderer with the Typst engine,
    in this process: PDF/A-3b with the EN 16931 XML built, checked and embedded, pages counted."""
    body = _example()
    doc_type = document_type(body["type"])
    pages = 0

    def render_one(index: int) -> None:
        nonlocal pages
        body["data"]["number"] = f"RE-TYPST-{index:06d}"
        rendering = renderer.render(
            doc_type, doc_type.parse(body), [VARIANT], timestamp=TIMESTAMP, engine="typst"
        )
        pages = rendering.pdfs[VARIANT].pages

    render_one(count)  # warm-up, with a number no round uses
    measured = measure(count, render_one)
    # Only this process: idle children left by other benches are none of Typst's business.
    name = f"cpu: {EXAMPLE.replace('_', ' ')} (typst, archive: PDF/A-3b + XML)"
    return _row(name, count, measured, measured.cpu["python"], pages)


def bench_typst_plain(renderer: Renderer, count: int) -> dict[str, Any]:
    """The reference invoice as a plain PDF from the Typst engine: the work Chromium's row does
    (parse the request, build the context, lay out and write the PDF), nothing more."""
    body = _example()
    doc_type = document_type(body["type"])
    template = renderer.template_for(doc_type, None, "typst")
    engine = renderer.engines["typst"]
    pdf = b""

    def render_one(index: int) -> None:
        nonlocal pdf
        body["data"]["number"] = f"RE-PLAIN-{index:06d}"
        context = doc_type.context(doc_type.parse(body))
        pdf = engine.render(template, context, PLAIN, timestamp=TIMESTAMP)

    render_one(count)
    measured = measure(count, render_one)
    name = f"cpu: {EXAMPLE.replace('_', ' ')} (typst, plain PDF as Chromium's)"
    return _row(name, count, measured, measured.cpu["python"], page_count(pdf))


@contextmanager
def _browser() -> Iterator[Browser]:
    """A headless Chromium (the Debian package) driven by Playwright, closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise RuntimeError("Playwright is not installed: run `make install`") from error
    if not CHROMIUM.is_file():
        raise RuntimeError(
            f"Chromium is not installed at {CHROMIUM}: run `make install` (bootstrap installs it)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def bench_chromium(renderer: Renderer, count: int) -> dict[str, Any]:
    """The reference invoice as postroom's HTML template, printed to PDF by Chromium.

    The page first loads the template's folder, so that the HTML given to ``set_content``
    resolves its stylesheets and fonts (``letter.css``, ``../../fonts/``) as it does for
    WeasyPrint. Each PDF is A4 with backgrounds, the template's ``@page`` margins and the
    footer template.
    """
    body = _example()
    invoice = InvoiceHtml(renderer, document_type(body["type"]))
    pdf = b""
    with _browser() as browser:
        page = browser.new_page()
        page.goto(invoice.template.folder.as_uri() + "/")

        def render_one(index: int) -> None:
            nonlocal pdf
            body["data"]["number"] = f"RE-CHROMIUM-{index:06d}"
            adapted = chromium_page(invoice.render(body))
            page.set_content(adapted.html)
            pdf = page.pdf(
                format="A4",
                print_background=True,
                prefer_css_page_size=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=adapted.footer_template,
            )

        render_one(count)
        measured = measure(count, render_one)
    if b"Inter-Regular" not in pdf:
        raise RuntimeError("Chromium printed the invoice without the template's Inter font")
    cpu = sum(measured.cpu.values())
    row = _row(f"cpu: {EXAMPLE.replace('_', ' ')} (chromium)", count, measured, cpu, page_count(pdf))
    row["browser_docs_per_cpu_second"] = count / measured.cpu["chromium"]
    row["driver_cpu_seconds"] = measured.cpu["driver"]
    row["python_cpu_seconds"] = measured.cpu["python"]
    return row


def run(count: int) -> list[dict[str, Any]]:
    """Typst (plain PDF, then postroom's archive variant), then Chromium (so neither is charged
    for the other), on ``count`` documents each.

    Each Typst row carries ``ratio_to_chromium``: its documents per CPU-second divided by
    Chromium's (and ``wall_ratio_to_chromium``, the same for documents per second). The plain row
    compares like with like; the archive row is what a postroom document costs.
    """
    renderer = Renderer.for_folder(PROJECT_ROOT / "templates")
    typst = [bench_typst_plain(renderer, count), bench_typst(renderer, count)]
    chromium = bench_chromium(renderer, count)
    for row in typst:
        row["ratio_to_chromium"] = row["docs_per_cpu_second"] / chromium["docs_per_cpu_second"]
        row["wall_ratio_to_chromium"] = row["docs_per_second"] / chromium["docs_per_second"]
    return [*typst, chromium]
