"""HTML engine: a sandboxed Jinja2 template rendered to HTML, laid out as PDF by WeasyPrint.

The sandbox has two walls. Jinja2 runs in a ``SandboxedEnvironment`` with autoescaping,
loading templates only from the template's folder and ``_shared/html`` (no ``..``, no
symlinks leading out), so request data is always text, never markup or code. WeasyPrint
fetches every stylesheet, font and image through :class:`SandboxFetcher`, which serves
files below the template's folder, ``_shared/html`` and ``fonts/`` and ``data:`` URLs, and
fails the render on anything else (other local files, ``http(s)://``, ``ftp://`` ...).

Output is byte-identical for identical input: the PDF dates come from the ``timestamp``
argument (never the clock), WeasyPrint derives the document ``/ID`` from the content, and
fonts are subset deterministically.
"""

from __future__ import annotations

import base64
import mimetypes
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
import weasyprint
from jinja2.sandbox import SandboxedEnvironment
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from postroom.renderer.engine import Template, TemplateError, Variant, redact

_PDF_VARIANT: dict[Variant, str | None] = {"archive": "pdf/a-3b", "print": None, "email": "pdf/a-3b"}


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


class SandboxLoader(jinja2.FileSystemLoader):
    """A file loader that refuses templates resolving (through symlinks) outside its folders."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = [folder.resolve() for folder in folders]
        super().__init__([str(folder) for folder in self.folders if folder.is_dir()])

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """The source of ``template``, if it lies inside the sandbox."""
        source, filename, uptodate = super().get_source(environment, template)
        if not _inside(Path(filename).resolve(), self.folders):
            raise jinja2.TemplateNotFound(template)
        return source, filename, uptodate


def sandboxed_environment(template: Template, engine: str) -> SandboxedEnvironment:
    """A sandboxed, autoescaping Jinja2 environment over ``template``'s folder and ``_shared/<engine>``.

    Undefined names and attributes raise (``StrictUndefined``) so a misspelt field fails the
    render with its name instead of printing nothing; optional values arrive as ``None``.
    """
    return SandboxedEnvironment(
        loader=SandboxLoader([template.folder, template.root / "_shared" / engine]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def jinja_failure(template: Template, error: Exception, context: Mapping[str, Any]) -> TemplateError:
    """A :class:`TemplateError` for a Jinja2 failure that names the file and line but no data."""
    where = ""
    if isinstance(error, jinja2.TemplateSyntaxError):
        where = f" ({error.name or error.filename or template.entry.name}, line {error.lineno})"
    elif isinstance(error, jinja2.TemplateNotFound):
        return TemplateError(
            f"{template.id} v{template.version} ({template.engine}): template file "
            f"{redact(str(error.name), context)!r} is not in the template sandbox"
        )
    message = redact(str(error).splitlines()[0] if str(error) else "", context)
    return TemplateError(
        f"{template.id} v{template.version} ({template.engine}) failed to render{where}: "
        f"{type(error).__name__}: {message}"
    )


def svg_data_uri(svg: str | None) -> str:
    """Jinja filter: an SVG document as a ``data:`` URL for ``<img src>`` (empty for ``None``)."""
    if not svg:
        return ""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


class SandboxFetcher(URLFetcher):  # type: ignore[misc]
    """WeasyPrint URL fetcher serving only sandbox files and ``data:`` URLs.

    Everything else raises, and with ``fail_on_errors`` WeasyPrint turns that into a
    ``FatalURLFetchingError`` that stops the render. Refused URLs are also recorded,
    because WeasyPrint swallows errors raised while drawing SVG images.
    """

    def __init__(self, folders: list[Path]) -> None:
        super().__init__(fail_on_errors=True, allowed_protocols={"file", "data"}, allow_redirects=False)
        self.folders = [folder.resolve() for folder in folders]
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        """Serve ``url`` if it is a ``data:`` URL or a file inside the sandbox; raise otherwise."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file" and parts.netloc in ("", "localhost"):
            path = Path(url2pathname(unquote(parts.path))).resolve()
            if _inside(path, self.folders) and path.is_file():
                mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime_type})
        self.refused.append(url)
        raise PermissionError("resource outside the template sandbox")


@dataclass(slots=True)
class _Compiled:
    sha256: str
    environment: SandboxedEnvironment
    template: jinja2.Template


def pdf_date(timestamp: datetime) -> str:
    """``timestamp`` as a W3C date in UTC, the form WeasyPrint writes to /CreationDate and XMP."""
    return timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HtmlEngine:
    """Renders Jinja2 HTML templates with WeasyPrint; a warm environment per template and thread."""

    name = "html"

    def __init__(self, fonts: Path) -> None:
        self.fonts = fonts.resolve()
        self._local = threading.local()

    def _compiled(self, template: Template) -> _Compiled:
        cache: dict[Path, _Compiled] = self._local.__dict__.setdefault("compiled", {})
        compiled = cache.get(template.entry)
        if compiled is None or compiled.sha256 != template.sha256:
            environment = sandboxed_environment(template, self.name)
            environment.filters["svg_data_uri"] = svg_data_uri
            try:
                entry = template.entry.relative_to(template.folder).as_posix()
                compiled = _Compiled(template.sha256, environment, environment.get_template(entry))
            except jinja2.TemplateError as error:
                raise jinja_failure(template, error, {}) from None
            cache[template.entry] = compiled
        return compiled

    def _sandbox(self, template: Template) -> list[Path]:
        return [template.folder, template.root / "_shared" / self.name, self.fonts]

    def render(
        self, template: Template, context: Mapping[str, Any], variant: Variant, *, timestamp: datetime
    ) -> bytes:
        """Render ``template`` with ``context``; the archive variant is PDF/A-3b."""
        compiled = self._compiled(template)
        try:
            markup = compiled.template.render({**context, "variant": variant})
        except Exception as error:  # Jinja2 raises its own errors and the template's TypeErrors alike
            raise jinja_failure(template, error, context) from None
        fetcher = SandboxFetcher(self._sandbox(template))
        label = f"{template.id} v{template.version} (html)"
        try:
            document = weasyprint.HTML(
                string=markup, base_url=template.folder.as_uri() + "/", url_fetcher=fetcher
            ).render()
            document.metadata.created = document.metadata.modified = pdf_date(timestamp)
            pdf = document.write_pdf(pdf_variant=_PDF_VARIANT[variant])
        except FatalURLFetchingError:
            pass  # reported below with the refused URL
        except Exception as error:
            raise TemplateError(f"{label} failed to lay out: {type(error).__name__}") from None
        else:
            if not fetcher.refused and isinstance(pdf, bytes):
                return pdf
        if fetcher.refused:
            url = redact(fetcher.refused[0], context)
            raise TemplateError(
                f"{label} loads {url!r}, which is not a file inside the template sandbox "
                "(only files of the template, _shared/html, fonts/ and data: URLs may be used)"
            )
        raise TemplateError(f"{label} could not load one of its resources")
