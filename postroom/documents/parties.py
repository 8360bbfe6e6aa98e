"""The parties on a document: the issuing company (seller) and the recipient."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from postroom.documents.fields import CountryCode, Iban, Text, VatId

_GERMAN_POSTCODE = re.compile(r"\d{5}")


class StrictModel(BaseModel):
    """Base of every request model: unknown fields are an error, never silently dropped.

    Validation errors never quote the input, which may be personal data, even when
    someone logs ``str(error)``.
    """

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, frozen=True, hide_input_in_errors=True
    )


class PostalAddress(StrictModel):
    """Street address; German postcodes must have five digits."""

    street: Text | None = None
    postcode: str | None = Field(default=None, min_length=2, max_length=10)
    city: Text | None = None
    country: CountryCode = "DE"

    @model_validator(mode="after")
    def _german_postcode(self) -> PostalAddress:
        if (
            self.country == "DE"
            and self.postcode is not None
            and not _GERMAN_POSTCODE.fullmatch(self.postcode)
        ):
            raise ValueError("a German postcode has exactly five digits")
        return self

    @property
    def is_complete(self) -> bool:
        """Street, postcode and city are all present."""
        return bool(self.street and self.postcode and self.city)


class Seller(PostalAddress):
    """The issuing company, with what §14 UStG and §35a GmbHG require on its letters."""

    name: Text
    street: Text
    postcode: str = Field(min_length=2, max_length=10)
    city: Text
    vat_id: VatId | None = None
    tax_number: str | None = Field(default=None, pattern=r"^[0-9/ ]{10,20}$")
    registered_office: Text | None = Field(
        default=None, description="Sitz (§35a GmbHG); the city when omitted."
    )
    register_court: Text | None = None
    register_number: str | None = Field(default=None, max_length=40)
    managing_directors: list[Text] = Field(default_factory=list, max_length=12)
    iban: Iban | None = None
    bic: str | None = Field(default=None, pattern=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
    bank: Text | None = None
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)


class Recipient(PostalAddress):
    """Who receives the document; personal data, held only while the document is processed."""

    name: Text
    attention: Text | None = None
    email: EmailStr | None = None
    customer_number: str | None = Field(default=None, max_length=40)
    vat_id: VatId | None = None
    tax_number: str | None = Field(default=None, max_length=40)
    iban: Iban | None = None
    kind: Literal["consumer", "business", "internal"] = "consumer"
