"""``/v1/documents``: submit one document, follow it, fetch its PDF."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import selectinload

from postroom.api.auth import require
from postroom.api.problems import FieldError, ProblemError, field_errors, validation_problem
from postroom.api.schemas import DocumentAccepted, DocumentView
from postroom.channels.archive import archive_key
from postroom.channels.eletter import eletter_supports
from postroom.core.documents import IdempotencyConflict, submit_document
from postroom.core.models import Document
from postroom.core.spool import NotHeld
from postroom.core.states import DeliveryStatus
from postroom.documents.catalogue import UnknownDocumentType, document_type
from postroom.documents.request import DocumentRequest
from postroom.errors import PostroomError
from postroom.log import get_logger
from postroom.renderer.engine import TemplateError, Variant
from postroom.runtime import Runtime
from postroom.settings import ApiKey
from postroom.webhooks import UnsafeCallbackUrl, check_callback_url

router = APIRouter(prefix="/v1/documents", tags=["documents"])
log = get_logger(__name__)

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"content": {"application/problem+json": {}}, "description": text}
    for status, text in {
        401: "No valid API key",
        403: "The key lacks the scope",
        404: "No such document or PDF",
        409: "Idempotency-Key reused with another body",
        422: "Invalid request; `errors` names each field",
        503: "The job queue is unavailable; nothing was stored",
    }.items()
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def parse_document_request(body: dict[str, Any], rt: Runtime) -> DocumentRequest:
    """Validate a body against its type's schema, channels and templates; a 422 names each bad field."""
    name = body.get("type")
    if not isinstance(name, str):
        raise validation_problem(
            [FieldError(field="type", message="document type is required", type="missing")]
        )
    try:
        doc_type = document_type(name)
    except UnknownDocumentType as error:
        raise validation_problem(
            [FieldError(field="type", message=str(error), type="unknown_type")]
        ) from None
    try:
        request = doc_type.parse(body)
    except ValidationError as error:
        raise validation_problem(field_errors(error.errors(include_input=False))) from None
    problems = [
        FieldError(
            field=f"channels[{i}]", message=f"channel {c!r} is not available on this hub", type="channel"
        )
        for i, c in enumerate(request.channels)
        if c not in rt.channels
    ]
    problems += [
        FieldError(
            field=f"channels[{i}]",
            message=f"the e-letter provider does not post to {request.recipient.country}",
            type="channel",
        )
        for i, c in enumerate(request.channels)
        if c == "eletter"
        and c in rt.channels
        and not eletter_supports(request.recipient.country, rt.settings)
    ]
    try:
        template = rt.renderer.template_for(doc_type, request.template)
        if template.document_type != doc_type.name:
            message = f"template {template.id} renders {template.document_type}, not {doc_type.name}"
            problems.append(FieldError(field="template", message=message, type="template"))
    except TemplateError as error:
        problems.append(FieldError(field="template", message=error.detail, type="template"))
    if request.callback_url is not None:
        problems.extend(callback_problems(str(request.callback_url), rt))
    if problems:
        raise validation_problem(problems)
    return request


def callback_problems(url: str, rt: Runtime) -> list[FieldError]:
    """What keeps ``url`` from receiving signed callbacks (no secret, an unsafe address)."""
    if rt.settings.webhook_secret is None:
        message = "this hub signs no callbacks (POSTROOM_WEBHOOK_SECRET is not set)"
        return [FieldError(field="callback_url", message=message, type="callback")]
    try:
        check_callback_url(url, allow_private=rt.settings.callback_allow_private_networks)
    except UnsafeCallbackUrl as error:
        return [FieldError(field="callback_url", message=str(error), type="callback")]
    return []


@router.post("", status_code=202, response_model=DocumentAccepted, responses=_PROBLEMS)
def create_document(
    request: Request,
    response: Response,
    body: Annotated[
        dict[str, Any], Body(description="A document request; see GET /v1/document-types/{type}/schema")
    ],
    key: Annotated[ApiKey, Depends(require("documents:write"))],
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> DocumentAccepted:
    """Accept one document for rendering and delivery.

    The same ``Idempotency-Key`` with the same body answers the same document; with another body, 409.
    """
    rt = _runtime(request)
    document_request = parse_document_request(body, rt)
    with rt.db.session() as session:
        try:
            submission = submit_document(
                session, document_request, api_key_id=key.id, idempotency_key=idempotency_key
            )
        except IdempotencyConflict as error:
            raise ProblemError(409, "Conflict", str(error), slug="idempotency-conflict") from None
        document = submission.document
        accepted = DocumentAccepted(id=document.id, status=document.status)
    if submission.created:
        try:
            request.app.state.enqueue_render(accepted.id)
        except Exception as error:
            with rt.db.session() as session:
                session.delete(session.get_one(Document, accepted.id))
            log.error("enqueue failed", document_id=str(accepted.id), error=type(error).__name__)
            raise ProblemError(
                503,
                "Queue unavailable",
                "the document was not accepted; retry later",
                slug="queue-unavailable",
                headers={"Retry-After": "5"},
            ) from None
        log.info(
            "document accepted",
            document_id=str(accepted.id),
            document_type=document_request.type,
            api_key=key.id,
        )
    else:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/documents/{accepted.id}"
    return accepted


def _load(rt: Runtime, document_id: uuid.UUID) -> Document:
    with rt.db.session() as session:
        document = session.get(
            Document,
            document_id,
            options=[selectinload(Document.variants), selectinload(Document.deliveries)],
        )
        if document is None:
            raise ProblemError(404, "Not found", f"no document {document_id}", slug="not-found")
        return document


@router.get("/{document_id}", response_model=DocumentView, responses=_PROBLEMS)
def get_document(
    request: Request, document_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("documents:read"))]
) -> DocumentView:
    """Status, per-channel deliveries, SHA-256 of each variant and the template used."""
    return DocumentView.of(_load(_runtime(request), document_id))


@router.get(
    "/{document_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF"}, **_PROBLEMS},
)
def get_document_pdf(
    request: Request,
    document_id: uuid.UUID,
    _: Annotated[ApiKey, Depends(require("documents:read"))],
    variant: Annotated[
        Variant | None, Query(description="Defaults to archive, else the first rendered")
    ] = None,
) -> Response:
    """A rendered PDF: from the spool while it is held; an archived variant always, from the archive."""
    rt = _runtime(request)
    document = _load(rt, document_id)
    rendered = (
        document.variant(variant)
        if variant
        else (document.variant("archive") or next(iter(document.variants), None))
    )
    if rendered is None:
        raise ProblemError(
            404,
            "Not found",
            f"document {document_id} has no rendered {variant or 'PDF'} yet",
            slug="not-rendered",
        )
    archived = any(
        d.channel == "archive" and d.variant == rendered.variant and d.status is DeliveryStatus.CONFIRMED
        for d in document.deliveries
    )
    try:
        if archived:
            data = rt.archive.get(
                archive_key(document.type, document.issue_date, document.number, document.id)
            )
        else:
            data = rt.spool.read(document.id, rendered.variant)
    except PostroomError as error:
        raise ProblemError(503, "Archive unavailable", error.detail, slug="archive-unavailable") from None
    except (NotHeld, FileNotFoundError):
        raise ProblemError(
            404,
            "Not found",
            f"the {rendered.variant} PDF of document {document_id} is no longer held",
            slug="not-held",
        ) from None
    digest = hashlib.sha256(data).digest()
    if digest.hex() != rendered.sha256:
        log.error("pdf integrity mismatch", document_id=str(document_id), variant=rendered.variant)
        raise ProblemError(
            500, "Integrity error", "the stored PDF does not match its recorded SHA-256", slug="integrity"
        )
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{document.number.replace("/", "_")}.pdf"',
            "ETag": f'"{rendered.sha256}"',
            "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
            "X-Postroom-Variant": rendered.variant,
        },
    )
