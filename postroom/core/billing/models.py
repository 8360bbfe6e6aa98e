"""Tables of the lean core: parties, orders, invoices, payments, commissions and their history.

Personal data lives in :class:`Party` only; every other table refers to a party by its
pseudonymous id, so purging a party's columns removes the person from the core.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postroom.core.billing.states import CommissionStatus, InvoiceStatus, OrderStatus
from postroom.core.models import Base, status_column, utcnow

Money = Numeric(14, 2)


class Party(Base):
    """A customer, agent or agency: the one place where the core keeps a person's data."""

    __tablename__ = "parties"
    __table_args__ = (Index("ix_parties_reference", "kind", "reference"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    """consumer, business or agent."""
    reference: Mapped[str | None] = mapped_column(String(40))
    """The upstream system's customer or agent number (pseudonymous)."""
    name: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="DE")
    email: Mapped[str | None] = mapped_column(String(320))
    iban: Mapped[str | None] = mapped_column(String(34))
    iban_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    vat_id: Mapped[str | None] = mapped_column(String(20))
    tax_number: Mapped[str | None] = mapped_column(String(40))
    small_business: Mapped[bool] = mapped_column(default=False)
    """An agent under §19 UStG: commission statements carry no VAT."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None]


class Order(Base):
    """A courtage request from an upstream system, checked before it may be billed."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("api_key_id", "upstream_id", name="uq_orders_upstream"),
        Index("ix_orders_object", "object_id"),
        Index("ix_orders_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[str] = mapped_column(String(64))
    upstream_id: Mapped[str] = mapped_column(String(64))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(status_column(OrderStatus))
    property_kind: Mapped[str] = mapped_column(String(24))
    object_id: Mapped[str] = mapped_column(String(64))
    object_description: Mapped[str | None] = mapped_column(String(500))
    price: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    contract_date: Mapped[date]
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    buyer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    shares: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """Per billed role: ``{role, rate, amount}`` as agreed (rate in percent of the price, net)."""
    agents: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``{agent_id, share}``: each agent's percentage of the net courtage."""
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    """The submitter's address for follow-ups (a party of kind ``contact``)."""
    agency_email: Mapped[str | None] = mapped_column(String(320))
    """The agency's office address (a business mailbox) for follow-ups."""
    due_after: Mapped[str | None] = mapped_column(String(8))
    """§656d BGB: the role whose invoice must be paid before the other share falls due."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    released_at: Mapped[datetime | None]


class NumberSequence(Base):
    """The next free number of one number range; locked while a number is drawn (gapless)."""

    __tablename__ = "number_sequences"

    range_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger, default=1)


class Invoice(Base):
    """An invoice, credit note or corrected invoice to one party, with its own lifecycle."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("number", name="uq_invoices_number"),
        Index("ix_invoices_party_status", "party_id", "status"),
        Index("ix_invoices_order", "order_id"),
        Index("ix_invoices_document", "document_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    """invoice, credit_note or correction."""
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    role: Mapped[str | None] = mapped_column(String(8))
    """seller or buyer: whose share of the courtage this bills."""
    status: Mapped[InvoiceStatus] = mapped_column(status_column(InvoiceStatus))
    number: Mapped[str | None] = mapped_column(String(35))
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    net_total: Mapped[Decimal] = mapped_column(Money)
    tax_total: Mapped[Decimal] = mapped_column(Money)
    gross_total: Mapped[Decimal] = mapped_column(Money)
    paid_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    charges_total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    """Fees the debtor owes on top (a returned direct debit's bank fee)."""
    open_amount: Mapped[Decimal] = mapped_column(Money)
    issue_date: Mapped[date | None]
    delivery_date: Mapped[date | None]
    due_date: Mapped[date | None]
    cancels_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    cancelled_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    corrected_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    due_after_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    """§656d BGB: this buyer share falls due only once that (seller) invoice is paid."""
    channels: Mapped[list[str]] = mapped_column(JSON)
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    booking_acknowledged_at: Mapped[datetime | None]
    """When the accounting system acknowledged the booking export carrying this item."""
    default_since: Mapped[date | None]
    """First day of default (§286 BGB), set by the dunning run once the item is in default."""
    dunning_level: Mapped[int | None] = mapped_column(Integer)
    """The highest dunning level sent for this item; ``None`` before the first letter."""
    dunning_blocked_until: Mapped[date | None]
    """Mahnsperre on this item (inclusive); the dunning run skips it until then."""
    disputed: Mapped[bool] = mapped_column(default=False)
    """The debtor disputes the claim: no dunning and no collection until the dispute is resolved."""
    collection_case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("collection_cases.id"))
    payment_plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payment_plans.id"))
    """An active payment plan covers this item: the dunning run leaves it alone."""


class BankImport(Base):
    """One imported camt.053/054 file; the same file twice is recognised by its SHA-256."""

    __tablename__ = "bank_imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_kind: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str] = mapped_column(String(35))
    transactions: Mapped[int]
    booked: Mapped[int]
    duplicates: Mapped[int]
    for_review: Mapped[int]
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """Money received (or a direct debit returned): matched to invoices, kept as credit, or reviewed."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("transaction_key", name="uq_payments_transaction"),
        Index("ix_payments_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    transaction_key: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    bank_import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_imports.id"))
    direction: Mapped[str] = mapped_column(String(8))
    """credit (money in) or return (a direct debit that came back)."""
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    booking_date: Mapped[date]
    value_date: Mapped[date | None]
    party_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parties.id"))
    counterparty_iban_sha256: Mapped[str | None] = mapped_column(String(64))
    remittance: Mapped[str | None] = mapped_column(String(1000))
    """Free text: kept while the payment waits for review, cleared once it is placed."""
    creditor_reference: Mapped[str | None] = mapped_column(String(35))
    end_to_end_id: Mapped[str | None] = mapped_column(String(35))
    return_reason: Mapped[str | None] = mapped_column(String(8))
    return_fee: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))
    """matched, review, credit (unplaced money of a known party) or refunded."""
    unallocated: Mapped[Decimal] = mapped_column(Money)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Allocation(Base):
    """A part of a payment placed on an invoice, offset from a credit, reversed or refunded."""

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_invoice", "invoice_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """payment, offset, return, transfer or refund."""
    amount: Mapped[Decimal] = mapped_column(Money)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Commission(Base):
    """One agent's share of one invoice's net courtage."""

    __tablename__ = "commissions"
    __table_args__ = (
        UniqueConstraint("invoice_id", "agent_id", name="uq_commissions_invoice_agent"),
        Index("ix_commissions_agent_status", "agent_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    status: Mapped[CommissionStatus] = mapped_column(status_column(CommissionStatus))
    base_amount: Mapped[Decimal] = mapped_column(Money)
    rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    amount: Mapped[Decimal] = mapped_column(Money)
    discount_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    """Set when the agent asked for early payment against a fee (discounting)."""
    statement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("commission_statements.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    payable_at: Mapped[datetime | None]
    paid_out_at: Mapped[datetime | None]


class Advance(Base):
    """Money paid to an agent ahead of commissions (an advance or an Einarbeitungskredit)."""

    __tablename__ = "advances"
    __table_args__ = (Index("ix_advances_agent", "agent_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """advance (against an order's commission) or training_credit (order-independent)."""
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    outstanding: Mapped[Decimal] = mapped_column(Money)
    booked_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommissionStatement(Base):
    """A self-billed credit note (Gutschrift, type 389) paying an agent's payable commissions."""

    __tablename__ = "commission_statements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    run_key: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    number: Mapped[str] = mapped_column(String(35), unique=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    gross_total: Mapped[Decimal] = mapped_column(Money)
    discount: Mapped[Decimal] = mapped_column(Money)
    advances_offset: Mapped[Decimal] = mapped_column(Money)
    offsets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``{advance_id, amount}`` per advance reduced by this statement."""
    payout: Mapped[Decimal] = mapped_column(Money)
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Followup(Base):
    """A Wiedervorlage: a task on a case for a user or a group, due on a day."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_due", "status", "due_date"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[uuid.UUID]
    subject: Mapped[str] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(64))
    assignee_group: Mapped[str | None] = mapped_column(String(64))
    due_date: Mapped[date]
    options: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    chosen_option: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(64))
    notified_at: Mapped[datetime | None]
    """When the ``followup_notice`` for the due task was submitted."""
    notice_document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))


class CoreEvent(Base):
    """An append-only record of one state transition in the core: who, when, why, from what to what."""

    __tablename__ = "core_events"
    __table_args__ = (Index("ix_core_events_entity", "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500))
    before: Mapped[str | None] = mapped_column(String(16))
    after: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DunningAccount(Base):
    """A customer's dunning settings: a Mahnsperre for all items and overrides of the policy."""

    __tablename__ = "dunning_accounts"

    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    blocked_until: Mapped[date | None]
    block_reason: Mapped[str | None] = mapped_column(String(200))
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Per-customer policy overrides (see :class:`postroom.core.billing.dunning_policy.Override`)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DunningRun(Base):
    """One dunning run for a key date (Stichtag); a key date is run once."""

    __tablename__ = "dunning_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    key_date: Mapped[date] = mapped_column(unique=True)
    grace_days: Mapped[int]
    policy_version: Mapped[str] = mapped_column(String(40))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id"))
    letters: Mapped[int]
    items: Mapped[int]
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DunningNotice(Base):
    """One dunning letter of a run to one customer, covering one or more items."""

    __tablename__ = "dunning_notices"
    __table_args__ = (Index("ix_dunning_notices_party", "party_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dunning_runs.id"))
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    number: Mapped[str] = mapped_column(String(35), unique=True)
    level: Mapped[int]
    issue_date: Mapped[date]
    pay_by: Mapped[date]
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    fees: Mapped[Decimal] = mapped_column(Money)
    flat_rate: Mapped[bool] = mapped_column(default=False)
    """This letter charged the §288(5) BGB flat sum."""
    total: Mapped[Decimal] = mapped_column(Money)
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DunningStep(Base):
    """One item raised to a level by one letter, with the interest claimed up to its key date."""

    __tablename__ = "dunning_steps"
    __table_args__ = (Index("ix_dunning_steps_invoice", "invoice_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dunning_notices.id"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"))
    level: Mapped[int]
    open_amount: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    """Interest from ``default_since`` to the key date (cumulative, as the letter shows it)."""


class Charge(Base):
    """A claim on top of an invoice: a dunning fee, the §288(5) flat sum, interest, collection costs."""

    __tablename__ = "charges"
    __table_args__ = (Index("ix_charges_party", "party_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """fee, flat_rate, interest or collection_cost."""
    source: Mapped[str] = mapped_column(String(16))
    """dunning_notice or collection_case: what raised the charge."""
    source_id: Mapped[uuid.UUID]
    reference: Mapped[str] = mapped_column(String(35))
    """The voucher number (the dunning letter's or the collection case's)."""
    amount: Mapped[Decimal] = mapped_column(Money)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, paid or written_off."""
    booked_on: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CollectionCase(Base):
    """Items handed to a collection agency (Inkasso), until paid, settled or written off."""

    __tablename__ = "collection_cases"
    __table_args__ = (Index("ix_collection_cases_party", "party_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    number: Mapped[str] = mapped_column(String(35), unique=True)
    agency: Mapped[str] = mapped_column(String(40))
    """The configured agency's key."""
    agency_reference: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, paid, settled or written_off."""
    opened_on: Mapped[date]
    principal: Mapped[Decimal] = mapped_column(Money)
    charges: Mapped[Decimal] = mapped_column(Money)
    """Fees and interest handed over with the items."""
    costs: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    received: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    notice_document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    export_file: Mapped[str | None] = mapped_column(String(500))
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    closed_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentPlan(Base):
    """A Ratenvereinbarung: items paid in instalments; two missed instalments make the rest due."""

    __tablename__ = "payment_plans"
    __table_args__ = (Index("ix_payment_plans_party", "party_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    party_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parties.id"))
    number: Mapped[str] = mapped_column(String(35), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    """active, completed, failed (two instalments missed) or cancelled."""
    issue_date: Mapped[date]
    total: Mapped[Decimal] = mapped_column(Money)
    down_payment: Mapped[Decimal] = mapped_column(Money)
    paid_at_start: Mapped[Decimal] = mapped_column(Money)
    """What was already paid on the plan's items when it was agreed (instalments count on top)."""
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    closed_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instalment(Base):
    """One due date of a payment plan (the down payment is instalment 0)."""

    __tablename__ = "instalments"
    __table_args__ = (UniqueConstraint("plan_id", "sequence", name="uq_instalments_plan_sequence"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_plans.id"))
    sequence: Mapped[int]
    due_date: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, paid or missed."""


class BookingExport(Base):
    """One daily export file of journal entries handed to the accounting system."""

    __tablename__ = "booking_exports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    day: Mapped[date] = mapped_column(unique=True)
    file: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int]
    debit_total: Mapped[Decimal] = mapped_column(Money)
    credit_total: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="exported")
    """exported, then acknowledged."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class JournalEntry(Base):
    """A balanced booking (debit = credit) of one business event, on configurable accounts."""

    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_day", "day"), Index("ix_journal_entries_export", "export_id"))

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    day: Mapped[date]
    """The booking date."""
    event: Mapped[str] = mapped_column(String(24))
    """invoice, credit_note, payment, refund, return, fee, interest, write_off, commission, advance…"""
    voucher: Mapped[str] = mapped_column(String(35))
    """The voucher's number (invoice, letter, statement, payment key), never a name."""
    source_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    party_reference: Mapped[str | None] = mapped_column(String(40))
    """The pseudonymous customer or agent number (the accounting system's personal account)."""
    text: Mapped[str] = mapped_column(String(120))
    export_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("booking_exports.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalLine(Base):
    """One side of a journal entry: an account and a debit or a credit amount."""

    __tablename__ = "journal_lines"
    __table_args__ = (Index("ix_journal_lines_entry", "entry_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"))
    account: Mapped[str] = mapped_column(String(12))
    debit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    credit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
