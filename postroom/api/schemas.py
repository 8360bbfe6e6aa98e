"""Response bodies of the API. None of them carries personal data."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel

from postroom.core.models import Delivery, Document
from postroom.core.states import DeliveryStatus, DocumentStatus


class DocumentAccepted(BaseModel):
    """Answer to ``POST /v1/documents``."""

    id: uuid.UUID
    status: DocumentStatus


class ErrorInfo(BaseModel):
    """Why something failed: a stable code and a description without personal data."""

    code: str
    detail: str | None

    @classmethod
    def of(cls, code: str | None, detail: str | None) -> ErrorInfo | None:
        """The error recorded on a row, if any."""
        return cls(code=code, detail=detail) if code else None


class TemplateInfo(BaseModel):
    """The template that rendered a document."""

    id: str
    version: int
    sha256: str
    engine: str


class VariantInfo(BaseModel):
    """One rendered PDF."""

    variant: str
    sha256: str
    size_bytes: int
    pages: int


class DeliveryInfo(BaseModel):
    """One channel's hand-off."""

    id: uuid.UUID
    channel: str
    variant: str
    status: DeliveryStatus
    attempts: int
    external_ref: str | None
    sent_at: datetime | None
    confirmed_at: datetime | None
    error: ErrorInfo | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryInfo:
        """The view of a delivery row."""
        return cls(
            id=delivery.id,
            channel=delivery.channel,
            variant=delivery.variant,
            status=delivery.status,
            attempts=delivery.attempts,
            external_ref=delivery.external_ref,
            sent_at=delivery.sent_at,
            confirmed_at=delivery.confirmed_at,
            error=ErrorInfo.of(delivery.error_code, delivery.error_detail),
        )


class DocumentView(BaseModel):
    """``GET /v1/documents/{id}``."""

    id: uuid.UUID
    type: str
    number: str
    issue_date: date
    locale: str
    status: DocumentStatus
    channels: list[str]
    created_at: datetime
    updated_at: datetime
    rendered_at: datetime | None
    delivered_at: datetime | None
    callback_acknowledged_at: datetime | None
    template: TemplateInfo | None
    variants: list[VariantInfo]
    deliveries: list[DeliveryInfo]
    error: ErrorInfo | None

    @classmethod
    def of(cls, document: Document) -> DocumentView:
        """The view of a document row."""
        template = None
        if (
            document.template_id
            and document.template_version
            and document.template_sha256
            and document.engine
        ):
            template = TemplateInfo(
                id=document.template_id,
                version=document.template_version,
                sha256=document.template_sha256,
                engine=document.engine,
            )
        return cls(
            id=document.id,
            type=document.type,
            number=document.number,
            issue_date=document.issue_date,
            locale=document.locale,
            status=document.status,
            channels=document.channels,
            created_at=document.created_at,
            updated_at=document.updated_at,
            rendered_at=document.rendered_at,
            delivered_at=document.delivered_at,
            callback_acknowledged_at=document.callback_sent_at,
            template=template,
            variants=[
                VariantInfo(variant=v.variant, sha256=v.sha256, size_bytes=v.size_bytes, pages=v.pages)
                for v in document.variants
            ],
            deliveries=[DeliveryInfo.of(d) for d in document.deliveries],
            error=ErrorInfo.of(document.error_code, document.error_detail),
        )


class DocumentTypeInfo(BaseModel):
    """One entry of ``GET /v1/document-types``."""

    type: str
    titles: dict[str, str]
    retention: str
    template: str
    schema_url: str
