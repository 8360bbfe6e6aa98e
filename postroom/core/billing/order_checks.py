"""The automatic checks an order passes before it may be released (DESIGN §4).

Each finding names the field and the rule, never the value: findings are shown to clerks
and stored with the order, and the values may be personal data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat

from postroom.core.billing.order_request import RESIDENTIAL, OrderParty, OrderRequest
from postroom.money import CENT, HUNDRED

_GERMAN_POSTCODE_DIGITS = 5


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason an order needs a clerk's review."""

    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The finding as stored with the order and shown by the API."""
        return asdict(self)


def check_order(order: OrderRequest, *, duplicate_of: str | None = None) -> list[Finding]:
    """Everything wrong with ``order``; empty when it may go to ``ready``.

    ``duplicate_of`` is the upstream id of an earlier, not rejected order for the same
    object and parties, found by the caller in the database.
    """
    findings: list[Finding] = []
    shares = order.shares()
    billed = {"seller": order.seller, "buyer": order.buyer}
    for role in shares:
        party = billed[role]
        assert party is not None  # the request model guarantees a buyer for a buyer share
        findings += _address(party, role)
    for role, party in billed.items():
        if party is not None:
            findings += _identifiers(party.iban, party.vat_id, role)
    for index, agent in enumerate(order.agents):
        findings += _identifiers(agent.iban, agent.vat_id, f"agents[{index}]")
        if agent.vat_id is None and agent.tax_number is None:
            message = "a self-billed statement needs the agent's tax number or VAT ID (§14(4) 2 UStG)"
            findings.append(Finding("agent_tax_id_missing", f"agents[{index}].tax_number", message))
        if agent.iban is None:
            findings.append(
                Finding("agent_iban_missing", f"agents[{index}].iban", "an agent needs an IBAN for payouts")
            )
    for role, share in shares.items():
        expected = order.price * share.rate / HUNDRED
        if abs(share.amount - expected) > CENT:
            findings.append(
                Finding(
                    "commission_mismatch",
                    f"{role}_share.amount",
                    f"the amount differs from price × rate ({expected.quantize(CENT)}) by more than a cent",
                )
            )
    findings += _brokerage_rules(order)
    if duplicate_of is not None:
        findings.append(
            Finding("duplicate", "order_id", f"order {duplicate_of} has the same object and parties")
        )
    return findings


def _address(party: OrderParty, role: str) -> list[Finding]:
    missing = [name for name in ("street", "postcode", "city") if getattr(party, name) is None]
    findings = [
        Finding(
            "address_incomplete",
            f"{role}.{name}",
            "the billed party's address is required (§14(4) Nr. 1 UStG)",
        )
        for name in missing
    ]
    if (
        party.country == "DE"
        and party.postcode is not None
        and not (party.postcode.isdigit() and len(party.postcode) == _GERMAN_POSTCODE_DIGITS)
    ):
        findings.append(Finding("postcode_invalid", f"{role}.postcode", "a German postcode has five digits"))
    return findings


def _identifiers(iban: str | None, vat_id: str | None, path: str) -> list[Finding]:
    findings = []
    if iban is not None and not stdnum_iban.is_valid(iban):
        findings.append(Finding("iban_invalid", f"{path}.iban", "the IBAN fails its check digits"))
    if vat_id is not None and not stdnum_vat.is_valid(vat_id):
        findings.append(
            Finding("vat_id_invalid", f"{path}.vat_id", "the VAT ID fails its format or check digits")
        )
    return findings


def _brokerage_rules(order: OrderRequest) -> list[Finding]:
    """§656c/d BGB for apartments and single-family houses sold to a consumer."""
    if order.property.kind not in RESIDENTIAL or order.buyer is None or order.buyer.kind != "consumer":
        return []
    seller, buyer = order.seller_share, order.buyer_share
    if set(order.commissioned_by) == {"seller", "buyer"}:
        if seller is None or buyer is None or seller.rate != buyer.rate or seller.amount != buyer.amount:
            return [
                Finding(
                    "656c_unequal_shares",
                    "buyer_share",
                    "§656c BGB: commissioned by both, seller and buyer must owe the same share",
                )
            ]
        return []
    commissioning, other = ("seller", "buyer") if order.commissioned_by == ["seller"] else ("buyer", "seller")
    theirs, ours = order.shares().get(commissioning), order.shares().get(other)
    if ours is not None and (theirs is None or ours.amount > theirs.amount):
        return [
            Finding(
                "656d_share_too_high",
                f"{other}_share.amount",
                f"§656d BGB: the {other} may owe at most what the commissioning {commissioning} pays",
            )
        ]
    return []


def due_after_commissioning_party(order: OrderRequest) -> str | None:
    """The role whose invoice must be paid before the other's falls due (§656d(1) sentence 2 BGB)."""
    if order.property.kind not in RESIDENTIAL or order.buyer is None or order.buyer.kind != "consumer":
        return None
    if len(order.commissioned_by) != 1 or len(order.shares()) != 2:
        return None
    return order.commissioned_by[0]
