"""Rendering a validated request into the PDF variants its channels need."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pikepdf

from postroom.documents.catalogue import DocumentType
from postroom.documents.request import DocumentRequest
from postroom.renderer.engine import Engine, Template, TemplateError, Variant
from postroom.renderer.templates import TemplateStore
from postroom.renderer.typst import TypstEngine

RENDERED_AS: dict[Variant, Variant] = {"email": "archive", "print": "archive"}
"""The e-mail and print variants are the archive variant, byte for byte: what the recipient was
sent or posted is what the auditor finds (GoBD), and a document is laid out once whatever its
channels. The marks a letter shop needs on paper (fold and hole marks, the inserter code) are
drawn onto the sheets by the print channel when it builds a print file, not into the document."""


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    """One rendered variant with its fingerprint."""

    variant: Variant
    data: bytes
    sha256: str
    pages: int


@dataclass(frozen=True, slots=True)
class Rendering:
    """All variants of one document, and the template that produced them."""

    template: Template
    pdfs: Mapping[Variant, RenderedPdf]


def page_count(pdf: bytes) -> int:
    """Number of pages of a PDF (qpdf reads only the page tree: a tenth of pypdf's time)."""
    with pikepdf.open(io.BytesIO(pdf)) as document:
        return len(document.pages)


class Renderer:
    """Picks the template and engine for a document and renders the requested variants."""

    def __init__(self, templates: TemplateStore, engines: Iterable[Engine]) -> None:
        self.templates = templates
        self.engines = {engine.name: engine for engine in engines}

    @classmethod
    def for_folder(
        cls,
        root: Path,
        *,
        office_pool_size: int = 2,
        office_max_conversions: int = 200,
        office_timeout_seconds: float = 60.0,
    ) -> Renderer:
        """A renderer over the template folder ``root`` with every available engine.

        The docx engine's LibreOffice pool (``office_*``) starts on the first docx render, not
        here; stop it with ``renderer.engines["docx"].close()`` (it also stops at exit).
        """
        from postroom.renderer.docx import DocxEngine
        from postroom.renderer.html import HtmlEngine

        store = TemplateStore(root)
        docx = DocxEngine(
            store.fonts,
            pool_size=office_pool_size,
            max_conversions=office_max_conversions,
            timeout=office_timeout_seconds,
        )
        return cls(store, [TypstEngine(store.fonts), HtmlEngine(store.fonts), docx])

    def template_for(
        self, doc_type: DocumentType, requested: str | None, engine: str | None = None
    ) -> Template:
        """The template a document of ``doc_type`` uses (the request may pin one)."""
        template = self.templates.resolve(requested or doc_type.template, engine)
        if template.engine not in self.engines:
            raise TemplateError(f"engine {template.engine!r} is not available")
        return template

    def render(
        self,
        doc_type: DocumentType,
        request: DocumentRequest,
        variants: Iterable[Variant],
        *,
        timestamp: datetime,
        engine: str | None = None,
    ) -> Rendering:
        """Render each of ``variants`` once (the e-mail and print variants as the archive variant, see
        :data:`RENDERED_AS`).

        For a voucher type (``doc_type.einvoice``) the archive variant carries its EN 16931 CII
        XML as ``factur-x.xml`` (a print file takes the pages only).
        """
        from postroom.einvoice.cii import cii_document
        from postroom.einvoice.embed import embed_cii

        template = self.template_for(doc_type, request.template, engine)
        context = doc_type.context(request)
        renderer = self.engines[template.engine]
        requested = list(dict.fromkeys(variants))
        made: dict[Variant, RenderedPdf] = {}
        for source in dict.fromkeys(RENDERED_AS.get(variant, variant) for variant in requested):
            data = renderer.render(template, context, source, timestamp=timestamp)
            if source == "archive" and doc_type.einvoice is not None:
                data = embed_cii(data, cii_document(doc_type.einvoice(request)), modified=timestamp)
            made[source] = RenderedPdf(
                variant=source, data=data, sha256=hashlib.sha256(data).hexdigest(), pages=page_count(data)
            )
        pdfs = {
            variant: dataclasses.replace(made[RENDERED_AS.get(variant, variant)], variant=variant)
            for variant in requested
        }
        return Rendering(template=template, pdfs=pdfs)
