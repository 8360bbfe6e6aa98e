"""Previews: a PDF variant, or page 1 as PNG, rendered without delivering anything."""

from __future__ import annotations

import io

import pypdfium2


def first_page_png(pdf: bytes, dpi: int = 110) -> bytes:
    """Page 1 of ``pdf`` as a PNG at ``dpi`` dots per inch (pdfium)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()
