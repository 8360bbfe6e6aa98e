"""Auditors: search, download and verify archived documents; the hash-chained event log; access.

Fifty invoices issued in 2019 go through the real render and archive steps into the S3 store
(moto's server, with Object Lock), then the API answers auditors in-process (TestClient).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import delete, select

from postroom.cli import main
from postroom.core.models import ArchiveEntry, ArchiveEvent
from postroom.documents.catalogue import document_type
from postroom.jobs import archive_exports
from postroom.runtime import Runtime, runtime
from postroom.settings import get_settings
from tests.archiving import archive_through_the_hub
from tests.conftest import ADMIN_KEY, AUDITOR_KEY, LIMITED_AUDITOR_KEY, WRITER_KEY, example
from tests.services import S3_CREDENTIALS

FIRST_ISSUE = date(2019, 1, 7)
COUNT = 50


@dataclass(frozen=True)
class Archived:
    """One invoice of the module's run as the test knows it independently of the index."""

    document_id: uuid.UUID
    number: str
    issue_date: date
    customer_id: str
    gross: Decimal
    sha256: str


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def rt(hub_env: dict[str, str]) -> Runtime:
    return runtime()


@pytest.fixture(scope="module")
def run_id() -> str:
    return uuid.uuid4().hex[:8].upper()


@pytest.fixture(scope="module")
def archived(rt: Runtime, run_id: str) -> list[Archived]:
    """Fifty archive-only invoices, a week apart through 2019, with amounts 100 € apart."""
    doc_type = document_type("invoice")
    made = []
    for index in range(COUNT):
        body = copy.deepcopy(example("invoice"))
        issued = FIRST_ISSUE + timedelta(days=7 * index)
        body["channels"] = ["archive"]
        body["recipient"]["customer_number"] = f"K-{run_id}-{index % 5}"
        data = body["data"]
        data.update(
            number=f"RE-{run_id}-{index:03d}",
            issue_date=issued.isoformat(),
            delivery_date=issued.isoformat(),
            due_date=(issued + timedelta(days=14)).isoformat(),
        )
        data["lines"] = [{**data["lines"][0], "unit_price": f"{1000 + 100 * index}.00"}]
        request = doc_type.parse(body)
        document_id, sha256 = archive_through_the_hub(rt, request)
        figures = doc_type.figures(request)
        assert figures is not None
        made.append(
            Archived(document_id, data["number"], issued, f"K-{run_id}-{index % 5}", figures.gross, sha256)
        )
    return made


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    from postroom.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


def search(api: TestClient, key: str = AUDITOR_KEY, **params: Any) -> list[dict[str, Any]]:
    """Every page of a search, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get("/v1/archive", params=query, headers=auth(key))
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_search_by_number_date_range_and_amount(
    api: TestClient, archived: list[Archived], run_id: str
) -> None:
    target = archived[17]
    found = search(api, number=target.number)
    assert [item["id"] for item in found] == [str(target.document_id)]
    assert Decimal(found[0]["gross_total"]) == target.gross

    spring = [a for a in archived if date(2019, 3, 1) <= a.issue_date <= date(2019, 4, 30)]
    found = search(api, issued_from="2019-03-01", issued_to="2019-04-30", limit=3)
    assert [item["number"] for item in found] == [a.number for a in spring]  # in issue-date order
    assert len(spring) == 9

    low, high = Decimal("2000"), Decimal("3500")
    expected = {a.number for a in archived if low <= a.gross <= high}
    found = search(
        api, amount_min=str(low), amount_max=str(high), issued_from="2019-01-01", issued_to="2019-12-31"
    )
    assert {item["number"] for item in found} == expected
    assert len(expected) == 13

    customer = search(api, customer_id=f"K-{run_id}-3", sort="number", order="desc")
    assert [item["number"] for item in customer] == sorted(
        (a.number for a in archived if a.customer_id.endswith("-3")), reverse=True
    )


def test_a_download_is_the_archived_original(api: TestClient, archived: list[Archived], rt: Runtime) -> None:
    target = archived[3]
    response = api.get(f"/v1/archive/{target.document_id}/pdf", headers=auth(AUDITOR_KEY))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert (
        hashlib.sha256(response.content).hexdigest() == target.sha256 == response.headers["x-content-sha256"]
    )

    xml = api.get(f"/v1/archive/{target.document_id}/xml", headers=auth(AUDITOR_KEY))
    assert xml.status_code == 200
    root = etree.fromstring(xml.content)
    assert etree.QName(root).localname == "CrossIndustryInvoice"
    assert target.number in xml.text

    with rt.db.session() as session:
        logged = session.scalars(
            select(ArchiveEvent).where(
                ArchiveEvent.kind == "archive.download", ArchiveEvent.subject == str(target.document_id)
            )
        ).all()
    assert [event.actor for event in logged] == ["auditor"]


def test_verify_reports_the_lock_and_names_an_altered_object(
    api: TestClient, archived: list[Archived], hub_env: dict[str, str]
) -> None:
    target = archived[5]
    report = api.get(f"/v1/archive/{target.document_id}/verify", headers=auth(AUDITOR_KEY)).json()
    assert report["verified"] is True, report
    assert report["problems"] == []
    assert report["retention_mode"] == "COMPLIANCE"
    assert report["retain_until"].startswith("2028-01-01")  # 8 years after the end of 2019

    # Object Lock keeps the original version; a new version under the key is what a tamperer can do.
    entry = api.get(f"/v1/archive/{target.document_id}", headers=auth(AUDITOR_KEY)).json()
    bucket, _, key = entry["location"].removeprefix("s3://").partition("/")
    s3 = boto3.client(
        "s3",
        endpoint_url=hub_env["POSTROOM_S3_ENDPOINT_URL"],
        region_name="eu-central-1",
        **{
            "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
    )
    s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-1.7 not the original")
    report = api.get(f"/v1/archive/{target.document_id}/verify", headers=auth(AUDITOR_KEY)).json()
    assert report["verified"] is False
    assert any(
        key.endswith(problem.split(":")[0]) and "SHA-256 differs" in problem for problem in report["problems"]
    )


def test_an_auditor_sees_the_archive_and_nothing_else(api: TestClient, archived: list[Archived]) -> None:
    headers = auth(AUDITOR_KEY)
    assert api.get(f"/v1/documents/{archived[0].document_id}", headers=headers).status_code == 403
    assert api.post("/v1/documents", json=example("invoice"), headers=headers).status_code == 403
    assert api.get("/v1/admin/dead-letters", headers=headers).status_code == 403
    hold = {"hold": True, "reference": "AZ 12 O 345/26"}
    assert (
        api.post(f"/v1/archive/{archived[0].document_id}/legal-hold", json=hold, headers=headers).status_code
        == 403
    )
    assert api.get("/v1/archive", headers=auth(WRITER_KEY)).status_code == 403


def test_a_restricted_auditor_key_sees_only_its_part(api: TestClient, archived: list[Archived]) -> None:
    found = search(api, LIMITED_AUDITOR_KEY, issued_from="2019-01-01", issued_to="2019-12-31")
    numbers = {item["number"] for item in found}
    assert numbers >= {a.number for a in archived if a.issue_date <= date(2019, 6, 30)}
    assert not numbers & {a.number for a in archived if a.issue_date > date(2019, 6, 30)}
    late = next(a for a in archived if a.issue_date > date(2019, 6, 30))
    assert (
        api.get(f"/v1/archive/{late.document_id}/pdf", headers=auth(LIMITED_AUDITOR_KEY)).status_code == 404
    )


def test_legal_hold_is_an_admin_action_in_the_chain(
    api: TestClient, archived: list[Archived], rt: Runtime
) -> None:
    target = archived[9]
    body = {"hold": True, "reference": "AZ 12 O 345/26"}
    response = api.post(f"/v1/archive/{target.document_id}/legal-hold", json=body, headers=auth(ADMIN_KEY))
    assert response.status_code == 200
    assert response.json()["legal_hold"] is True
    with rt.db.session() as session:
        assert session.get_one(ArchiveEntry, target.document_id).legal_hold
        held = session.scalars(select(ArchiveEvent).where(ArchiveEvent.kind == "archive.legal_hold")).all()
    assert [(event.actor, event.subject) for event in held] == [("admin", str(target.document_id))]


def test_audit_verify_finds_an_edited_and_a_removed_entry(archived: list[Archived], rt: Runtime) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["archive", "anchor"]).exit_code == 0
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "event chain intact" in intact.output

    with rt.db.session() as session:
        victim = session.scalars(
            select(ArchiveEvent).where(ArchiveEvent.kind == "archive.write").limit(1).offset(10)
        ).one()
        seq, original = victim.seq, dict(victim.detail)
        victim.detail = {**original, "sha256": "0" * 64}
    edited = runner.invoke(main, ["audit", "verify"])
    assert edited.exit_code == 1
    assert f"broken at entry {seq}: entry altered" in edited.output

    with rt.db.session() as session:
        row = session.get_one(ArchiveEvent, seq)
        row.detail = original
        saved = {
            column: getattr(row, column)
            for column in ("seq", "at", "kind", "actor", "subject", "detail", "prev_hash", "hash")
        }
        session.execute(delete(ArchiveEvent).where(ArchiveEvent.seq == seq))
    removed = runner.invoke(main, ["audit", "verify"])
    assert removed.exit_code == 1
    assert f"broken at entry {seq}: entry missing" in removed.output

    with rt.db.session() as session:
        session.add(ArchiveEvent(**saved))
    assert runner.invoke(main, ["audit", "verify"]).exit_code == 0


def test_a_z3_export_of_a_period_is_built_archived_and_valid(
    api: TestClient, archived: list[Archived], rt: Runtime, tmp_path: Path
) -> None:
    body = {"period_from": "2019-07-01", "period_to": "2019-12-31", "include_pdfs": True}
    response = api.post("/v1/archive/exports", json=body, headers=auth(AUDITOR_KEY))
    assert response.status_code == 202, response.text
    export_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    bad = api.post("/v1/archive/exports", json={**body, "period_to": "2019-06-30"}, headers=auth(AUDITOR_KEY))
    assert bad.status_code == 422

    archive_exports.build_export(rt, uuid.UUID(export_id))  # the job, in this process
    status = api.get(f"/v1/archive/exports/{export_id}", headers=auth(AUDITOR_KEY)).json()
    second_half = [a for a in archived if a.issue_date > date(2019, 6, 30)]
    assert status["status"] == "finished"
    assert status["documents_total"] == status["documents_done"] == len(second_half) == 25
    assert api.get(f"/v1/archive/exports/{export_id}", headers=auth(LIMITED_AUDITOR_KEY)).status_code == 404

    download = api.get(f"/v1/archive/exports/{export_id}/zip", headers=auth(AUDITOR_KEY))
    assert download.status_code == 200
    assert (
        hashlib.sha256(download.content).hexdigest()
        == status["sha256"]
        == download.headers["x-content-sha256"]
    )
    with zipfile.ZipFile(io.BytesIO(download.content)) as bundle:
        bundle.extractall(tmp_path)
    parser = etree.XMLParser(dtd_validation=True, load_dtd=True, no_network=True)
    index = etree.parse(str(tmp_path / "index.xml"), parser)  # raises unless valid against the DTD
    assert etree.DTD(str(tmp_path / "gdpdu-01-09-2004.dtd")).validate(index)
    with (tmp_path / "documents.csv").open(encoding="utf-8", newline="") as handle:
        documents = list(csv.reader(handle, delimiter=";"))[1:]
    with (tmp_path / "lines.csv").open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=";"))[1:]
    assert sorted(row[0] for row in documents) == sorted(a.number for a in second_half)
    assert len(lines) == len(second_half)  # one line per invoice of this run
    pdfs = list((tmp_path / "pdf").rglob("*.pdf"))
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in pdfs) == sorted(
        a.sha256 for a in second_half
    )

    with rt.db.session() as session:
        kinds = session.scalars(select(ArchiveEvent.kind).where(ArchiveEvent.subject == export_id)).all()
    assert kinds == ["archive.export_requested", "archive.export", "archive.export_download"]


def test_an_export_refuses_an_archived_pdf_that_changed(
    api: TestClient, archived: list[Archived], rt: Runtime
) -> None:
    """The first half of 2019 holds the document whose stored object the verify test replaced."""
    body = {"period_from": "2019-01-01", "period_to": "2019-06-30"}
    export_id = api.post("/v1/archive/exports", json=body, headers=auth(AUDITOR_KEY)).json()["id"]
    archive_exports.build_export(rt, uuid.UUID(export_id))
    status = api.get(f"/v1/archive/exports/{export_id}", headers=auth(AUDITOR_KEY)).json()
    assert status["status"] == "failed"
    assert status["error_detail"] == (
        f"document {archived[5].document_id}: the archived PDF does not match its SHA-256"
    )
    assert api.get(f"/v1/archive/exports/{export_id}/zip", headers=auth(AUDITOR_KEY)).status_code == 409


def test_expired_documents_are_purged_by_an_admin_except_under_legal_hold(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a local archive whose retention already ended (issued in 2011, kept until 2020)."""
    local = Runtime(rt.settings.model_copy(update={"archive_url": (tmp_path / "archive").as_uri()}))
    expired_at = datetime(2020, 1, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(3)]
    with local.db.session() as session:
        for index, entry_id in enumerate(ids):
            key = f"invoice/2011/RE-2011-{index}--{entry_id}.pdf"
            local.archive.put(
                key, b"%PDF-1.7 old", hashlib.sha256(b"%PDF-1.7 old").hexdigest(), {}, expired_at
            )
            session.add(
                ArchiveEntry(
                    id=entry_id,
                    document_type="invoice",
                    number=f"RE-2011-{index}",
                    issue_date=date(2011, 5, 1),
                    archive_key=key,
                    location=local.archive.location(key),
                    sha256=hashlib.sha256(b"%PDF-1.7 old").hexdigest(),
                    size_bytes=12,
                    retention_class="voucher",
                    retain_until=expired_at,
                    legal_hold=index == 1,
                )
            )
    monkeypatch.setenv("POSTROOM_ARCHIVE_URL", (tmp_path / "archive").as_uri())
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listing = runner.invoke(main, ["archive", "retention", "--from", "2019-12-31", "--to", "2020-01-01"])
        assert listing.exit_code == 0, listing.output
        assert "3 document(s), 1 under legal hold" in listing.output
        assert "legal-hold" in listing.output
        dry = runner.invoke(main, ["archive", "purge-expired"])
        assert dry.output.count("would delete") == 2
        assert all(local.archive.head(f"invoice/2011/RE-2011-{i}--{ids[i]}.pdf") for i in range(3))
        done = runner.invoke(main, ["archive", "purge-expired", "--yes", "--actor", "dpo"])
        assert done.exit_code == 0, done.output
    finally:
        get_settings.cache_clear()
    kept = f"invoice/2011/RE-2011-1--{ids[1]}.pdf"
    assert [local.archive.head(f"invoice/2011/RE-2011-{i}--{ids[i]}.pdf") is not None for i in range(3)] == [
        False,
        True,
        False,
    ]
    assert local.archive.get(kept) == b"%PDF-1.7 old"
    with local.db.session() as session:
        purged = session.scalars(select(ArchiveEvent).where(ArchiveEvent.kind == "archive.purge")).all()
        assert sorted(str(event.subject) for event in purged) == sorted(str(ids[i]) for i in (0, 2))
        assert {event.actor for event in purged} == {"cli:dpo"}
        assert session.get_one(ArchiveEntry, ids[0]).deleted_at is not None
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0
