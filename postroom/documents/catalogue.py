"""The catalogue of document types: every module in :mod:`postroom.documents.types`.

Adding a type means adding one module that defines ``DOCUMENT_TYPE``; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from postroom.documents import types
from postroom.documents.doctype import RETENTION_YEARS, DocumentType, RetentionClass

__all__ = [
    "CATALOGUE",
    "RETENTION_YEARS",
    "DocumentType",
    "RetentionClass",
    "UnknownDocumentType",
    "document_type",
]


def _discover() -> dict[str, DocumentType]:
    found: dict[str, DocumentType] = {}
    for module_info in sorted(pkgutil.iter_modules(types.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{types.__name__}.{module_info.name}")
        doc_type = getattr(module, "DOCUMENT_TYPE", None)
        if not isinstance(doc_type, DocumentType):
            raise TypeError(f"{module.__name__} defines no DOCUMENT_TYPE")
        if doc_type.name in found:
            raise TypeError(f"document type {doc_type.name!r} is defined twice")
        found[doc_type.name] = doc_type
    return found


CATALOGUE: Mapping[str, DocumentType] = _discover()


class UnknownDocumentType(LookupError):
    """A request named a type the catalogue does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown document type {name!r}; known types: {', '.join(sorted(CATALOGUE))}")
        self.name = name


def document_type(name: str) -> DocumentType:
    """The catalogue entry for ``name``; raises :class:`UnknownDocumentType`."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownDocumentType(name) from None
