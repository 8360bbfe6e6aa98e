"""SQLAlchemy models of the hub's own state: documents, their rendered variants and deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from postroom.core.states import DeliveryStatus, DocumentStatus


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use postroom.core.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def status_column(enum: type[StrEnum]) -> Enum:
    """A string column holding one member of ``enum``, checked on write."""
    return Enum(
        enum,
        native_enum=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of postroom's tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


class Document(Base):
    """One requested document, from acceptance to confirmed hand-off.

    ``payload`` holds the request's recipient and data, i.e. personal data; it is
    kept only while the document is in processing.
    """

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_documents_idempotency"),
        Index("ix_documents_status", "status"),
        Index("ix_documents_type_number", "type", "number"),
        Index("ix_documents_batch", "batch_id", "batch_line"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(35))
    issue_date: Mapped[date]
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[DocumentStatus] = mapped_column(
        status_column(DocumentStatus), default=DocumentStatus.QUEUED
    )
    channels: Mapped[list[str]] = mapped_column(JSON)
    requested_template: Mapped[str | None] = mapped_column(String(64))
    template_id: Mapped[str | None] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer)
    template_sha256: Mapped[str | None] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(16))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_sent_at: Mapped[datetime | None]
    api_key_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    rendered_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    customer_ref: Mapped[str | None] = mapped_column(String(40))
    purged_at: Mapped[datetime | None]
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("batches.id", name="fk_documents_batch_id"))
    batch_line: Mapped[int | None]

    variants: Mapped[list[RenderedVariant]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="RenderedVariant.variant"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="Delivery.channel"
    )

    def variant(self, name: str) -> RenderedVariant | None:
        """The rendered variant ``name``, if rendered."""
        return next((variant for variant in self.variants if variant.variant == name), None)


class RenderedVariant(Base):
    """One rendered PDF of a document (print, email or archive), identified by its SHA-256."""

    __tablename__ = "rendered_variants"

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(16), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    pages: Mapped[int]
    rendered_at: Mapped[datetime] = mapped_column(default=utcnow)

    document: Mapped[Document] = relationship(back_populates="variants")


class Delivery(Base):
    """The hand-off of one document to one channel; idempotent by its id."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("document_id", "channel", name="uq_deliveries_document_channel"),
        Index("ix_deliveries_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    variant: Mapped[str] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(
        status_column(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    external_ref: Mapped[str | None] = mapped_column(String(500))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    lease_expires_at: Mapped[datetime | None]
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    """The job message attempting the delivery while the lease runs (see ``claim_for_sending``)."""
    sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deliveries.id", name="fk_deliveries_replaces_id")
    )

    document: Mapped[Document] = relationship(back_populates="deliveries")
    events: Mapped[list[DeliveryEvent]] = relationship(
        back_populates="delivery", cascade="all, delete-orphan", order_by="DeliveryEvent.id"
    )


class DeliveryEvent(Base):
    """One step in a delivery's history: a state change or a channel's report (never personal data)."""

    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_delivery", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[DeliveryStatus] = mapped_column(status_column(DeliveryStatus))
    event: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(String(500))

    delivery: Mapped[Delivery] = relationship(back_populates="events")


class AuditEvent(Base):
    """Something the hub did that an auditor or data-protection officer may ask about (e.g. a purge)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_document", "document_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    document_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(64))


class PrintBatch(Base):
    """One print file for the letter shop: pieces sorted by postcode, handed off, then acknowledged."""

    __tablename__ = "print_batches"
    __table_args__ = (Index("ix_print_batches_status", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    group_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    pieces: Mapped[int] = mapped_column(default=0)
    sheets: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    """Pieces the letter shop rejected, counted as the acknowledgement is applied."""
    file_name: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handed_off_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    error_detail: Mapped[str | None] = mapped_column(String(1000))


class PrintPiece(Base):
    """A print delivery waiting for, or placed in, a print batch.

    The postcode is kept only until the batch is acknowledged; then the row goes.
    """

    __tablename__ = "print_pieces"
    __table_args__ = (Index("ix_print_pieces_open", "group_key", "batch_id"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[uuid.UUID]
    group_key: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    postcode: Mapped[str] = mapped_column(String(10))
    pages: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("print_batches.id"))
    piece_no: Mapped[int | None]


class TemplateRelease(Base):
    """A template version as first used by a document; its content may never change afterwards."""

    __tablename__ = "template_releases"

    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    engine: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class TemplateUpload(Base):
    """An uploaded template version: its sealed bundle (template, shared pieces, fonts), never changed."""

    __tablename__ = "template_uploads"

    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    engine: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    document_type: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    bundle: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int]
    description: Mapped[str | None] = mapped_column(String(500))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A bulk run: one upload of many document requests, each line a document or a rejection."""

    __tablename__ = "batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="receiving")
    all_or_nothing: Mapped[bool] = mapped_column(default=False)
    source_format: Mapped[str] = mapped_column(String(8))
    lines: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    rejections: Mapped[list[BatchRejection]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", order_by="BatchRejection.line"
    )


class BatchRejection(Base):
    """A line of a bulk run that was not accepted: where and why (never the line's content)."""

    __tablename__ = "batch_rejections"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(primary_key=True)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON)

    batch: Mapped[Batch] = relationship(back_populates="rejections")


class ArchiveEntry(Base):
    """What auditors search by: one row per archived document, written when its archive delivery
    is confirmed. It holds no personal data beyond what retention requires: the number, the
    pseudonymous customer id, amounts and dates (the PDF itself stays in the archive store)."""

    __tablename__ = "archive_entries"
    __table_args__ = (
        Index("ix_archive_entries_issued", "issue_date", "id"),
        Index("ix_archive_entries_number", "number"),
        Index("ix_archive_entries_customer", "customer_id"),
        Index("ix_archive_entries_order", "order_reference"),
        Index("ix_archive_entries_gross", "gross_total"),
        Index("ix_archive_entries_retention", "retain_until"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """The document's id."""
    document_type: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(35))
    issue_date: Mapped[date]
    customer_id: Mapped[str | None] = mapped_column(String(40))
    order_reference: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    net_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    tax_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    gross_total: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    archive_key: Mapped[str] = mapped_column(String(400), unique=True)
    location: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    has_einvoice: Mapped[bool] = mapped_column(default=False)
    retention_class: Mapped[str] = mapped_column(String(16))
    retain_until: Mapped[datetime]
    legal_hold: Mapped[bool] = mapped_column(default=False)
    archived_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class ArchiveEvent(Base):
    """One entry of the append-only, hash-chained archive event log (GoBD): a write, an access,
    a retention change, a purge or an export. ``hash`` covers the entry's canonical JSON and the
    previous entry's hash, so that editing or removing an entry breaks the chain there."""

    __tablename__ = "archive_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ArchiveChainHead(Base):
    """The chain's last entry (one row): appends lock it, so entries are numbered without gaps,
    and verification notices entries cut off at the end."""

    __tablename__ = "archive_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ArchiveExport(Base):
    """A GoBD Z3 data export of a period: requested by an auditor, built by a job, archived."""

    __tablename__ = "archive_exports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[str] = mapped_column(String(64))
    period_from: Mapped[date]
    period_to: Mapped[date]
    include_pdfs: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    documents_total: Mapped[int] = mapped_column(default=0)
    documents_done: Mapped[int] = mapped_column(default=0)
    lines: Mapped[int] = mapped_column(default=0)
    archive_key: Mapped[str | None] = mapped_column(String(400))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error_detail: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
