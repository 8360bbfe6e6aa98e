"""DOCX engine: docxtpl fills a Word template in a Jinja2 sandbox, pooled LibreOffice makes the PDF.

The template's ``.docx`` is read and checked once per content hash and kept in memory; each
render fills a fresh copy with docxtpl, using the same sandboxed, autoescaping Jinja2
environment as the HTML engine (``{% import %}`` and ``{% include %}`` reach only the
template's folder and ``_shared/docx``), so request data is always text in ``<w:t>``.

A document may not pull anything from outside: a template (and, checked again after filling,
the filled document) is refused when a relationship has ``TargetMode="External"`` (linked
images, attached templates, mail-merge sources; hyperlinks excepted, as they are never
fetched), when it embeds alternative-format chunks or macros, or when a field would load a
file or another program's data (``INCLUDETEXT``, ``INCLUDEPICTURE``, ``LINK``, ``DDE``, ...).

LibreOffice runs in a :class:`~postroom.renderer.libreoffice.OfficePool`, started on the
first docx render (never at import or construction) and stopped by :meth:`DocxEngine.close`
or at interpreter exit. Its PDF is normalised so identical input gives identical bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.opc.part import Part
from docxtpl import DocxTemplate
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree
from markupsafe import Markup

from postroom.renderer.engine import Template, TemplateError, Variant
from postroom.renderer.html import SandboxLoader, jinja_failure
from postroom.renderer.libreoffice import PDF_A_3B, PDF_PLAIN, OfficePool, normalize_pdf

_PDF_VERSION: dict[Variant, int] = {"archive": PDF_A_3B, "print": PDF_PLAIN, "email": PDF_A_3B}
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_HYPERLINK = RELATIONSHIP_TYPE.HYPERLINK
_REFUSED_TYPES = ("/aFChunk", "/subDocument", "/vbaProject", "/oleObject", "/package")
_FIELD_INSTRUCTION = re.compile(rb'<w:instrText[^>]*>([^<]*)</w:instrText>|w:instr="([^"]*)"')
_REFUSED_FIELDS = re.compile(r"\b(INCLUDETEXT|INCLUDEPICTURE|INCLUDE|LINK|DDE|DDEAUTO|IMPORT|RD|DATABASE)\b")
_EMU_PER_MM = 36000


def refuse_external_content(document: bytes, label: str) -> None:
    """Raise :class:`TemplateError` if the .docx ``document`` would make LibreOffice load anything else."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(document))
    except zipfile.BadZipFile:
        raise TemplateError(f"{label}: the template is not a .docx (zip) file") from None
    with archive:
        for name in archive.namelist():
            if name.lower().endswith(("vbaproject.bin", ".bin")) and "vba" in name.lower():
                raise TemplateError(f"{label}: {name} holds macros; docx templates may not contain macros")
            if name.endswith(".rels"):
                for relationship in etree.fromstring(archive.read(name)).iter(_RELATIONSHIPS):
                    kind = relationship.get("Type", "")
                    short = kind.rsplit("/", 1)[-1]
                    external = relationship.get("TargetMode") == "External" and kind != _HYPERLINK
                    if external or kind.endswith(_REFUSED_TYPES):
                        raise TemplateError(
                            f"{label}: {name} relationship {relationship.get('Id')} ({short}) "
                            + ("points outside the document" if external else "embeds foreign content")
                            + "; a docx template may not pull external resources"
                        )
            elif name.startswith("word/") and name.endswith(".xml"):
                instructions = "".join(
                    (match[1] or match[2]).decode("utf-8", "replace")
                    for match in _FIELD_INSTRUCTION.finditer(archive.read(name))
                )
                field = _REFUSED_FIELDS.search(instructions.upper())
                if field is not None:
                    raise TemplateError(
                        f"{label}: {name} has a {field[1]} field, which loads external content; "
                        "a docx template may not pull external resources"
                    )


class _CachingEnvironment(SandboxedEnvironment):
    """The sandbox, remembering compiled parts: docxtpl compiles each part from a string on every render."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiled: dict[str, jinja2.Template] = {}
        self._compiled_lock = threading.Lock()

    def from_string(  # type: ignore[override]
        self, source: str, globals: MutableMapping[str, Any] | None = None, template_class: Any = None
    ) -> jinja2.Template:
        """Compile ``source`` once per distinct text (a template has a handful of parts)."""
        if globals is not None or template_class is not None:
            return super().from_string(source, globals, template_class)
        key = hashlib.sha256(source.encode("utf-8")).hexdigest()
        with self._compiled_lock:
            compiled = self._compiled.get(key)
        if compiled is None:
            compiled = super().from_string(source)
            with self._compiled_lock:
                if len(self._compiled) > 64:
                    self._compiled.clear()
                self._compiled[key] = compiled
        return compiled


@dataclass(slots=True)
class _Prepared:
    sha256: str
    source: bytes
    environment: _CachingEnvironment


class DocxEngine:
    """Renders ``.docx`` templates with docxtpl and converts them with a LibreOffice pool."""

    name = "docx"

    def __init__(
        self,
        fonts: Path,
        pool: OfficePool | None = None,
        *,
        pool_size: int = 2,
        max_conversions: int = 200,
        timeout: float = 60.0,
    ) -> None:
        self.fonts = fonts.resolve()
        self.pool = pool or OfficePool(
            fonts=self.fonts, size=pool_size, max_conversions=max_conversions, timeout=timeout
        )
        self._prepared: dict[Path, _Prepared] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def close(self) -> None:
        """Stop the LibreOffice processes (they start again on the next render)."""
        self.pool.close()
        self.pool.reopen()

    def _prepare(self, template: Template) -> _Prepared:
        with self._lock:
            prepared = self._prepared.get(template.entry)
        if prepared is not None and prepared.sha256 == template.sha256:
            return prepared
        source = template.entry.read_bytes()
        refuse_external_content(source, _label(template))
        environment = _CachingEnvironment(
            loader=SandboxLoader([template.folder, template.root / "_shared" / self.name]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
        )
        environment.filters["svg_image"] = self._svg_image
        prepared = _Prepared(template.sha256, source, environment)
        with self._lock:
            self._prepared[template.entry] = prepared
        return prepared

    def _svg_image(self, svg: str | None, width_mm: float = 17.0, height_mm: float | None = None) -> Markup:
        """Jinja filter: an SVG document as an inline picture of ``width_mm`` (empty for ``None``).

        The picture is a part of the filled document (never a link); LibreOffice draws SVG
        pictures as vectors.
        """
        if not svg:
            return Markup("")
        document: DocxTemplate = self._local.document
        part = document.current_rendering_part
        image = Part(
            part.package.next_partname("/word/media/svg%d.svg"),
            "image/svg+xml",
            svg.encode("utf-8"),
            part.package,
        )
        relationship = part.relate_to(image, RELATIONSHIP_TYPE.IMAGE)
        width = int(width_mm * _EMU_PER_MM)
        height = int((height_mm or width_mm) * _EMU_PER_MM)
        self._local.pictures = getattr(self._local, "pictures", 0) + 1
        picture_id = 5000 + self._local.pictures
        # Every interpolated value is a number or a relationship id python-docx made.
        return Markup(  # noqa: S704
            '</w:t></w:r><w:r><w:drawing><wp:inline distT="0" distB="0" distL="0" distR="0" '
            'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
            f'<wp:extent cx="{width}" cy="{height}"/>'
            f'<wp:docPr id="{picture_id}" name="Picture {picture_id}"/>'
            '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
            '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            '<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
            f'<pic:nvPicPr><pic:cNvPr id="{picture_id}" name="picture.svg"/><pic:cNvPicPr/></pic:nvPicPr>'
            '<pic:blipFill><a:blip xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'relationships" r:embed="{relationship}"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
            f'<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{width}" cy="{height}"/></a:xfrm>'
            '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData>'
            '</a:graphic></wp:inline></w:drawing></w:r><w:r><w:t xml:space="preserve">'
        )

    def fill(self, template: Template, context: Mapping[str, Any], variant: Variant) -> bytes:
        """The template filled with ``context`` as .docx bytes (checked for external content)."""
        prepared = self._prepare(template)
        document = DocxTemplate(io.BytesIO(prepared.source))
        self._local.document, self._local.pictures = document, 0
        try:
            document.render({**context, "variant": variant}, jinja_env=prepared.environment, autoescape=True)
        except Exception as error:  # Jinja2 errors and the template's own TypeErrors alike
            raise jinja_failure(template, error, context) from None
        finally:
            self._local.document = None
        buffer = io.BytesIO()
        document.save(buffer)
        filled = buffer.getvalue()
        refuse_external_content(filled, _label(template))
        return filled

    def render(
        self, template: Template, context: Mapping[str, Any], variant: Variant, *, timestamp: datetime
    ) -> bytes:
        """Fill ``template`` and convert it with LibreOffice; archive and e-mail variants are PDF/A-3b."""
        filled = self.fill(template, context, variant)
        pdf = self.pool.convert(filled, suffix=".docx", pdf_version=_PDF_VERSION[variant])
        return normalize_pdf(pdf, timestamp)


def _label(template: Template) -> str:
    return f"{template.id} v{template.version} (docx)"
