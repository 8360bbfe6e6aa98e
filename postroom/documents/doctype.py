"""What the catalogue knows about one kind of document."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from postroom.documents.request import DocumentRequest

if TYPE_CHECKING:
    from postroom.einvoice.model import EInvoice

RetentionClass = Literal["voucher", "letter", "books"]
RETENTION_YEARS: Mapping[RetentionClass, int] = {"voucher": 8, "letter": 6, "books": 10}
"""Years of retention, counted from the end of the issue year (§147 AO, §257 HGB); ``books``
covers exports and the event chain's anchors."""


@dataclass(frozen=True, slots=True)
class Figures:
    """A voucher's totals, kept in the archive index after its personal data is gone."""

    net: Decimal
    tax: Decimal
    gross: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class DocumentType:
    """One kind of document: how its requests are validated and what its templates receive.

    ``einvoice`` maps a request of a voucher type (invoice, credit note, self-billing
    statement) to the engine-neutral e-invoice model whose CII XML is embedded in the
    archive and e-mail variants.
    """

    name: str
    request_model: type[DocumentRequest]
    build_context: Callable[[Any], dict[str, Any]]
    titles: Mapping[str, str]
    retention: RetentionClass
    template: str
    einvoice: Callable[[Any], EInvoice] | None = None

    def parse(self, body: Mapping[str, Any]) -> DocumentRequest:
        """Validate a request body; raises :class:`pydantic.ValidationError`."""
        return self.request_model.model_validate(body)

    def context(self, request: DocumentRequest) -> dict[str, Any]:
        """The template context of a validated request."""
        return self.build_context(request)

    def figures(self, request: DocumentRequest) -> Figures | None:
        """Net, tax and gross totals of a voucher, as its e-invoice states them; ``None`` for a letter."""
        if self.einvoice is None:
            return None
        einvoice = self.einvoice(request)
        return Figures(einvoice.tax_basis, einvoice.tax_total, einvoice.grand_total, einvoice.currency)

    def total(self, request: DocumentRequest) -> tuple[Decimal, str] | None:
        """The document's gross total and currency, for the records kept after the purge.

        Only vouchers have one; a letter (reminder, statement) has none.
        """
        if self.einvoice is None:
            return None
        einvoice = self.einvoice(request)
        return einvoice.grand_total, einvoice.currency

    def title(self, locale: str) -> str:
        """The document's name in ``locale``, e.g. ``Rechnung``."""
        return self.titles.get(locale, self.titles["en"])
