"""The render step: a queued document becomes PDFs in the spool and one delivery per channel."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from postroom.core.documents import (
    TemplateChanged,
    TemplateUse,
    VariantRecord,
    add_variant,
    claim_documents_for_rendering,
    claim_for_rendering,
    lock_documents,
    locked,
    record_rendering,
)
from postroom.core.models import Document
from postroom.core.spool import Spool
from postroom.core.states import DeliveryStatus, DocumentStatus
from postroom.documents.catalogue import document_type
from postroom.documents.request import DocumentRequest
from postroom.errors import PermanentError
from postroom.jobs import metrics
from postroom.log import bind_ids, get_logger
from postroom.renderer.engine import Variant
from postroom.renderer.service import RenderedPdf
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


PendingDelivery = tuple[uuid.UUID, str]
"""A delivery still to be sent, with its channel."""


@dataclass(frozen=True, slots=True)
class RenderOrder:
    """A document claimed for rendering: its request and what the PDFs are dated with."""

    document_id: uuid.UUID
    batch_id: uuid.UUID | None
    request: DocumentRequest
    created_at: datetime

    @classmethod
    def of(cls, document: Document) -> RenderOrder:
        """The order of a document in ``rendering``."""
        return cls(document.id, document.batch_id, stored_request(document), document.created_at)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A document's PDFs, and how its channels use them."""

    document_id: uuid.UUID
    template: TemplateUse
    pdfs: Mapping[Variant, RenderedPdf]
    channel_variants: dict[str, str]

    def spool(self, spool: Spool) -> None:
        """Write the PDFs to the spool, variants with the same bytes once (the others as links)."""
        written: dict[str, str] = {}  # SHA-256 → the variant first written with these bytes
        for pdf in self.pdfs.values():
            if pdf.sha256 in written:
                spool.link(self.document_id, pdf.variant, same_as=written[pdf.sha256])
            else:
                spool.write(self.document_id, pdf.variant, pdf.data)
                written[pdf.sha256] = pdf.variant

    def record(self, session: Session, document: Document) -> None:
        """Record the rendering on ``document`` (locked, still in ``rendering``) and open its deliveries."""
        variants = [VariantRecord(p.variant, p.sha256, len(p.data), p.pages) for p in self.pdfs.values()]
        record_rendering(session, document, self.template, variants, self.channel_variants)


def render_document(rt: Runtime, document_id: uuid.UUID) -> list[uuid.UUID]:
    """Render a document's variants and open its deliveries.

    Returns the ids of deliveries still to be sent. Safe to repeat: a document that
    is already past rendering returns its pending deliveries again (the previous run
    may have died before enqueuing them); a failed or unknown one returns nothing.
    """
    return [delivery_id for delivery_id, _ in render_document_deliveries(rt, document_id)]


def render_document_deliveries(rt: Runtime, document_id: uuid.UUID) -> list[PendingDelivery]:
    """:func:`render_document`, each delivery still to be sent with its channel."""
    with rt.db.session() as session:
        document = claim_for_rendering(session, document_id)
        if document is None or document.status is DocumentStatus.FAILED:
            return []
        bind_ids(document_id=document_id, batch_id=document.batch_id)
        if document.status is not DocumentStatus.RENDERING:
            return _pending(document)
        order = RenderOrder.of(document)
    rendered = render_order(rt, order)
    rendered.spool(rt.spool)
    with rt.db.session() as session:
        document = locked(session, Document, document_id)
        if document is None or document.status is not DocumentStatus.RENDERING:
            return _pending(document) if document is not None else []
        rendered.record(session, document)
        return _pending(document)


@dataclass(frozen=True, slots=True)
class GroupRendering:
    """What rendering a group of documents came to: the deliveries still to be sent, by document,
    and the documents that could not be rendered, with the error."""

    pending: dict[uuid.UUID, list[PendingDelivery]]
    failed: dict[uuid.UUID, Exception]


def render_documents(rt: Runtime, document_ids: Collection[uuid.UUID]) -> GroupRendering:
    """:func:`render_document_deliveries` for a group of a bulk run's documents: one transaction
    claims them all and one records every rendering, instead of two per document.

    A document whose rendering fails is reported with its error and leaves the others alone; it
    stays in ``rendering`` for the caller to fail or to render again on its own.
    """
    pending: dict[uuid.UUID, list[PendingDelivery]] = {}
    with rt.db.session() as session:
        orders = []
        for document in claim_documents_for_rendering(session, document_ids):
            if document.status is DocumentStatus.RENDERING:
                orders.append(RenderOrder.of(document))
            elif document.status is not DocumentStatus.FAILED:
                pending[document.id] = _pending(document)
    failed: dict[uuid.UUID, Exception] = {}
    spooling: list[tuple[Rendered, Future[None]]] = []
    # The spool's fsyncs in a thread of their own: the next document renders meanwhile.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool") as writer:
        for order in orders:
            bind_ids(document_id=order.document_id, batch_id=order.batch_id)
            try:
                rendering = render_order(rt, order)
            except Exception as error:
                failed[order.document_id] = error
                continue
            spooling.append((rendering, writer.submit(rendering.spool, rt.spool)))
    rendered: list[Rendered] = []
    for rendering, written in spooling:
        problem = written.exception()
        if problem is None:
            rendered.append(rendering)
        elif isinstance(problem, Exception):
            failed[rendering.document_id] = problem
        else:
            raise problem
    if rendered:
        with rt.db.session() as session:
            documents = lock_documents(session, [r.document_id for r in rendered], for_handoff=True)
            for rendering in rendered:
                entry = documents.get(rendering.document_id)
                if entry is None:
                    continue
                if entry.document.status is DocumentStatus.RENDERING:
                    rendering.record(session, entry.document)
                pending[rendering.document_id] = _pending(entry.document)
    return GroupRendering(pending, failed)


def render_order(rt: Runtime, order: RenderOrder) -> Rendered:
    """Render the variants a claimed document's channels need."""
    request, document_id = order.request, order.document_id
    missing = [name for name in request.channels if name not in rt.channels]
    if missing:
        raise ChannelNotConfigured(f"channel(s) {', '.join(missing)} not configured on this worker")
    channel_variants: dict[str, str] = {name: rt.channels[name].variant for name in request.channels}
    variants = [cast(Variant, variant) for variant in dict.fromkeys(channel_variants.values())]
    doc_type = document_type(request.type)
    started = time.perf_counter()
    rendering = rt.renderer.render(doc_type, request, variants, timestamp=order.created_at)
    metrics.RENDER_SECONDS.labels(rendering.template.engine, rendering.template.id).observe(
        time.perf_counter() - started
    )
    template = rendering.template
    log.info(
        "document rendered",
        document_id=str(document_id),
        document_type=doc_type.name,
        template=template.id,
        template_version=template.version,
        variants=sorted(rendering.pdfs),
    )
    return Rendered(
        document_id,
        TemplateUse(template.id, template.version, template.engine, template.sha256),
        rendering.pdfs,
        channel_variants,
    )


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


def _pending(document: Document) -> list[PendingDelivery]:
    return [
        (d.id, d.channel)
        for d in document.deliveries
        if d.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    ]
