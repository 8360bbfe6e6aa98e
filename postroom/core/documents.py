"""State changes of documents and deliveries.

Every function takes an open :class:`~sqlalchemy.orm.Session` inside a transaction
and is safe to repeat: jobs are delivered at least once, so each step checks where
the row stands before it moves it forward.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from postroom.core.billing.handoffs import document_delivered
from postroom.core.models import (
    AuditEvent,
    Base,
    Delivery,
    DeliveryEvent,
    Document,
    PrintPiece,
    RenderedVariant,
    TemplateRelease,
    utcnow,
)
from postroom.core.states import (
    FINAL_DELIVERY_STATES,
    FINAL_DOCUMENT_STATES,
    DeliveryStatus,
    DocumentStatus,
    check_delivery_transition,
    check_document_transition,
)
from postroom.documents.catalogue import document_type
from postroom.documents.request import DocumentRequest
from postroom.errors import PermanentError, TransientError

Row = TypeVar("Row", bound=Base)


class IdempotencyConflict(Exception):
    """An ``Idempotency-Key`` was reused with a different request body."""


class DeliveryBusy(TransientError):
    """Another worker holds the delivery's lease; try again after it expires."""

    code = "delivery_busy"


class TemplateChanged(PermanentError):
    """A template's content changed without a new version number."""

    code = "template_changed"


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of a submit: the document and whether this call created it."""

    document: Document
    created: bool


@dataclass(frozen=True, slots=True)
class TemplateUse:
    """Which template rendered a document."""

    template_id: str
    version: int
    engine: str
    sha256: str


@dataclass(frozen=True, slots=True)
class VariantRecord:
    """Fingerprint of one rendered PDF."""

    variant: str
    sha256: str
    size_bytes: int
    pages: int


def request_fingerprint(request: DocumentRequest) -> str:
    """SHA-256 of the request in canonical JSON, so formatting differences do not matter."""
    canonical = json.dumps(
        request.model_dump(mode="json", exclude_none=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_document(
    request: DocumentRequest,
    *,
    api_key_id: str,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Document:
    """The ``queued`` row of a validated request (not yet added to a session); ``fingerprint``
    is its :func:`request_fingerprint` when the caller has it already."""
    document = Document(
        id=uuid.uuid4(),
        type=request.type,
        number=request.number,
        issue_date=request.data.issue_date,
        locale=request.locale,
        status=DocumentStatus.QUEUED,
        channels=list(request.channels),
        requested_template=request.template,
        payload={
            "recipient": request.recipient.model_dump(mode="json", exclude_none=True),
            "data": request.data.model_dump(mode="json", exclude_none=True),
        },
        callback_url=str(request.callback_url) if request.callback_url else None,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        request_sha256=fingerprint or request_fingerprint(request),
        customer_ref=request.recipient.customer_number,
    )
    total = document_type(request.type).total(request)
    if total is not None:
        document.amount, document.currency = total
    return document


def submit_document(
    session: Session, request: DocumentRequest, *, api_key_id: str, idempotency_key: str | None
) -> Submission:
    """Record a new document in ``queued``, or return the one this idempotency key created.

    Raises :class:`IdempotencyConflict` when the key was used for a different body.
    """
    fingerprint = request_fingerprint(request)
    if idempotency_key is not None:
        existing = _by_idempotency_key(session, api_key_id, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint)
    document = new_document(
        request, api_key_id=api_key_id, idempotency_key=idempotency_key, fingerprint=fingerprint
    )
    try:
        with session.begin_nested():
            session.add(document)
    except IntegrityError:
        # Another request with the same key won the race; answer as it did.
        existing = _by_idempotency_key(session, api_key_id, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    return Submission(document=document, created=True)


def _by_idempotency_key(session: Session, api_key_id: str, key: str) -> Document | None:
    return session.scalar(
        select(Document).where(Document.api_key_id == api_key_id, Document.idempotency_key == key)
    )


def _replay(existing: Document, fingerprint: str) -> Submission:
    if existing.request_sha256 != fingerprint:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
    return Submission(document=existing, created=False)


def locked(session: Session, model: type[Row], row_id: uuid.UUID) -> Row | None:
    """Load a row with ``SELECT … FOR UPDATE`` (a no-op on SQLite, which serialises writers)."""
    return session.get(model, row_id, with_for_update=True, populate_existing=True)


def locked_delivery(session: Session, delivery_id: uuid.UUID) -> Delivery | None:
    """Lock a delivery's document, then the delivery: the one lock order of every writer.

    Settling a document locks the document after its delivery changed; PostgreSQL's foreign-key
    check on a row updated twice in one transaction share-locks the document meanwhile, so two
    deliveries of one document confirmed at once, each locking the delivery first, deadlock.
    """
    document = session.scalars(
        select(Document)
        .join(Delivery, Delivery.document_id == Document.id)
        .where(Delivery.id == delivery_id)
        .with_for_update(of=Document)
        .execution_options(populate_existing=True)
    ).first()
    if document is None:
        return None
    delivery = locked(session, Delivery, delivery_id)
    if delivery is not None:
        # The session holds its objects weakly: without this reference the document just locked
        # is gone again when the caller reads ``delivery.document``, which loads it once more.
        set_committed_value(delivery, "document", document)
    return delivery


def move_document(document: Document, target: DocumentStatus) -> None:
    """Advance a document's status, refusing backward moves."""
    check_document_transition(document.status, target)
    document.status = target
    if target is DocumentStatus.DELIVERED:
        document.delivered_at = utcnow()


def move_delivery(
    delivery: Delivery, target: DeliveryStatus, event: str | None = None, detail: str | None = None
) -> None:
    """Advance a delivery's status, refusing backward moves; the step joins its history."""
    check_delivery_transition(delivery.status, target)
    delivery.status = target
    note_delivery_event(delivery, event or target.value, detail)
    if target is DeliveryStatus.SENT:
        delivery.sent_at = utcnow()
    elif target is DeliveryStatus.CONFIRMED:
        delivery.confirmed_at = utcnow()


def note_delivery_event(delivery: Delivery, event: str, detail: str | None = None) -> None:
    """Add a step to the delivery's history at its current status (``detail`` never holds personal data).

    A stored delivery whose history is not loaded gets the step added to its session directly:
    appending to the collection would first load every earlier step (one query per hand-off).
    A later read of ``delivery.events`` in the session flushes it and loads it with the rest.
    """
    step = DeliveryEvent(status=delivery.status, event=event, detail=detail[:500] if detail else None)
    state = inspect(delivery)
    if state.persistent and "events" in state.unloaded and state.session is not None:
        step.delivery_id = delivery.id
        state.session.add(step)
    else:
        delivery.events.append(step)


def audit(session: Session, action: str, reason: str, *, document_id: uuid.UUID | None, actor: str) -> None:
    """Write an audit entry (purges, fallbacks, resolutions)."""
    session.add(AuditEvent(document_id=document_id, action=action, reason=reason[:200], actor=actor))


def claim_for_rendering(session: Session, document_id: uuid.UUID) -> Document | None:
    """Move a queued document to ``rendering``; ``None`` when it is gone or already failed.

    A document left in ``rendering`` by a worker that died is claimed again.
    """
    document = locked(session, Document, document_id)
    if document is None:
        return None
    if document.status is DocumentStatus.QUEUED:
        move_document(document, DocumentStatus.RENDERING)
    return document


def claim_documents_for_rendering(session: Session, document_ids: Collection[uuid.UUID]) -> list[Document]:
    """:func:`claim_for_rendering` for many documents at once, locked in id order (the order of
    :func:`lock_documents`); their deliveries are loaded with them. Unknown ids are left out."""
    documents = session.scalars(
        select(Document)
        .where(Document.id.in_(document_ids))
        .options(selectinload(Document.deliveries))
        .order_by(Document.id)
        .with_for_update(of=Document)
        .execution_options(populate_existing=True)
    ).all()
    for document in documents:
        if document.status is DocumentStatus.QUEUED:
            move_document(document, DocumentStatus.RENDERING)
    return list(documents)


_RELEASES_SEEN: weakref.WeakKeyDictionary[Engine, set[TemplateUse]] = weakref.WeakKeyDictionary()
"""Template versions found recorded with the hash they are used with, by database engine: release
rows are never changed or deleted, so each is read once per process rather than once per document."""


def record_template_use(session: Session, use: TemplateUse) -> None:
    """Remember the content hash of a template version; refuse it if it has changed since."""
    seen = _RELEASES_SEEN.setdefault(session.get_bind().engine, set())
    if use in seen:
        return
    release = session.get(TemplateRelease, (use.template_id, use.version))
    if release is None:
        try:
            with session.begin_nested():
                session.add(
                    TemplateRelease(
                        template_id=use.template_id, version=use.version, engine=use.engine, sha256=use.sha256
                    )
                )
            return
        except IntegrityError:
            release = session.get(TemplateRelease, (use.template_id, use.version), populate_existing=True)
            assert release is not None
    if release.sha256 != use.sha256:
        raise TemplateChanged(
            f"template {use.template_id} version {use.version} differs from the content first used; "
            "a changed template needs a new version"
        )
    # Only a row read back is remembered, never one this (uncommitted) transaction inserts.
    seen.add(use)


def record_rendering(
    session: Session,
    document: Document,
    use: TemplateUse,
    variants: Iterable[VariantRecord],
    channel_variants: dict[str, str],
) -> list[Delivery]:
    """Store what was rendered, open one delivery per channel and move to ``delivering``."""
    record_template_use(session, use)
    document.template_id = use.template_id
    document.template_version = use.version
    document.template_sha256 = use.sha256
    document.engine = use.engine
    document.rendered_at = utcnow()
    for record in variants:
        add_variant(session, document, record)
    for channel in document.channels:
        delivery = Delivery(
            id=uuid.uuid4(), channel=channel, variant=channel_variants[channel], status=DeliveryStatus.PENDING
        )
        note_delivery_event(delivery, "opened")
        document.deliveries.append(delivery)
    move_document(document, DocumentStatus.RENDERED)
    move_document(document, DocumentStatus.DELIVERING)
    return list(document.deliveries)


def add_variant(session: Session, document: Document, record: VariantRecord) -> None:
    """Record a rendered PDF of ``document`` unless that variant is recorded already."""
    if document.variant(record.variant) is None:
        document.variants.append(
            RenderedVariant(
                variant=record.variant, sha256=record.sha256, size_bytes=record.size_bytes, pages=record.pages
            )
        )


def fail_document(session: Session, document_id: uuid.UUID, code: str, detail: str) -> None:
    """Mark a document failed unless it already reached a final state."""
    document = locked(session, Document, document_id)
    if document is None or document.status in FINAL_DOCUMENT_STATES:
        return
    document.error_code, document.error_detail = code, detail
    move_document(document, DocumentStatus.FAILED)


def claim_for_sending(
    session: Session, delivery_id: uuid.UUID, lease: timedelta, holder: str | None = None
) -> Delivery | None:
    """Take a delivery for one attempt: ``sending``, attempt counted, leased for ``lease`` to
    ``holder`` (the job message's id).

    Returns ``None`` when there is nothing to send: the delivery is unknown, already
    sent (awaiting confirmation) or final. A delivery in ``sending`` whose lease ran
    out belonged to a worker that failed or died and is attempted again; one whose
    lease still runs is being sent right now, which raises :class:`DeliveryBusy`, unless
    ``holder`` holds it: the queue hands a message out again only once the worker that had
    it stopped sending heartbeats, so its attempt died with that worker.
    """
    delivery = locked_delivery(session, delivery_id)
    return claim_locked_for_sending(delivery, lease, holder) if delivery is not None else None


def claim_locked_for_sending(
    delivery: Delivery, lease: timedelta, holder: str | None = None
) -> Delivery | None:
    """:func:`claim_for_sending` for a delivery locked already (see :func:`lock_documents`)."""
    if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
        return None
    now = utcnow()
    leased = delivery.lease_expires_at is not None and delivery.lease_expires_at > now
    if leased and (holder is None or delivery.lease_holder != holder):
        raise DeliveryBusy(f"delivery {delivery.id} is being sent by another worker")
    if delivery.status is DeliveryStatus.PENDING:
        move_delivery(delivery, DeliveryStatus.SENDING)
    delivery.attempts += 1
    delivery.lease_expires_at, delivery.lease_holder = now + lease, holder
    return delivery


def record_handoff(
    session: Session,
    delivery_id: uuid.UUID,
    external_ref: str,
    *,
    confirmed: bool,
    event: str | None = None,
) -> Delivery:
    """Record a successful hand-off (``sent``), confirmed at once where the channel says so.

    ``event`` names the hand-off in the history (``queued_for_print``, ``submitted``, …).
    """
    delivery = locked_delivery(session, delivery_id)
    assert delivery is not None
    if _handed_off(delivery, external_ref, confirmed, event):
        settle_document(session, delivery.document_id)
    return delivery


def record_locked_handoff(
    session: Session,
    locked_document: LockedDocument,
    delivery: Delivery,
    external_ref: str,
    *,
    confirmed: bool,
    event: str | None = None,
) -> None:
    """:func:`record_handoff` for a delivery of a document :func:`lock_documents` locked."""
    if _handed_off(delivery, external_ref, confirmed, event):
        _settle(session, locked_document.document, locked_document.deliveries)


def _handed_off(delivery: Delivery, external_ref: str, confirmed: bool, event: str | None) -> bool:
    """Move a locked delivery to ``sent`` (and ``confirmed``); whether it was confirmed now."""
    delivery.lease_expires_at = delivery.lease_holder = None
    if delivery.status is DeliveryStatus.SENDING:
        delivery.external_ref = external_ref
        delivery.error_code = delivery.error_detail = None
        move_delivery(delivery, DeliveryStatus.SENT, event)
    if confirmed and delivery.status is DeliveryStatus.SENT:
        move_delivery(delivery, DeliveryStatus.CONFIRMED)
        return True
    return False


def confirm_delivery(
    session: Session, delivery_id: uuid.UUID, event: str, detail: str | None = None
) -> Delivery | None:
    """The channel's counterpart confirmed a sent delivery (acknowledgement file, provider status).

    Repeating it changes nothing; a delivery that is not ``sent`` is returned unchanged.
    """
    delivery = locked_delivery(session, delivery_id)
    if delivery is None:
        return None
    if delivery.status is DeliveryStatus.SENT:
        move_delivery(delivery, DeliveryStatus.CONFIRMED, event, detail)
        settle_document(session, delivery.document_id)
    return delivery


def note_delivery_error(session: Session, delivery_id: uuid.UUID, code: str, detail: str) -> None:
    """Keep the last transient error on the delivery and release its lease for the retry."""
    delivery = locked_delivery(session, delivery_id)
    if delivery is not None and delivery.status not in FINAL_DELIVERY_STATES:
        delivery.error_code, delivery.error_detail = code, detail
        delivery.lease_expires_at = delivery.lease_holder = None
        note_delivery_event(delivery, "deferred", code)


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a channel's documents go when it fails for good: another channel and its variant."""

    channel: str
    variant: str


def fail_delivery(
    session: Session,
    delivery_id: uuid.UUID,
    code: str,
    detail: str,
    *,
    fallbacks: Mapping[str, Fallback] | None = None,
) -> Delivery | None:
    """Give a delivery up.

    When ``fallbacks`` names a channel for the failed one, the recipient has a postal
    address and the document has no delivery on that channel yet, a new delivery on
    it replaces the failed one and is returned (to be sent); otherwise the document
    fails with the delivery and ``None`` is returned.
    """
    delivery = locked_delivery(session, delivery_id)
    if delivery is None or delivery.status in FINAL_DELIVERY_STATES:
        return None
    delivery.error_code, delivery.error_detail = code, detail
    delivery.lease_expires_at = delivery.lease_holder = None
    move_delivery(delivery, DeliveryStatus.FAILED, "failed", code)
    replacement = _fallback_for(delivery, (fallbacks or {}).get(delivery.channel))
    if replacement is not None:
        audit(
            session,
            "fallback",
            f"{delivery.channel} failed ({code}); sent by {replacement.channel} instead",
            document_id=delivery.document_id,
            actor="postroom",
        )
        return replacement
    fail_document(session, delivery.document_id, f"delivery_{delivery.channel}_failed", detail)
    return None


def _fallback_for(failed: Delivery, fallback: Fallback | None) -> Delivery | None:
    document = failed.document
    if fallback is None or document.status is not DocumentStatus.DELIVERING or document.payload is None:
        return None
    if any(d.channel == fallback.channel for d in document.deliveries):
        return None
    recipient = document.payload.get("recipient", {})
    if not all(recipient.get(key) for key in ("street", "postcode", "city")):
        return None
    replacement = Delivery(
        id=uuid.uuid4(),
        channel=fallback.channel,
        variant=fallback.variant,
        status=DeliveryStatus.PENDING,
        replaces_id=failed.id,
    )
    note_delivery_event(replacement, "opened", f"fallback for {failed.channel}")
    document.deliveries.append(replacement)
    return replacement


def stalled_fallbacks(session: Session, pending_before: datetime) -> list[uuid.UUID]:
    """Fallback deliveries still pending since before ``pending_before``: their message was lost
    (the queue was unreachable just after the failure that opened them) and must be sent again."""
    query = (
        select(Delivery.id)
        .join(Document, Document.id == Delivery.document_id)
        .where(
            Delivery.replaces_id.is_not(None),
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.created_at < pending_before,
            Document.status == DocumentStatus.DELIVERING,
        )
    )
    return list(session.scalars(query))


def stalled_renders(session: Session, queued_before: datetime, limit: int = 1000) -> list[uuid.UUID]:
    """Single documents still ``queued`` since before ``queued_before``: their render message was
    never sent (the queue was unreachable when the core issued them) or was lost. Bulk runs'
    documents are left out: their chunk actors send them."""
    query = (
        select(Document.id)
        .where(
            Document.status == DocumentStatus.QUEUED,
            Document.batch_id.is_(None),
            Document.created_at < queued_before,
        )
        .limit(limit)
    )
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Retry:
    """What retrying a failed document opened: rendering again, or these deliveries."""

    render: bool
    deliveries: list[uuid.UUID]


def retry_failed_document(session: Session, document_id: uuid.UUID, *, actor: str) -> Retry | None:
    """Give a failed document another run, on an operator's word; ``None`` when it cannot have one
    (not failed, purged, or cancelled).

    The one backward step of the lifecycle, recorded in the audit log: a document that failed
    before it was rendered is queued again; one that failed in delivery goes back to
    ``delivering`` with its failed deliveries ``pending`` again. Confirmed deliveries stay as
    they are, so nobody gets a second letter.
    """
    document = locked(session, Document, document_id)
    if (
        document is None
        or document.status is not DocumentStatus.FAILED
        or document.payload is None
        or document.error_code == "cancelled"
    ):
        return None
    replaced = {d.replaces_id for d in document.deliveries if d.replaces_id is not None}
    failed = [d for d in document.deliveries if d.id not in replaced and d.status is DeliveryStatus.FAILED]
    document.error_code = document.error_detail = None
    document.callback_sent_at = None
    if document.rendered_at is None:
        document.status = DocumentStatus.QUEUED
    else:
        document.status = DocumentStatus.DELIVERING
        for delivery in failed:
            delivery.status, delivery.error_code, delivery.error_detail = DeliveryStatus.PENDING, None, None
            note_delivery_event(delivery, "retried", f"by {actor}")
    audit(session, "retry", "failed document given another run", document_id=document_id, actor=actor)
    return Retry(render=document.rendered_at is None, deliveries=[d.id for d in failed])


def callback_due(document: Document) -> bool:
    """The document reached a final state and its requester has not been told yet."""
    return (
        document.callback_url is not None
        and document.callback_sent_at is None
        and document.status in FINAL_DOCUMENT_STATES
    )


def record_callback(session: Session, document_id: uuid.UUID) -> None:
    """Note that the requester acknowledged the final-state callback."""
    document = locked(session, Document, document_id)
    if document is not None and document.callback_sent_at is None:
        document.callback_sent_at = utcnow()


def settle_document(session: Session, document_id: uuid.UUID) -> None:
    """Move a document to ``delivered`` once every delivery is confirmed (a failed one that a
    fallback delivery replaced counts by its replacement).

    The document row is locked first so that two deliveries confirming at the same
    moment cannot both miss each other's confirmation.
    """
    document = locked(session, Document, document_id)
    if document is None or document.status is not DocumentStatus.DELIVERING:
        return
    # populate_existing: deliveries this session loaded before the lock may be stale (another
    # worker confirmed them since); refreshing the collection alone would keep their old state.
    deliveries = session.scalars(
        select(Delivery).where(Delivery.document_id == document_id).execution_options(populate_existing=True)
    ).all()
    _settle(session, document, deliveries)


def _settle(session: Session, document: Document, deliveries: Sequence[Delivery]) -> None:
    """:func:`settle_document` for a locked document and the current state of all its deliveries."""
    if document.status is not DocumentStatus.DELIVERING:
        return
    replaced = {d.replaces_id for d in deliveries if d.replaces_id is not None}
    standing = [d for d in deliveries if d.id not in replaced]
    if standing and all(d.status is DeliveryStatus.CONFIRMED for d in standing):
        move_document(document, DocumentStatus.DELIVERED)
        document_delivered(session, document.id)


@dataclass(frozen=True, slots=True)
class LockedDocument:
    """A document locked for update with every one of its deliveries, locked and current."""

    document: Document
    deliveries: list[Delivery]

    def delivery(self, delivery_id: uuid.UUID) -> Delivery | None:
        """The document's delivery ``delivery_id``."""
        return next((d for d in self.deliveries if d.id == delivery_id), None)


def lock_documents(
    session: Session, document_ids: Collection[uuid.UUID], *, for_handoff: bool = False
) -> dict[uuid.UUID, LockedDocument]:
    """Lock many documents and all their deliveries in two statements, by id.

    Every document before any delivery and each kind in id order: the lock order of every writer
    (see :func:`locked_delivery`), so a step over hundreds of documents (a print acknowledgement)
    neither deadlocks with the single-document writers nor costs three queries a document.
    The request (recipient and lines) is left unloaded unless ``for_handoff``, which loads it and
    the rendered variants with it: what handing a document to a channel needs.
    """
    if not document_ids:
        return {}
    loading = (
        selectinload(Document.variants) if for_handoff else defer(Document.payload)  # large, and personal
    )
    documents = session.scalars(
        select(Document)
        .where(Document.id.in_(document_ids))
        .options(loading)
        .order_by(Document.id)
        .with_for_update(of=Document)
        .execution_options(populate_existing=True)
    ).all()
    deliveries = session.scalars(
        select(Delivery)
        .where(Delivery.document_id.in_(document_ids))
        .order_by(Delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    found = {document.id: LockedDocument(document, []) for document in documents}
    for delivery in deliveries:
        entry = found[delivery.document_id]
        set_committed_value(delivery, "document", entry.document)
        entry.deliveries.append(delivery)
    for entry in found.values():
        # The collection as the relationship orders it, so that reading it queries nothing.
        set_committed_value(entry.document, "deliveries", sorted(entry.deliveries, key=lambda d: d.channel))
    return found


def confirm_locked_delivery(
    session: Session,
    locked_document: LockedDocument,
    delivery: Delivery,
    event: str,
    detail: str | None = None,
) -> None:
    """:func:`confirm_delivery` for a delivery of a document :func:`lock_documents` locked."""
    if delivery.status is DeliveryStatus.SENT:
        move_delivery(delivery, DeliveryStatus.CONFIRMED, event, detail)
        _settle(session, locked_document.document, locked_document.deliveries)


def purge_personal_data(session: Session, document_id: uuid.UUID, reason: str, *, actor: str) -> bool:
    """Remove a document's personal data from the database; ``True`` if this call removed it.

    Dropped: the request payload (recipient block and data) and the print queue rows.
    Kept: ids, type, number, amounts, SHA-256 of each variant, template, timestamps,
    the pseudonymous customer number and the delivery history. The removal is audited.
    """
    document = locked(session, Document, document_id)
    if document is None or document.purged_at is not None:
        return False
    document.payload = None
    document.purged_at = utcnow()
    for piece in session.scalars(select(PrintPiece).where(PrintPiece.document_id == document_id)):
        session.delete(piece)
    audit(session, "purged", reason, document_id=document_id, actor=actor)
    return True


def purgeable(
    session: Session, *, failed_before: datetime, limit: int = 500
) -> list[tuple[uuid.UUID, DocumentStatus]]:
    """Documents still holding personal data although they are done with: every hand-off
    confirmed, or failed before ``failed_before`` (the configured maximum age)."""
    query = (
        select(Document.id, Document.status)
        .where(Document.purged_at.is_(None))
        .where(
            (Document.status == DocumentStatus.DELIVERED)
            | ((Document.status == DocumentStatus.FAILED) & (Document.updated_at < failed_before))
        )
        .limit(limit)
    )
    return [(row.id, row.status) for row in session.execute(query)]
