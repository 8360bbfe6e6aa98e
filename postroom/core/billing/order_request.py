"""The body of ``POST /v1/orders``: a courtage request from an upstream system.

Only the shape is enforced here (a 422 otherwise). Whether the content holds up (IBANs,
VAT IDs, addresses, amounts, §656c/d BGB, duplicates) is for the order checks, whose
findings a clerk can correct, so identifiers are plain strings at this level.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import EmailStr, Field, model_validator

from postroom.documents.fields import Amount, CountryCode, CurrencyCode, IsoDate, Percent, TaxRate, Text
from postroom.documents.parties import StrictModel

PropertyKind = Literal["apartment", "single_family_house", "multi_family_house", "land", "commercial"]
RESIDENTIAL: frozenset[str] = frozenset({"apartment", "single_family_house"})
"""Where §656a-d BGB protect a consumer buyer."""
Role = Literal["seller", "buyer"]
_REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,39}$"


class OrderParty(StrictModel):
    """A seller or buyer as the upstream system knows them."""

    reference: str | None = Field(default=None, pattern=_REFERENCE, description="Upstream customer number.")
    kind: Literal["consumer", "business"] = "consumer"
    name: Text
    street: Text | None = None
    postcode: str | None = Field(default=None, max_length=10)
    city: Text | None = None
    country: CountryCode = "DE"
    email: EmailStr | None = None
    iban: str | None = Field(default=None, max_length=42)
    vat_id: str | None = Field(default=None, max_length=20)


class Share(StrictModel):
    """What one party owes: a rate in percent of the price (net) and the agreed net amount."""

    rate: Percent
    amount: Amount


class PropertyObject(StrictModel):
    """The brokered property."""

    kind: PropertyKind
    object_id: str = Field(pattern=_REFERENCE)
    description: Text


class OrderAgent(StrictModel):
    """An agent earning a share of the net courtage."""

    reference: str = Field(pattern=_REFERENCE, description="Upstream agent number.")
    name: Text
    street: Text | None = None
    postcode: str | None = Field(default=None, max_length=10)
    city: Text | None = None
    country: CountryCode = "DE"
    email: EmailStr | None = None
    iban: str | None = Field(default=None, max_length=42)
    vat_id: str | None = Field(default=None, max_length=20)
    tax_number: str | None = Field(default=None, pattern=r"^[0-9/ ]{10,20}$")
    small_business: bool = Field(default=False, description="§19 UStG: no VAT on the agent's commission.")
    share: Percent


class Contacts(StrictModel):
    """Who hears about a rejected order."""

    submitter_email: EmailStr
    agency_email: EmailStr | None = None


class OrderRequest(StrictModel):
    """A courtage order; totals and invoices are computed by postroom."""

    order_id: str = Field(pattern=_REFERENCE, description="The upstream system's order id (idempotency key).")
    property: PropertyObject
    price: Amount
    currency: CurrencyCode = "EUR"
    tax_rate: TaxRate = Decimal("19")
    contract_date: IsoDate = Field(description="The notarised contract: the date of supply.")
    commissioned_by: list[Role] = Field(min_length=1, max_length=2)
    seller: OrderParty
    buyer: OrderParty | None = None
    seller_share: Share | None = None
    buyer_share: Share | None = None
    agents: list[OrderAgent] = Field(default_factory=list, max_length=20)
    contacts: Contacts

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        if self.price <= 0:
            raise ValueError("price must be positive")
        if self.seller_share is None and self.buyer_share is None:
            raise ValueError("seller_share or buyer_share is required")
        if self.buyer_share is not None and self.buyer is None:
            raise ValueError("buyer_share needs a buyer")
        if len(set(self.commissioned_by)) != len(self.commissioned_by):
            raise ValueError("commissioned_by must not repeat")
        if "buyer" in self.commissioned_by and self.buyer is None:
            raise ValueError("commissioned_by names the buyer, but no buyer is given")
        if sum((agent.share for agent in self.agents), Decimal(0)) > 100:
            raise ValueError("the agents' shares add up to more than 100 percent")
        if len({agent.reference for agent in self.agents}) != len(self.agents):
            raise ValueError("an agent is named twice")
        return self

    def shares(self) -> dict[str, Share]:
        """The billed roles and what each owes."""
        pairs = (("seller", self.seller_share), ("buyer", self.buyer_share))
        return {role: share for role, share in pairs if share is not None}
