"""The narrow interface every rendering engine implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from postroom.errors import PermanentError

Variant = Literal["print", "email", "archive"]


class TemplateError(PermanentError):
    """A template is missing, unsafe, or failed to compile with the given data."""

    code = "template_error"


@dataclass(frozen=True, slots=True)
class Template:
    """One version of one template: a folder with a ``template.toml`` manifest.

    ``root`` is the sandbox the engine confines the template to: it holds the template's
    folder, the engine's shared pieces (``_shared/<engine>``) and the fonts, nothing else.
    """

    id: str
    version: int
    engine: str
    document_type: str
    root: Path
    folder: Path
    entry: Path
    sha256: str


class Engine(Protocol):
    """Turns a template and a context into PDF bytes.

    Implementations keep their compiled state warm between calls and must not let a
    template read local files outside the template root or reach the network.
    """

    name: str

    def render(
        self, template: Template, context: Mapping[str, Any], variant: Variant, *, timestamp: datetime
    ) -> bytes:
        """Render ``template`` with ``context`` as the PDF ``variant``; ``timestamp`` is the PDF date."""
        ...
