"""The template registry (uploads, immutable versions) and previews, in-process on the real services."""

from __future__ import annotations

import copy
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from postroom.core.documents import submit_document
from postroom.documents.types.invoice import InvoiceRequest
from postroom.jobs import rendering
from postroom.renderer.engine import TemplateError
from postroom.renderer.uploads import materialise
from postroom.runtime import runtime
from postroom.settings import PROJECT_ROOT
from tests.conftest import ADMIN_KEY, READER_KEY, WRITER_KEY, example

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/zip"}
WRITER = {"Authorization": f"Bearer {WRITER_KEY}"}
READER = {"Authorization": f"Bearer {READER_KEY}"}
SHIPPED_INVOICE = (PROJECT_ROOT / "templates" / "invoice" / "typst" / "main.typ").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    from postroom.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


def bundle(
    template_id: str,
    version: int = 1,
    *,
    source: str | None = None,
    extra: dict[str, str] | None = None,
    manifest: str | None = None,
) -> bytes:
    """A template zip inside one top-level folder, as people zip a folder."""
    files = {
        "template.toml": manifest or manifest_text(template_id, version),
        "main.typ": source or SHIPPED_INVOICE.replace('title: "Rechnung"', 'title: "Honorarrechnung"'),
        **(extra or {}),
    }
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        for name, content in files.items():
            archive.writestr(f"{template_id}/{name}", content)
    return output.getvalue()


def manifest_text(template_id: str, version: int = 1, engine: str = "typst") -> str:
    return "\n".join(
        [
            f'id = "{template_id}"',
            f"version = {version}",
            f'engine = "{engine}"',
            'entry = "main.typ"',
            'type = "invoice"',
        ]
    )


def unique_id() -> str:
    return f"acme_{uuid.uuid4().hex[:8]}"


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_upload_is_checked_stored_and_immutable(api: TestClient) -> None:
    template_id = unique_id()
    created = api.post("/v1/templates", content=bundle(template_id), headers=ADMIN)
    assert created.status_code == 201, created.text
    info = created.json()
    assert (info["id"], info["version"], info["engine"], info["source"]) == (
        template_id,
        1,
        "typst",
        "uploaded",
    )
    assert info["document_type"] == "invoice"
    assert info["uploaded_by"] == "admin"

    again = api.post("/v1/templates", content=bundle(template_id), headers=ADMIN)
    assert again.status_code == 200
    assert again.json()["sha256"] == info["sha256"]

    changed = bundle(template_id, source=SHIPPED_INVOICE.replace('title: "Rechnung"', 'title: "Rechnung!"'))
    conflict = api.post("/v1/templates", content=changed, headers=ADMIN)
    assert conflict.status_code == 409
    assert "new version" in conflict.json()["detail"]

    assert api.post("/v1/templates", content=bundle(template_id, 2), headers=ADMIN).status_code == 201
    listed = [t for t in api.get("/v1/templates", headers=READER).json() if t["id"] == template_id]
    assert [t["version"] for t in listed] == [1, 2]
    shipped = {
        (t["id"], t["engine"]): t
        for t in api.get("/v1/templates", headers=READER).json()
        if t["source"] == "shipped"
    }
    assert shipped[("invoice", "typst")]["document_type"] == "invoice"


def test_uploads_need_the_admin_scope(api: TestClient) -> None:
    response = api.post(
        "/v1/templates", content=bundle(unique_id()), headers={**WRITER, "Content-Type": "application/zip"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("make", "field", "message"),
    [
        (lambda tid: b"not a zip", "body", "not a zip file"),
        (lambda tid: bundle(tid, extra={"../escape.typ": "x"}), "body", "leaves the template folder"),
        (lambda tid: bundle(tid, manifest='id = "x"'), "body", "not a valid manifest"),
        (lambda tid: bundle("invoice"), "template.toml.id", "is a shipped template"),
        (
            lambda tid: bundle(tid, manifest=manifest_text(tid, engine="latex")),
            "template.toml.engine",
            "not available",
        ),
        (
            lambda tid: bundle(tid, source='#import "@preview/tablex:0.0.8": tablex\n'),
            "body",
            "may not fetch packages",
        ),
        (
            lambda tid: bundle(tid, source='#read("/etc/passwd")\n'),
            "body",
            "does not render the invoice example",
        ),
    ],
)
def test_bad_uploads_are_422_naming_the_problem(
    api: TestClient, make: object, field: str, message: str
) -> None:
    response = api.post("/v1/templates", content=make(unique_id()), headers=ADMIN)  # type: ignore[operator]
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert message in error["message"]


def test_an_uploaded_template_renders_documents_on_the_worker_path(api: TestClient) -> None:
    template_id = unique_id()
    assert api.post("/v1/templates", content=bundle(template_id), headers=ADMIN).status_code == 201
    body = copy.deepcopy(example("invoice"))
    body["template"] = f"{template_id}@1"
    body["channels"] = ["archive"]
    rt = runtime()
    with rt.db.session() as session:
        document_id = submit_document(
            session, InvoiceRequest.model_validate(body), api_key_id="t", idempotency_key=None
        ).document.id
    rendering.render_document(rt, document_id)
    assert "Honorarrechnung RE-2026-000123" in pdf_text(rt.spool.read(document_id, "archive"))


def test_previews_render_examples_and_requests(api: TestClient) -> None:
    pdf = api.post("/v1/previews", json={"type": "invoice"}, headers=WRITER)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert "14.458,50" in pdf_text(pdf.content)

    png = api.post(
        "/v1/previews", json={"type": "invoice", "format": "png", "dpi": 50, "locale": "en"}, headers=WRITER
    )
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")

    request = copy.deepcopy(example("invoice"))
    request["data"]["lines"][0]["unit_price"] = "1000.00"
    custom = api.post(
        "/v1/previews", json={"type": "invoice", "request": request, "variant": "print"}, headers=WRITER
    )
    text = pdf_text(custom.content)
    assert "1.180,00" in text  # net: 1,000.00 + 180.00
    assert "1.404,20" in text  # gross: 1,180.00 + 19 % (224.20)


def test_preview_errors_name_the_field(api: TestClient) -> None:
    request = copy.deepcopy(example("invoice"))
    del request["data"]["number"]
    response = api.post("/v1/previews", json={"type": "invoice", "request": request}, headers=WRITER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request.data.number"
    unknown = api.post("/v1/previews", json={"type": "invoice", "template": "nothing_here"}, headers=WRITER)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "request.template"


def test_a_tampered_cache_is_refused(tmp_path: Path) -> None:
    from postroom.renderer.bundle import TemplateBundle
    from postroom.renderer.uploads import prepare_upload

    upload, _ = prepare_upload(
        TemplateBundle.from_zip(bundle("acme_tamper")), PROJECT_ROOT / "templates", tmp_path / "cache"
    )
    with pytest.raises(TemplateError, match="does not match its recorded hash"):
        materialise(upload.bundle, tmp_path / "other", "acme_tamper", "typst", "0" * 64)
