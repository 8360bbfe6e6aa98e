"""``/v1/templates`` (the registry: shipped and uploaded versions) and ``/v1/previews``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, ValidationError

from postroom.api.auth import require
from postroom.api.problems import FieldError, ProblemError, field_errors, validation_problem
from postroom.api.routes.documents import parse_document_request
from postroom.core.models import TemplateUpload
from postroom.core.template_uploads import (
    TemplateVersionConflict,
    list_template_uploads,
    store_template_upload,
)
from postroom.documents.catalogue import CATALOGUE
from postroom.renderer.bundle import MAX_BYTES, TemplateBundle
from postroom.renderer.engine import Template, TemplateError, Variant
from postroom.renderer.preview import first_page_png
from postroom.renderer.uploads import prepare_upload
from postroom.runtime import Runtime
from postroom.settings import ApiKey

router = APIRouter(tags=["templates"])

PREVIEW_TIMESTAMP = datetime(2026, 1, 1, tzinfo=UTC)


class TemplateInfo(BaseModel):
    """One template version in the registry."""

    id: str
    version: int
    engine: str
    document_type: str
    sha256: str
    source: Literal["shipped", "uploaded"]
    uploaded_at: datetime | None = None
    uploaded_by: str | None = None
    description: str | None = None

    @classmethod
    def uploaded(cls, row: TemplateUpload) -> TemplateInfo:
        """An uploaded version."""
        return cls(
            id=row.template_id,
            version=row.version,
            engine=row.engine,
            document_type=row.document_type,
            sha256=row.sha256,
            source="uploaded",
            uploaded_at=row.uploaded_at,
            uploaded_by=row.uploaded_by,
            description=row.description,
        )

    @classmethod
    def shipped(cls, template: Template) -> TemplateInfo:
        """A shipped template."""
        return cls(
            id=template.id,
            version=template.version,
            engine=template.engine,
            document_type=template.document_type,
            sha256=template.sha256,
            source="shipped",
        )


class PreviewRequest(BaseModel):
    """``POST /v1/previews``: a document request (or the type's example) rendered but not delivered."""

    type: str = Field(description="document type; its shipped example is used when `request` is absent")
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]+(@[0-9]+)?$")
    engine: str | None = None
    locale: Literal["de", "en"] | None = None
    variant: Variant = "email"
    format: Literal["pdf", "png"] = "pdf"
    dpi: int = Field(default=110, ge=36, le=300)
    request: dict[str, Any] | None = Field(default=None, description="a POST /v1/documents body")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _example(rt: Runtime, document_type: str) -> dict[str, Any]:
    path = rt.settings.examples_dir / f"{document_type}.json"
    if not path.is_file():
        message = f"no example for type {document_type!r}; send a request body"
        raise validation_problem([FieldError(field="request", message=message, type="missing")])
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


@router.get("/v1/templates", response_model=list[TemplateInfo])
def list_templates(
    request: Request, _: Annotated[ApiKey, Depends(require("documents:read"))]
) -> list[TemplateInfo]:
    """Every shipped template and every uploaded version."""
    rt = _runtime(request)
    infos = [TemplateInfo.shipped(t) for t in rt.renderer.templates.shipped.values()]
    with rt.db.session() as session:
        infos.extend(TemplateInfo.uploaded(row) for row in list_template_uploads(session))
    return sorted(infos, key=lambda info: (info.id, info.engine, info.version))


@router.post(
    "/v1/templates",
    status_code=201,
    response_model=TemplateInfo,
    openapi_extra={"requestBody": {"required": True, "content": {"application/zip": {}}}},
)
async def upload_template(
    request: Request, response: Response, key: Annotated[ApiKey, Depends(require("admin"))]
) -> TemplateInfo:
    """Upload a template version as a zip with ``template.toml`` (id, version, engine, entry, type).

    The version is checked by rendering the type's example with it. Versions are
    immutable: the same content again answers 200, other content for an existing
    version 409.
    """
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise ProblemError(413, "Too large", f"template zips are limited to {MAX_BYTES // 2**20} MiB")
    rt = _runtime(request)
    try:
        bundle = TemplateBundle.from_zip(body)
    except TemplateError as error:
        raise validation_problem([FieldError(field="body", message=error.detail, type="template")]) from None
    manifest = bundle.manifest
    problems = []
    if manifest.engine not in rt.renderer.engines:
        message = f"engine {manifest.engine!r} is not available; use one of {sorted(rt.renderer.engines)}"
        problems.append(FieldError(field="template.toml.engine", message=message, type="template"))
    if manifest.document_type not in CATALOGUE:
        message = f"unknown document type {manifest.document_type!r}"
        problems.append(FieldError(field="template.toml.type", message=message, type="template"))
    if any(template_id == manifest.id for template_id, _ in rt.renderer.templates.shipped):
        message = f"{manifest.id!r} is a shipped template; choose another id"
        problems.append(FieldError(field="template.toml.id", message=message, type="template"))
    if problems:
        raise validation_problem(problems)
    upload, template = prepare_upload(bundle, rt.renderer.templates.root, rt.settings.template_cache_path)
    doc_type = CATALOGUE[manifest.document_type]
    try:
        example = doc_type.parse(_example(rt, doc_type.name))
        engine = rt.renderer.engines[template.engine]
        engine.render(template, doc_type.context(example), "email", timestamp=PREVIEW_TIMESTAMP)
    except TemplateError as error:
        message = f"the template does not render the {doc_type.name} example: {error.detail}"
        raise validation_problem([FieldError(field="body", message=message, type="template")]) from None
    with rt.db.session() as session:
        try:
            row, created = store_template_upload(session, upload, uploaded_by=key.id)
        except TemplateVersionConflict as error:
            raise ProblemError(409, "Conflict", str(error), slug="template-version-exists") from None
        info = TemplateInfo.uploaded(row)
    if not created:
        response.status_code = 200
    return info


@router.post(
    "/v1/previews",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "image/png": {}}, "description": "PDF or PNG of page 1"}
    },
)
def preview(
    request: Request, body: PreviewRequest, _: Annotated[ApiKey, Depends(require("documents:write"))]
) -> Response:
    """Render a document (or the type's example) with any template and engine; nothing is stored or sent."""
    rt = _runtime(request)
    document = dict(body.request) if body.request is not None else _example(rt, body.type)
    document["type"] = body.type
    document["channels"] = ["archive"]  # a preview delivers nothing; archive asks nothing of the recipient
    if body.template is not None:
        document["template"] = body.template
    if body.locale is not None:
        document["locale"] = body.locale
    try:
        parsed = parse_document_request(document, rt)
    except ProblemError as problem:
        errors = problem.problem.errors or []
        raise validation_problem(
            [e.model_copy(update={"field": f"request.{e.field}"}) for e in errors]
        ) from None
    except ValidationError as error:  # pragma: no cover - parse_document_request converts these
        raise validation_problem(field_errors(error.errors(include_input=False))) from None
    doc_type = CATALOGUE[parsed.type]
    try:
        rendering = rt.renderer.render(
            doc_type, parsed, [body.variant], timestamp=PREVIEW_TIMESTAMP, engine=body.engine
        )
    except TemplateError as error:
        raise validation_problem(
            [FieldError(field="template", message=error.detail, type="template")]
        ) from None
    pdf = rendering.pdfs[body.variant].data
    headers = {"X-Postroom-Template": f"{rendering.template.id}@{rendering.template.version}"}
    if body.format == "png":
        return Response(first_page_png(pdf, body.dpi), media_type="image/png", headers=headers)
    return Response(pdf, media_type="application/pdf", headers=headers)
