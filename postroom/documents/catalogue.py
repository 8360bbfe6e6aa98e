"""The catalogue of document types postroom can produce."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from postroom.documents.invoice import InvoiceRequest, invoice_context
from postroom.documents.request import DocumentRequest

RetentionClass = Literal["voucher", "letter"]
RETENTION_YEARS: Mapping[RetentionClass, int] = {"voucher": 8, "letter": 6}
"""Years of retention, counted from the end of the issue year (§147 AO, §257 HGB)."""


class UnknownDocumentType(LookupError):
    """A request named a type the catalogue does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown document type {name!r}; known types: {', '.join(sorted(CATALOGUE))}")
        self.name = name


@dataclass(frozen=True, slots=True)
class DocumentType:
    """One kind of document: how its requests are validated and what its templates receive."""

    name: str
    request_model: type[DocumentRequest]
    build_context: Callable[[Any], dict[str, Any]]
    titles: Mapping[str, str]
    retention: RetentionClass
    template: str

    def parse(self, body: Mapping[str, Any]) -> DocumentRequest:
        """Validate a request body; raises :class:`pydantic.ValidationError`."""
        return self.request_model.model_validate(body)

    def context(self, request: DocumentRequest) -> dict[str, Any]:
        """The template context of a validated request."""
        return self.build_context(request)

    def title(self, locale: str) -> str:
        """The document's name in ``locale``, e.g. ``Rechnung``."""
        return self.titles.get(locale, self.titles["en"])


INVOICE = DocumentType(
    name="invoice",
    request_model=InvoiceRequest,
    build_context=invoice_context,
    titles={"de": "Rechnung", "en": "Invoice"},
    retention="voucher",
    template="invoice",
)

CATALOGUE: Mapping[str, DocumentType] = {doc_type.name: doc_type for doc_type in (INVOICE,)}


def document_type(name: str) -> DocumentType:
    """The catalogue entry for ``name``; raises :class:`UnknownDocumentType`."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownDocumentType(name) from None
