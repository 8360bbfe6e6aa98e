"""Typst engine: the shipped catalogue's engine, a warm compiler per template and thread.

Data reaches the template as one JSON string in ``sys.inputs.context`` and is
never evaluated as Typst markup, so request data cannot inject template code.
The compiler's root is the template's sandbox root (no reads outside it), system
fonts are ignored (only the vendored fonts), and templates importing packages
(which Typst would download) are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import typst

from postroom.renderer.engine import Template, TemplateError, Variant, redact

_PACKAGE_IMPORT = re.compile(r"""["']@[a-z]+/""")
# E-mail and archive copies are PDF/A-3b: the form that may carry an e-invoice (Factur-X) and
# that a recipient can archive as received. The print file goes to the letter shop as plain PDF.
_PDF_STANDARD: dict[Variant, Literal["a-3b"] | None] = {"archive": "a-3b", "print": None, "email": "a-3b"}


def empty_package_folder() -> Path:
    """Typst's package folder: one empty folder of this user's, shared by its processes and kept.

    A folder per engine would be left behind by every worker killed outright. This one is
    made read-only so nothing lands in it (root aside); one that is not this user's own
    directory (say, planted in the shared temporary folder) is not used, a fresh one is.
    """
    folder = Path(tempfile.gettempdir()) / f"postroom-typst-packages-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=stat.S_IRWXU & ~stat.S_IWUSR)
    info = folder.lstat()
    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not any(folder.iterdir()):
        return folder
    return Path(tempfile.mkdtemp(prefix="postroom-typst-packages-"))


class TypstEngine:
    """Renders ``.typ`` templates with the ``typst`` Python binding."""

    name = "typst"

    def __init__(self, fonts: Path) -> None:
        self.fonts = fonts.resolve()
        self._local = threading.local()
        self._checked: set[Path] = set()
        self._packages = empty_package_folder()

    def _compiler(self, template: Template) -> typst.Compiler:
        compilers: dict[Path, typst.Compiler] = self._local.__dict__.setdefault("compilers", {})
        compiler = compilers.get(template.entry)
        if compiler is None:
            self._refuse_packages(template)
            compiler = typst.Compiler(
                input=str(template.entry),
                root=str(template.root),
                font_paths=[str(self.fonts)],
                ignore_system_fonts=True,
                package_path=str(self._packages),
                package_cache_path=str(self._packages),
            )
            compilers[template.entry] = compiler
        return compiler

    def _refuse_packages(self, template: Template) -> None:
        if template.folder in self._checked:
            return
        for source in [
            *template.folder.rglob("*.typ"),
            *(template.root / "_shared" / self.name).rglob("*.typ"),
        ]:
            if _PACKAGE_IMPORT.search(source.read_text(encoding="utf-8")):
                raise TemplateError(
                    f"{source.relative_to(template.root)} imports a Typst package; "
                    "templates may not fetch packages"
                )
        self._checked.add(template.folder)

    def render(
        self, template: Template, context: Mapping[str, Any], variant: Variant, *, timestamp: datetime
    ) -> bytes:
        """Compile ``template`` with ``context``; archive and e-mail variants are PDF/A-3b."""
        payload = json.dumps({**context, "variant": variant}, ensure_ascii=False, default=str)
        try:
            pdf = self._compiler(template).compile(
                sys_inputs={"context": payload},
                pdf_standards=_PDF_STANDARD[variant],
                timestamp=int(timestamp.timestamp()),
            )
        except typst.TypstError as error:
            message = redact(str(error).splitlines()[0] if str(error) else "compile error", context)
            raise TemplateError(f"{template.id} v{template.version} failed to compile: {message}") from None
        if not isinstance(pdf, bytes):
            raise TemplateError(f"{template.id} v{template.version} produced no PDF")
        return pdf
