"""How the core produces documents: through the hub's own path, as a queued document.

The core builds a request body as any caller of ``POST /v1/documents`` would, validates it
with the document type's schema (so §14 UStG rules hold here exactly as on the API) and
records the ``queued`` document in the caller's transaction. The caller enqueues the
returned ids once that transaction has committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.batches import AcceptedLine, add_lines, close_batch, open_batch
from postroom.core.billing.parties import PartyPurged
from postroom.core.documents import new_document
from postroom.core.models import Document
from postroom.documents.catalogue import document_type
from postroom.documents.parties import Seller
from postroom.settings import Settings


class DocumentRefused(Exception):
    """The document's schema refuses what the core would send; ``errors`` are pydantic's, without
    the input values (which may be personal data)."""

    def __init__(self, document_type: str, errors: list[ErrorDetails]) -> None:
        self.document_type = document_type
        self.errors = errors
        problems = "; ".join(error["msg"] for error in errors[:5])
        super().__init__(f"the {document_type} lacks required content: {problems}")


class IssuerMissing(Exception):
    """No issuing company is configured (``POSTROOM_ISSUER``)."""

    def __init__(self) -> None:
        super().__init__("no issuing company is configured: set POSTROOM_ISSUER (§14(4) Nr. 1 UStG)")


@dataclass
class Outbox:
    """Documents and bulk runs recorded in this transaction, to enqueue after it commits."""

    document_ids: list[uuid.UUID] = field(default_factory=list)
    batch_ids: list[uuid.UUID] = field(default_factory=list)

    def extend(self, other: Outbox) -> None:
        """Take over another outbox's documents and runs."""
        self.document_ids.extend(other.document_ids)
        self.batch_ids.extend(other.batch_ids)


def issuer(settings: Settings) -> Seller:
    """The issuing company, or :class:`IssuerMissing`."""
    if settings.issuer is None:
        raise IssuerMissing
    return settings.issuer


def _parse(body: dict[str, Any]) -> Any:
    doc_type = document_type(body["type"])
    try:
        return doc_type.parse(body)
    except ValidationError as error:
        raise DocumentRefused(doc_type.name, error.errors(include_input=False)) from None


def refusal(build: Callable[[], dict[str, Any]]) -> str | None:
    """Why the hub would refuse the document ``build()`` makes (the customer's data is purged, or
    the schema refuses fields, named without their values), or ``None``. A run uses it to leave
    one customer out instead of refusing the whole run."""
    try:
        body = build()
        document_type(body["type"]).parse(body)
    except PartyPurged:
        return "the customer's data is purged"
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in e["loc"]) or "body" for e in error.errors()[:5])
        return f"refused: {fields}"
    return None


def submit(session: Session, outbox: Outbox, body: dict[str, Any], *, key: str, api_key_id: str) -> Document:
    """Validate ``body`` and record it as a queued document (once per ``key``)."""
    existing = session.scalars(
        select(Document).where(Document.api_key_id == api_key_id, Document.idempotency_key == key)
    ).first()
    if existing is not None:
        return existing
    document = new_document(_parse(body), api_key_id=api_key_id, idempotency_key=key)
    session.add(document)
    session.flush()  # before the row that refers to it: the two are not linked by a relationship
    outbox.document_ids.append(document.id)
    return document


def submit_run(
    session: Session, outbox: Outbox, bodies: Iterable[dict[str, Any]], *, api_key_id: str
) -> tuple[uuid.UUID, list[Document]]:
    """Record ``bodies`` as one bulk run through the hub (all or nothing: the first body the
    schema refuses raises :class:`DocumentRefused`); the batch is expanded after commit.
    Returns the batch id and its documents in the order of ``bodies``."""
    accepted = [AcceptedLine(line=line, request=_parse(body)) for line, body in enumerate(bodies, start=1)]
    batch_id = open_batch(
        session, api_key_id=api_key_id, source_format="core", all_or_nothing=True, callback_url=None
    )
    session.flush()
    add_lines(session, batch_id, accepted, [])
    close_batch(session, batch_id)
    session.flush()
    documents = list(
        session.scalars(select(Document).where(Document.batch_id == batch_id).order_by(Document.batch_line))
    )
    outbox.batch_ids.append(batch_id)
    return batch_id, documents
