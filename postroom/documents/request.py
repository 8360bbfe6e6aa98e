"""The envelope every ``POST /v1/documents`` body shares, whatever its type."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, model_validator

from postroom.documents.fields import IsoDate
from postroom.documents.parties import Recipient, Seller, StrictModel

ChannelName = Literal["print", "email", "eletter", "archive"]
Locale = Literal["de", "en"]
POSTAL_CHANNELS: frozenset[str] = frozenset({"print", "eletter"})


class Period(StrictModel):
    """A range of days, both inclusive (a statement period, a billing period BG-14)."""

    start: IsoDate
    end: IsoDate

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("period.end must not be before period.start")
        return self


class DocumentData(StrictModel):
    """Base of each type's ``data``: every document carries its number, issue date and issuer."""

    number: str
    issue_date: IsoDate
    seller: Seller


class DocumentRequest(StrictModel):
    """``{type, template?, locale, data, recipient, channels, callback_url?}``."""

    type: str
    template: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]+(@[0-9]+)?$",
        description="Template id, optionally pinned to a version as id@version; defaults to the type's.",
    )
    locale: Locale = "de"
    recipient: Recipient
    channels: list[ChannelName] = Field(min_length=1, max_length=4)
    callback_url: HttpUrl | None = None
    data: DocumentData

    @model_validator(mode="after")
    def _channels_fit_recipient(self) -> DocumentRequest:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels must not repeat")
        if "email" in self.channels and self.recipient.email is None:
            raise ValueError("channel 'email' needs recipient.email")
        if POSTAL_CHANNELS.intersection(self.channels) and not self.recipient.is_complete:
            raise ValueError("postal channels need recipient.street, recipient.postcode and recipient.city")
        return self

    @property
    def number(self) -> str:
        """The document number (invoice number, letter reference, ...)."""
        return self.data.number


def request_schema(model: type[BaseModel]) -> dict[str, object]:
    """JSON Schema of a request model as published by the API."""
    return model.model_json_schema(mode="validation")
