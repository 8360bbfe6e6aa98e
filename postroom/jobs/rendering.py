"""The render step: a queued document becomes PDFs in the spool and one delivery per channel."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

from postroom.core.documents import (
    TemplateChanged,
    TemplateUse,
    VariantRecord,
    add_variant,
    claim_for_rendering,
    locked,
    record_rendering,
)
from postroom.core.models import Document
from postroom.core.states import DeliveryStatus, DocumentStatus
from postroom.documents.catalogue import document_type
from postroom.documents.request import DocumentRequest
from postroom.errors import PermanentError
from postroom.jobs import metrics
from postroom.log import bind_ids, get_logger
from postroom.renderer.engine import Variant
from postroom.runtime import Runtime

log = get_logger(__name__)


class ChannelNotConfigured(PermanentError):
    """The document names a channel this worker has no configuration for."""

    code = "channel_not_configured"


def stored_request(document: Document) -> DocumentRequest:
    """The validated request of a document, rebuilt from its stored payload."""
    if document.payload is None:
        raise LookupError(f"document {document.id} holds no payload any more")
    body: dict[str, Any] = {
        "type": document.type,
        "locale": document.locale,
        "template": document.requested_template,
        "channels": document.channels,
        **document.payload,
    }
    return document_type(document.type).parse(body)


def render_document(rt: Runtime, document_id: uuid.UUID) -> list[uuid.UUID]:
    """Render a document's variants and open its deliveries.

    Returns the ids of deliveries still to be sent. Safe to repeat: a document that
    is already past rendering returns its pending deliveries again (the previous run
    may have died before enqueuing them); a failed or unknown one returns nothing.
    """
    return [delivery_id for delivery_id, _ in render_document_deliveries(rt, document_id)]


def render_document_deliveries(rt: Runtime, document_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """:func:`render_document`, each delivery still to be sent with its channel."""
    with rt.db.session() as session:
        document = claim_for_rendering(session, document_id)
        if document is None or document.status is DocumentStatus.FAILED:
            return []
        bind_ids(document_id=document_id, batch_id=document.batch_id)
        if document.status is not DocumentStatus.RENDERING:
            return _pending(document)
        request = stored_request(document)
        created_at = document.created_at

    missing = [name for name in request.channels if name not in rt.channels]
    if missing:
        raise ChannelNotConfigured(f"channel(s) {', '.join(missing)} not configured on this worker")
    channel_variants: dict[str, str] = {name: rt.channels[name].variant for name in request.channels}
    variants = [cast(Variant, variant) for variant in dict.fromkeys(channel_variants.values())]
    doc_type = document_type(request.type)
    started = time.perf_counter()
    rendering = rt.renderer.render(doc_type, request, variants, timestamp=created_at)
    metrics.RENDER_SECONDS.labels(rendering.template.engine, rendering.template.id).observe(
        time.perf_counter() - started
    )
    for pdf in rendering.pdfs.values():
        rt.spool.write(document_id, pdf.variant, pdf.data)

    template = rendering.template
    with rt.db.session() as session:
        document = locked(session, Document, document_id)
        if document is None or document.status is not DocumentStatus.RENDERING:
            return _pending(document) if document is not None else []
        record_rendering(
            session,
            document,
            TemplateUse(template.id, template.version, template.engine, template.sha256),
            [VariantRecord(p.variant, p.sha256, len(p.data), p.pages) for p in rendering.pdfs.values()],
            channel_variants,
        )
        pending = _pending(document)
    log.info(
        "document rendered",
        document_id=str(document_id),
        document_type=doc_type.name,
        template=template.id,
        template_version=template.version,
        variants=sorted(rendering.pdfs),
    )
    return pending


def render_variant(rt: Runtime, document_id: uuid.UUID, variant: str) -> str:
    """Render one more variant of a rendered document with the same template version; its SHA-256.

    Used when a fallback channel needs a variant the document's own channels did not.
    """
    with rt.db.session() as session:
        document = locked(session, Document, document_id)
        if document is None:
            raise LookupError(f"document {document_id} is gone")
        existing = document.variant(variant)
        if existing is not None:
            return existing.sha256
        request = stored_request(document)
        pinned = f"{document.template_id}@{document.template_version}"
        engine, template_sha256, created_at = document.engine, document.template_sha256, document.created_at
    doc_type = document_type(request.type)
    rendering = rt.renderer.render(
        doc_type,
        request.model_copy(update={"template": pinned}),
        [cast(Variant, variant)],
        timestamp=created_at,
        engine=engine,
    )
    if rendering.template.sha256 != template_sha256:
        raise TemplateChanged(f"template {pinned} changed since document {document_id} was rendered")
    pdf = rendering.pdfs[cast(Variant, variant)]
    rt.spool.write(document_id, pdf.variant, pdf.data)
    with rt.db.session() as session:
        document = locked(session, Document, document_id)
        assert document is not None
        add_variant(session, document, VariantRecord(pdf.variant, pdf.sha256, len(pdf.data), pdf.pages))
    return pdf.sha256


def _pending(document: Document) -> list[tuple[uuid.UUID, str]]:
    return [
        (d.id, d.channel)
        for d in document.deliveries
        if d.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    ]
