"""The API in-process (TestClient) on the real PostgreSQL and Redis broker; no worker involved."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postroom.core.models import Document
from postroom.runtime import runtime
from tests.conftest import READER_KEY, WRITER_KEY, example

WRITER = {"Authorization": f"Bearer {WRITER_KEY}"}
READER = {"Authorization": f"Bearer {READER_KEY}"}


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    from postroom.api.app import create_app

    app = create_app()
    send = app.state.enqueue_render
    app.state.enqueued = []

    def recording(document_id: uuid.UUID) -> None:
        app.state.enqueued.append(document_id)
        send(document_id)

    app.state.enqueue_render = recording
    with TestClient(app) as client:
        yield client


def document_count() -> int:
    with runtime().db.session() as session:
        return session.scalar(select(func.count()).select_from(Document)) or 0


def unique_invoice() -> dict[str, Any]:
    body = copy.deepcopy(example("invoice"))
    body["data"]["number"] = f"RE-T-{uuid.uuid4().hex[:10]}"
    return body


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def test_without_key_is_401(api: TestClient) -> None:
    response = api.post("/v1/documents", json=unique_invoice())
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(api.get(f"/v1/documents/{uuid.uuid4()}", headers={"Authorization": "Bearer wrong"}), 401)


def test_key_without_scope_is_403(api: TestClient) -> None:
    problem = assert_problem(api.post("/v1/documents", json=unique_invoice(), headers=READER), 403)
    assert "documents:write" in problem["detail"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["data"].pop("number"), "data.number"),
        (lambda b: b["data"]["lines"][1].update(unit_price="180,00"), "data.lines[1].unit_price"),
        (lambda b: b["data"]["lines"][0].update(quantity=1), "data.lines[0].quantity"),
        (lambda b: b.update(type="horoscope"), "type"),
        (lambda b: b.update(channels=["fax", "archive"]), "channels[0]"),
        (lambda b: b["recipient"].update(email="not-an-address"), "recipient.email"),
    ],
)
def test_invalid_body_is_422_naming_the_field_and_nothing_is_enqueued(
    api: TestClient, mutate: Any, field: str
) -> None:
    body = unique_invoice()
    mutate(body)
    before, enqueued = document_count(), len(api.app.state.enqueued)  # type: ignore[attr-defined]
    problem = assert_problem(api.post("/v1/documents", json=body, headers=WRITER), 422)
    assert field in [error["field"] for error in problem["errors"]], problem
    assert field in problem["detail"]
    assert document_count() == before
    assert len(api.app.state.enqueued) == enqueued  # type: ignore[attr-defined]


def test_malformed_json_is_422(api: TestClient) -> None:
    response = api.post(
        "/v1/documents",
        content=b'{"type": "invoice",',
        headers={**WRITER, "Content-Type": "application/json"},
    )
    assert assert_problem(response, 422)["errors"][0]["type"] == "json_invalid"


def test_idempotency_key_replays_and_conflicts(api: TestClient) -> None:
    body, key = unique_invoice(), f"idem-{uuid.uuid4()}"
    headers = {**WRITER, "Idempotency-Key": key}
    first = api.post("/v1/documents", json=body, headers=headers)
    assert first.status_code == 202, first.text
    document_id = first.json()["id"]
    assert first.headers["location"] == f"/v1/documents/{document_id}"
    before = document_count()

    again = api.post("/v1/documents", json=body, headers=headers)
    assert again.status_code == 202
    assert again.json()["id"] == document_id
    assert again.headers["idempotent-replayed"] == "true"
    assert document_count() == before
    assert api.app.state.enqueued.count(uuid.UUID(document_id)) == 1  # type: ignore[attr-defined]

    changed = copy.deepcopy(body)
    changed["data"]["lines"][1]["unit_price"] = "181.00"
    problem = assert_problem(api.post("/v1/documents", json=changed, headers=headers), 409)
    assert "Idempotency-Key" in problem["detail"]
    assert document_count() == before


def test_queue_failure_is_503_and_stores_nothing(api: TestClient) -> None:
    app = api.app
    recording = app.state.enqueue_render  # type: ignore[attr-defined]

    def broken(_: uuid.UUID) -> None:
        raise ConnectionError("redis down")

    app.state.enqueue_render = broken  # type: ignore[attr-defined]
    try:
        before = document_count()
        response = api.post("/v1/documents", json=unique_invoice(), headers=WRITER)
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "5"
        assert document_count() == before
    finally:
        app.state.enqueue_render = recording  # type: ignore[attr-defined]


def test_document_view_and_unknown_document(api: TestClient) -> None:
    created = api.post("/v1/documents", json=unique_invoice(), headers=WRITER).json()
    view = api.get(f"/v1/documents/{created['id']}", headers=READER).json()
    assert view["type"] == "invoice"
    assert view["channels"] == ["email", "archive"]
    assert view["status"] in {"queued", "rendering", "delivering", "delivered"}
    assert not {"recipient", "payload", "data"} & set(view)
    assert_problem(api.get(f"/v1/documents/{uuid.uuid4()}", headers=READER), 404)
    assert_problem(api.get(f"/v1/documents/{uuid.uuid4()}/pdf", headers=READER), 404)


def test_catalogue_and_schema(api: TestClient) -> None:
    types = {entry["type"]: entry for entry in api.get("/v1/document-types", headers=READER).json()}
    assert types["invoice"]["retention"] == "voucher"
    assert types["dunning_letter"]["retention"] == "letter"
    assert types["commission_statement"]["schema_url"] == "/v1/document-types/commission_statement/schema"
    schema = api.get("/v1/document-types/invoice/schema", headers=READER).json()
    assert schema["properties"]["type"]["const"] == "invoice"
    assert_problem(api.get("/v1/document-types/horoscope/schema", headers=READER), 404)


def test_openapi_documents_the_typed_request_body(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    body = spec["paths"]["/v1/documents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["mapping"]["invoice"] == "#/components/schemas/InvoiceRequest"
    assert "InvoiceLine" in spec["components"]["schemas"]


def test_health_and_readiness(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"configuration": "ok", "database": "ok", "redis": "ok", "archive": "ok"}
    assert ready.json()["channels"] == {"email": "ok", "print": "ok"}


def test_metrics_report_the_hub_state_without_personal_data(api: TestClient) -> None:
    accepted = api.post("/v1/documents", json=unique_invoice(), headers=WRITER)
    assert accepted.status_code == 202
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'postroom_documents{status="queued",type="invoice"}' in text
    assert 'postroom_queue_depth{queue="bulk"}' in text
    assert "Mustermann" not in text


def test_unknown_template_version_is_422(api: TestClient) -> None:
    body = unique_invoice()
    body["template"] = "invoice@99"
    problem = assert_problem(api.post("/v1/documents", json=body, headers=WRITER), 422)
    assert problem["errors"][0]["field"] == "template"


def test_unexpected_errors_are_problems_without_details(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from postroom.api.routes import documents

    def broken(*_: object) -> None:
        raise RuntimeError("duplicate key (name)=(Erika Mustermann)")

    monkeypatch.setattr(documents, "_load", broken)
    response = api.get(f"/v1/documents/{uuid.uuid4()}", headers=READER)  # would raise if not contained
    problem = assert_problem(response, 500)
    assert problem["title"] == "Internal error"
    assert "Mustermann" not in response.text
    assert "Mustermann" not in caplog.text
