"""Archiving documents for the auditor tests through the hub's own job steps, in this process."""

from __future__ import annotations

import uuid

from postroom.core.documents import submit_document
from postroom.core.models import Document
from postroom.documents.request import DocumentRequest
from postroom.jobs import delivery, rendering
from postroom.runtime import Runtime


def archive_through_the_hub(rt: Runtime, request: DocumentRequest) -> tuple[uuid.UUID, str]:
    """Submit, render and deliver ``request``; its document id and the archive variant's SHA-256."""
    with rt.db.session() as session:
        document_id = submit_document(session, request, api_key_id="test", idempotency_key=None).document.id
    for delivery_id in rendering.render_document(rt, document_id):
        delivery.deliver(rt, delivery_id)
    with rt.db.session() as session:
        variant = session.get_one(Document, document_id).variant("archive")
        assert variant is not None
        return document_id, variant.sha256
