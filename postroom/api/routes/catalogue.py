"""``/v1/document-types``: the catalogue and the JSON Schema of each type's request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from postroom.api.auth import require
from postroom.api.problems import ProblemError
from postroom.api.schemas import DocumentTypeInfo
from postroom.documents.catalogue import CATALOGUE, UnknownDocumentType, document_type
from postroom.documents.request import request_schema
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/document-types", tags=["catalogue"])


@router.get("", response_model=list[DocumentTypeInfo])
def list_document_types(_: Annotated[ApiKey, Depends(require("documents:read"))]) -> list[DocumentTypeInfo]:
    """Every document type this hub renders."""
    return [
        DocumentTypeInfo(
            type=t.name,
            titles=dict(t.titles),
            retention=t.retention,
            template=t.template,
            schema_url=f"/v1/document-types/{t.name}/schema",
        )
        for t in CATALOGUE.values()
    ]


@router.get("/{name}/schema")
def document_type_schema(
    name: str, _: Annotated[ApiKey, Depends(require("documents:read"))]
) -> dict[str, Any]:
    """JSON Schema of ``POST /v1/documents`` bodies of this type."""
    try:
        return request_schema(document_type(name).request_model)
    except UnknownDocumentType as error:
        raise ProblemError(404, "Not found", str(error), slug="unknown-type") from None
