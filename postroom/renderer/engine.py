"""The narrow interface every rendering engine implements."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from postroom.errors import PermanentError

Variant = Literal["print", "email", "archive"]


_QUOTED = re.compile(r"""("[^"\n]*"|'[^'\n]{40,}')""")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def redact(message: str, context: Mapping[str, Any]) -> str:
    """An engine's error ``message`` with every string of ``context`` and every quoted text masked.

    Engines quote offending values, which may be request data (personal data). Strings of
    three or more characters from the context, double-quoted texts and long single-quoted
    ones become ``…``; short single-quoted names (``'dict object' has no attribute 'numbr'``)
    stay readable.
    """
    for text in sorted(set(_strings(context)), key=len, reverse=True):
        if len(text) >= 3:
            message = message.replace(text, "…")
    return _QUOTED.sub('"…"', message)


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
