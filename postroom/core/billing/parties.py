"""The party table: the one place where the core keeps personal data, and its purge."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from postroom.core.billing import history
from postroom.core.billing.models import Commission, Invoice, Order, Party, Payment
from postroom.core.billing.order_request import OrderAgent, OrderParty
from postroom.core.billing.states import SETTLED_INVOICE_STATES, CommissionStatus, OrderStatus
from postroom.core.models import Document, utcnow
from postroom.core.states import DocumentStatus
from postroom.documents.parties import Recipient

PERSONAL_COLUMNS = (
    "name",
    "street",
    "postcode",
    "city",
    "email",
    "iban",
    "iban_sha256",
    "vat_id",
    "tax_number",
)


def iban_digest(iban: str) -> str:
    """A stable digest of an IBAN, for matching payments without storing the IBAN twice."""
    return hashlib.sha256(iban.replace(" ", "").upper().encode()).hexdigest()


def save_party(
    session: Session, data: OrderParty | OrderAgent, kind: str, party_id: uuid.UUID | None
) -> Party:
    """Store a party's current data: the given row, the row of the same upstream reference, or a new one."""
    party = session.get(Party, party_id) if party_id is not None else None
    if party is None and data.reference is not None:
        party = session.scalars(
            select(Party).where(Party.kind == kind, Party.reference == data.reference).limit(1)
        ).first()
    if party is None:
        party = Party(id=uuid.uuid4(), kind=kind, reference=data.reference)
        session.add(party)
    iban = data.iban.replace(" ", "").upper() if data.iban else None
    party.reference = data.reference
    party.name, party.street, party.postcode, party.city = data.name, data.street, data.postcode, data.city
    party.country, party.email, party.vat_id = (
        data.country,
        str(data.email) if data.email else None,
        data.vat_id,
    )
    party.iban, party.iban_sha256 = iban, iban_digest(iban) if iban else None
    party.small_business = isinstance(data, OrderAgent) and data.small_business
    party.tax_number = data.tax_number if isinstance(data, OrderAgent) else None
    party.purged_at = None
    return party


def save_contact(session: Session, email: str, party_id: uuid.UUID | None) -> Party:
    """The e-mail address follow-ups go to, kept as a party so it is purged like one."""
    party = session.get(Party, party_id) if party_id is not None else None
    if party is None:
        party = Party(id=uuid.uuid4(), kind="contact")
        session.add(party)
    party.email = email
    return party


def recipient(party: Party) -> Recipient:
    """The party as a document's recipient."""
    if party.purged_at is not None or party.name is None:
        raise PartyPurged(party.id)
    return Recipient(
        name=party.name,
        street=party.street,
        postcode=party.postcode,
        city=party.city,
        country=party.country,
        email=party.email,
        customer_number=party.reference,
        vat_id=party.vat_id,
        tax_number=party.tax_number,
        iban=party.iban if party.kind == "agent" else None,  # where a commission statement pays out
        kind="business" if party.kind in ("business", "agent") else "consumer",
    )


class PartyPurged(RuntimeError):
    """A document was asked for a party whose personal data is gone."""

    def __init__(self, party_id: uuid.UUID) -> None:
        super().__init__(f"party {party_id} holds no personal data any more")


def still_needed(session: Session, party_id: uuid.UUID) -> str | None:
    """Why the party's personal data must stay, or ``None`` when nothing needs it any more."""
    open_orders = select(Order.id).where(
        (Order.seller_id == party_id) | (Order.buyer_id == party_id) | (Order.contact_id == party_id),
        Order.status.in_([OrderStatus.NEEDS_REVIEW, OrderStatus.READY]),
    )
    if session.scalar(select(exists(open_orders))):
        return "an order is open"
    invoices = list(session.scalars(select(Invoice).where(Invoice.party_id == party_id)))
    if any(invoice.status not in SETTLED_INVOICE_STATES for invoice in invoices):
        return "an invoice is open"
    if any(invoice.booking_acknowledged_at is None for invoice in invoices):
        return "a booking is not acknowledged by accounting"
    documents = [invoice.document_id for invoice in invoices if invoice.document_id is not None]
    if documents and session.scalar(
        select(exists().where(Document.id.in_(documents), Document.status != DocumentStatus.DELIVERED))
    ):
        return "a document's hand-off is not confirmed"
    credit = select(Payment.id).where(Payment.party_id == party_id, Payment.unallocated != 0)
    if session.scalar(select(exists(credit))):
        return "a credit balance is not refunded or offset"
    commissions = select(Commission.id).where(
        Commission.agent_id == party_id,
        Commission.status.in_([CommissionStatus.PENDING, CommissionStatus.PAYABLE]),
    )
    if session.scalar(select(exists(commissions))):
        return "a commission is not paid out"
    return None


def purge_if_done(session: Session, party_id: uuid.UUID, *, actor: str) -> bool:
    """Remove a party's personal data once no open item needs it; ``True`` if this call did."""
    party = session.get(Party, party_id, with_for_update=True)
    if party is None or party.purged_at is not None or still_needed(session, party_id) is not None:
        return False
    for column in PERSONAL_COLUMNS:
        setattr(party, column, None)
    party.purged_at = utcnow()
    session.execute(update(Payment).where(Payment.party_id == party_id).values(remittance=None))
    history.record(
        session, "party", party_id, "personal data purged", actor=actor, reason="every hand-off done"
    )
    return True
