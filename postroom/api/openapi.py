"""OpenAPI document: the request body of ``POST /v1/documents`` is the catalogue's schemas, one per type."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from postroom.documents.catalogue import CATALOGUE

REF_TEMPLATE = "#/components/schemas/{model}"


def document_request_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """``(body schema, component schemas)`` for the request bodies of every catalogue type."""
    models = [(t.request_model, "validation") for t in CATALOGUE.values()]
    refs, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)  # type: ignore[arg-type]
    mapping = {t.name: refs[(t.request_model, "validation")]["$ref"] for t in CATALOGUE.values()}
    body = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    return body, definitions.get("$defs", {})


def install_openapi(app: FastAPI) -> None:
    """Generate the OpenAPI document once, with the typed document request body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            body, definitions = document_request_schemas()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
            operation = schema["paths"]["/v1/documents"]["post"]
            operation["requestBody"]["content"]["application/json"]["schema"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
