"""Collection notice: the debtor learns that the claims are handed to a collection agency.

DESIGN §4 (dunning run): a hand-off to collection only after at least two reminders, the
first at least 28 days earlier. The notice lists the claims with their open amounts and
the statutory interest up to its issue date; every figure is computed here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import EmailStr, Field, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import CurrencyCode, DocumentNumber, IsoDate, Text
from postroom.documents.formatting import Formatter
from postroom.documents.letter import recipient_context, seller_context
from postroom.documents.parties import PostalAddress, Seller
from postroom.documents.request import DocumentData, DocumentRequest
from postroom.documents.types.dunning_letter import (
    InterestMode,
    OpenItem,
    Reminder,
    check_items,
    claim_totals,
    debtor_kind,
    interest_context,
    item_rows,
)

MIN_REMINDERS = 2
FIRST_REMINDER_LEAD = timedelta(days=28)


class Agency(PostalAddress):
    """The collection agency and the case number under which it handles the claims."""

    name: Text
    street: Text
    postcode: str = Field(min_length=2, max_length=10)
    city: Text
    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    case_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.: -]*$")


class CollectionData(DocumentData):
    """The hand-off notice.

    ``reminders`` are the reminders sent about these claims. Those dated on or before
    ``issue_date`` count: at least two of them, the earliest at least 28 days before the
    issue date, otherwise the hand-off is premature (an error naming ``data.reminders``).
    Reminders dated after the issue date cannot have preceded the hand-off; they neither
    count nor print.
    """

    number: DocumentNumber
    issue_date: IsoDate
    currency: CurrencyCode = "EUR"
    seller: Seller
    agency: Agency
    claims: list[OpenItem] = Field(min_length=1, max_length=500)
    interest: InterestMode = Field(
        default="statutory",
        description="Statutory default interest (§288 BGB) up to the issue date, or none.",
    )
    reminders: list[Reminder] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _rules(self) -> CollectionData:
        check_items(self.claims, self.interest, "data.claims")
        sent = self.sent_reminders
        if len(sent) < MIN_REMINDERS:
            raise ValueError(
                f"data.reminders: a hand-off to collection needs at least {MIN_REMINDERS} reminders "
                "dated on or before data.issue_date"
            )
        if self.issue_date - sent[0].date < FIRST_REMINDER_LEAD:
            raise ValueError(
                "data.reminders: the first reminder must be at least 28 days "
                "before the hand-off (data.issue_date)"
            )
        return self

    @property
    def sent_reminders(self) -> list[Reminder]:
        """The reminders sent up to the issue date, oldest first."""
        return sorted((r for r in self.reminders if r.date <= self.issue_date), key=lambda r: r.date)


class CollectionRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: collection_notice``."""

    type: Literal["collection_notice"]
    data: CollectionData

    @model_validator(mode="after")
    def _debtor(self) -> CollectionRequest:
        debtor_kind(self.recipient, self.data.interest)
        return self


def collection_context(request: CollectionRequest) -> dict[str, Any]:
    """Everything the collection notice prints, formatted for the request's locale."""
    data = request.data
    fmt = Formatter(request.locale, data.currency)
    debtor = debtor_kind(request.recipient, data.interest)
    totals = claim_totals(data.claims, data.issue_date, debtor)
    agency = data.agency
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": recipient_context(request.recipient, data.seller, fmt),
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "currency": data.currency,
        "agency": {
            "name": agency.name,
            "address": [
                agency.street,
                f"{agency.postcode} {agency.city}",
                *([fmt.country(agency.country)] if agency.country != data.seller.country else []),
            ],
            "phone": agency.phone,
            "email": agency.email,
            "case_number": agency.case_number,
        },
        "items": item_rows(data.claims, totals, fmt),
        "interest": interest_context(debtor, data.issue_date, fmt),
        "totals": {
            "principal": fmt.money(totals.principal),
            "interest": fmt.money(totals.interest_total) if debtor else None,
            "total": fmt.money(totals.total),
        },
        "reminders": [{"level": r.level, "date": fmt.date(r.date)} for r in data.sent_reminders],
    }


DOCUMENT_TYPE = DocumentType(
    name="collection_notice",
    request_model=CollectionRequest,
    build_context=collection_context,
    titles={"de": "Abgabe an ein Inkassounternehmen", "en": "Hand-off to a collection agency"},
    retention="letter",
    template="collection_notice",
)
