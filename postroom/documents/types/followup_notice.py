"""Follow-up notice (Wiedervorlage): an internal reminder to a team that a case is due for a decision.

The recipient is a team inside the company (``kind: internal``): a name and an e-mail
address, no postal address. The notice goes out by e-mail (and may be archived); it is
never printed or posted, so it needs no window address and uses an internal memo layout.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from postroom.documents.doctype import DocumentType
from postroom.documents.fields import Amount, CurrencyCode, DocumentNumber, IsoDate, LongText, Text
from postroom.documents.formatting import Formatter
from postroom.documents.letter import seller_context
from postroom.documents.parties import Seller, StrictModel
from postroom.documents.request import POSTAL_CHANNELS, DocumentData, DocumentRequest


class FollowupContext(StrictModel):
    """The case the follow-up is about; every item is optional."""

    order_reference: str | None = Field(default=None, min_length=1, max_length=100)
    invoice_number: str | None = Field(default=None, min_length=1, max_length=100)
    customer_number: str | None = Field(default=None, min_length=1, max_length=40)
    document_number: str | None = Field(default=None, min_length=1, max_length=100)
    dunning_level: int | None = Field(
        default=None, ge=0, le=3, description="0 payment reminder, 1 and 2 reminders, 3 final notice."
    )
    open_amount: Amount | None = None
    currency: CurrencyCode = "EUR"


class FollowupNoticeData(DocumentData):
    """The follow-up: what is due when, for which team, about which case, and the options to choose from."""

    number: DocumentNumber
    issue_date: IsoDate
    seller: Seller
    due_date: IsoDate
    subject: Text
    assignee_group: str = Field(min_length=1, max_length=100, description="The team the follow-up is for.")
    context: FollowupContext = Field(default_factory=FollowupContext)
    options: list[Text] = Field(min_length=1, max_length=12, description="The decisions to choose from.")
    note: LongText | None = None

    @field_validator("options")
    @classmethod
    def _distinct(cls, options: list[str]) -> list[str]:
        if len({option.casefold() for option in options}) != len(options):
            raise ValueError("options must not repeat")
        return options

    @model_validator(mode="after")
    def _dates(self) -> FollowupNoticeData:
        if self.due_date < self.issue_date:
            raise ValueError("due_date must not be before issue_date")
        return self


class FollowupNoticeRequest(DocumentRequest):
    """``POST /v1/documents`` body for ``type: followup_notice``: internal, by e-mail, no postal address."""

    type: Literal["followup_notice"]
    data: FollowupNoticeData

    @model_validator(mode="after")
    def _internal(self) -> FollowupNoticeRequest:
        if self.recipient.kind != "internal":
            raise ValueError("recipient.kind must be 'internal': a followup_notice goes to a team")
        if POSTAL_CHANNELS.intersection(self.channels):
            raise ValueError(
                "channels: a followup_notice is internal and goes by email, never print or eletter"
            )
        if "email" not in self.channels:
            raise ValueError("channels: a followup_notice needs the email channel")
        if any((self.recipient.street, self.recipient.postcode, self.recipient.city)):
            raise ValueError("recipient.street, postcode and city must be empty for an internal recipient")
        return self


def followup_notice_context(request: FollowupNoticeRequest) -> dict[str, Any]:
    """Everything the follow-up memo prints, formatted for the request's locale."""
    data = request.data
    case = data.context
    fmt = Formatter(request.locale, case.currency)
    return {
        "lang": request.locale,
        "seller": seller_context(data.seller, fmt),
        "recipient": {
            "name": request.recipient.name,
            "email": request.recipient.email,
            "kind": request.recipient.kind,
        },
        "number": data.number,
        "issue_date": fmt.date(data.issue_date),
        "due_date": fmt.date(data.due_date),
        "subject": data.subject,
        "assignee_group": data.assignee_group,
        "case": {
            "order_reference": case.order_reference,
            "invoice_number": case.invoice_number,
            "customer_number": case.customer_number,
            "document_number": case.document_number,
            "dunning_level": None if case.dunning_level is None else str(case.dunning_level),
            "open_amount": None if case.open_amount is None else fmt.money(case.open_amount),
        },
        "options": list(data.options),
        "note": data.note,
    }


DOCUMENT_TYPE = DocumentType(
    name="followup_notice",
    request_model=FollowupNoticeRequest,
    build_context=followup_notice_context,
    titles={"de": "Wiedervorlage", "en": "Follow-up"},
    retention="letter",
    template="followup_notice",
)
