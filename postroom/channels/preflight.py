"""Checks a PDF must pass before it goes to paper: A4, fonts embedded, only the address in the window.

Print and e-letter run it before a piece joins a batch or is uploaded; a failure is
permanent (the same PDF fails again) and its message never quotes the document's text.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf
import pypdfium2 as pdfium

from postroom.channels.base import DeliveryRejected, Handoff
from postroom.channels.printing.print_file import inherited
from postroom.documents.formatting import Formatter, address_lines, return_address
from postroom.documents.parties import Recipient, Seller

MM = 72 / 25.4
A4 = (210 * MM, 297 * MM)
TOLERANCE = 1.0  # points
WINDOW = (20 * MM, 110 * MM, 45 * MM, 90 * MM)
"""The window of a DL/C6-5 envelope (x from, x to, y from, y to, from the top left), DIN 5008 form B."""
FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")


class PreflightFailed(DeliveryRejected):
    """The PDF cannot go to paper as it is."""

    code = "preflight_failed"


@dataclass(frozen=True, slots=True)
class PreflightLimits:
    """A channel's own limits (a hybrid-mail provider's page and size caps, say)."""

    max_pages: int | None = None
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class PreflightReport:
    """What a passed check learnt of the PDF."""

    pages: int
    size_bytes: int


def preflight(
    pdf: bytes,
    recipient: Recipient,
    seller: Seller,
    *,
    locale: str = "de",
    limits: PreflightLimits = PreflightLimits(),
) -> PreflightReport:
    """Check ``pdf`` for paper; raise :class:`PreflightFailed` naming every problem found."""
    problems: list[str] = []
    if limits.max_bytes is not None and len(pdf) > limits.max_bytes:
        problems.append(f"{len(pdf)} bytes exceed the limit of {limits.max_bytes}")
    # qpdf reads the page tree and the fonts' dictionaries in a tenth of pypdf's time.
    try:
        document = pikepdf.open(io.BytesIO(pdf))
    except (pikepdf.PdfError, ValueError) as error:
        raise PreflightFailed(f"not a readable PDF ({type(error).__name__})") from None
    with document:
        pages = len(document.pages)
        if pages == 0:
            raise PreflightFailed("the PDF has no pages")
        if limits.max_pages is not None and pages > limits.max_pages:
            problems.append(f"{pages} pages exceed the limit of {limits.max_pages}")
        off_size = [number for number, page in enumerate(document.pages, 1) if not _is_a4_portrait(page.obj)]
        if off_size:
            problems.append(f"page(s) {_listing(off_size)} are not A4 portrait")
        unembedded = sorted({name for page in document.pages for name in _unembedded_fonts(page.obj)})
    if unembedded:
        problems.append(f"{len(unembedded)} font(s) not embedded")
    problems.extend(_window_problems(pdf, recipient, seller, locale))
    if problems:
        raise PreflightFailed("; ".join(problems))
    return PreflightReport(pages=pages, size_bytes=len(pdf))


def _listing(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def _is_a4_portrait(page: pikepdf.Object) -> bool:
    box = inherited(page, "/MediaBox")
    if not isinstance(box, pikepdf.Array) or len(box) != 4:
        return False
    rotate = inherited(page, "/Rotate")
    rotation = int(rotate or 0) % 360
    width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
    if rotation in (90, 270):
        width, height = height, width
    return abs(width - A4[0]) <= TOLERANCE and abs(height - A4[1]) <= TOLERANCE


def _fonts(resources: pikepdf.Object | None, seen: set[tuple[int, int]]) -> Iterator[pikepdf.Dictionary]:
    if not isinstance(resources, pikepdf.Dictionary):
        return
    if resources.is_indirect:  # only an indirect object can be met again
        if resources.objgen in seen:
            return
        seen.add(resources.objgen)
    fonts = resources.get("/Font")
    for font in fonts.values() if isinstance(fonts, pikepdf.Dictionary) else ():
        if isinstance(font, pikepdf.Dictionary):
            yield font
            yield from _fonts(font.get("/Resources"), seen)  # Type 3 glyphs may use fonts
    xobjects = resources.get("/XObject")
    for xobject in xobjects.values() if isinstance(xobjects, pikepdf.Dictionary) else ():
        if isinstance(xobject, pikepdf.Stream) and xobject.get("/Subtype") == "/Form":
            yield from _fonts(xobject.get("/Resources"), seen)


def _unembedded_fonts(page: pikepdf.Object) -> Iterator[str]:
    for font in _fonts(inherited(page, "/Resources"), set()):
        if font.get("/Subtype") == "/Type3":
            continue  # glyphs drawn by the PDF itself: nothing to embed
        descendants = font.get("/DescendantFonts")
        children = list(descendants) if isinstance(descendants, pikepdf.Array) else []
        descriptors = [font.get("/FontDescriptor")] + [
            child.get("/FontDescriptor") for child in children if isinstance(child, pikepdf.Dictionary)
        ]
        if not any(
            key in descriptor
            for descriptor in descriptors
            if isinstance(descriptor, pikepdf.Dictionary)
            for key in FONT_FILES
        ):
            yield str(font.get("/BaseFont", "unnamed"))


_PDFIUM = threading.Lock()
"""PDFium may not be called from two threads at once, not even for different documents."""


def window_text(pdf: bytes) -> list[str]:
    """The text runs of page 1 that start inside the :data:`WINDOW`.

    PDFium reads the page about twenty times faster than pypdf's text extraction, which
    dominated the cost of a print piece.
    """
    left, right, top, bottom = WINDOW
    found: list[str] = []
    with _PDFIUM:
        document = pdfium.PdfDocument(pdf)
        try:
            page = document[0]
            height = page.get_height()
            text = page.get_textpage()
            for index in range(text.count_rects()):
                x0, y0, x1, y1 = text.get_rect(index)
                middle = height - (y0 + y1) / 2
                if left <= x0 <= right and top <= middle <= bottom:
                    run = text.get_text_bounded(x0, y0, x1, y1).strip()
                    if run:
                        found.append(run)
        finally:
            document.close()
    return found


def _window_problems(pdf: bytes, recipient: Recipient, seller: Seller, locale: str) -> list[str]:
    address = address_lines(recipient, Formatter(locale), home_country=seller.country)
    allowed = [*address, return_address(seller)]
    inside = window_text(pdf)
    problems = []
    if not set(recipient.name.split()) <= set(" ".join(inside).split()):
        problems.append("the recipient's name does not print inside the envelope window")
    strangers = [fragment for fragment in inside if not any(fragment in line for line in allowed)]
    if strangers:
        problems.append(f"{len(strangers)} text fragment(s) besides the address print inside the window")
    return problems


async def preflight_handoff(handoff: Handoff, limits: PreflightLimits) -> PreflightReport:
    """:func:`preflight` of a hand-off's PDF for its recipient, off the event loop."""
    return await asyncio.to_thread(
        preflight, handoff.pdf, handoff.recipient, handoff.seller, locale=handoff.locale, limits=limits
    )
