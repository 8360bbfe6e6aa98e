from __future__ import annotations

import asyncio
import hashlib
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from postroom.channels.archive import (
    ArchiveChannel,
    ArchiveConflict,
    ArchiveStore,
    archive_key,
    open_archive_store,
    retention_end,
)
from postroom.channels.base import ChannelUnavailable, Handoff
from postroom.documents.types.invoice import InvoiceRequest
from tests.conftest import example
from tests.services import S3Server

PDF = b"%PDF-1.7\n% test object\n"
SHA = hashlib.sha256(PDF).hexdigest()
UNTIL = datetime(2035, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArchiveStore]:
    if request.param == "local":
        yield open_archive_store((tmp_path / "archive").as_uri())
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    yield open_archive_store(f"s3://{bucket}/prefix", s3_endpoint_url=s3.endpoint_url)


def handoff(pdf: bytes = PDF) -> Handoff:
    request = InvoiceRequest.model_validate(example("invoice"))
    return Handoff(
        delivery_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        document_type="invoice",
        title="Rechnung",
        number=request.number,
        issue_date=request.data.issue_date,
        locale="de",
        retention="voucher",
        recipient=request.recipient,
        seller=request.data.seller,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
    )


def test_retention_counts_from_the_end_of_the_issue_year() -> None:
    assert retention_end(date(2026, 1, 1), 8) == datetime(2035, 1, 1, tzinfo=UTC)
    assert retention_end(date(2026, 12, 31), 6) == datetime(2033, 1, 1, tzinfo=UTC)


def test_put_is_write_once_and_idempotent(store: ArchiveStore) -> None:
    stored = store.put("invoice/2026/a.pdf", PDF, SHA, {"document-number": "RE-1"}, UNTIL)
    assert stored.sha256 == SHA
    assert stored.retain_until == UNTIL
    again = store.put("invoice/2026/a.pdf", PDF, SHA, {"document-number": "RE-1"}, UNTIL)
    assert again.sha256 == SHA
    other = b"%PDF-1.7 something else"
    with pytest.raises(ArchiveConflict):
        store.put("invoice/2026/a.pdf", other, hashlib.sha256(other).hexdigest(), {}, UNTIL)
    assert store.get("invoice/2026/a.pdf") == PDF


def test_head_of_absent_key(store: ArchiveStore) -> None:
    assert store.head("invoice/2026/missing.pdf") is None


def test_s3_objects_are_locked_in_compliance_mode(s3_server: S3Server) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    store = open_archive_store(f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint_url)
    stored = store.put("k.pdf", PDF, SHA, {}, UNTIL)
    assert stored.lock_mode == "COMPLIANCE"
    client = store.client  # type: ignore[attr-defined]
    version = client.list_object_versions(Bucket=bucket)["Versions"][0]["VersionId"]
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key="k.pdf", VersionId=version)


def test_s3_bucket_without_object_lock_is_refused(s3_server: S3Server) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket, object_lock=False)
    store = open_archive_store(f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint_url)
    with pytest.raises(ChannelUnavailable, match="Object Lock"):
        store.check()
    waived = open_archive_store(f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint_url, require_lock=False)
    waived.check()
    assert waived.put("k.pdf", PDF, SHA, {}, UNTIL).lock_mode is None


def test_local_files_are_read_only(tmp_path: Path) -> None:
    store = open_archive_store((tmp_path / "archive").as_uri())
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    mode = (tmp_path / "archive/invoice/2026/a.pdf").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_local_keys_cannot_escape_the_folder(tmp_path: Path) -> None:
    store = open_archive_store((tmp_path / "archive").as_uri())
    with pytest.raises(ValueError, match="leaves"):
        store.put("../outside.pdf", PDF, SHA, {}, UNTIL)


def test_channel_confirms_after_read_back(store: ArchiveStore) -> None:
    parcel = handoff()
    receipt = asyncio.run(ArchiveChannel(store).send(parcel))
    key = archive_key("invoice", parcel.issue_date, parcel.number, parcel.document_id)
    assert receipt.confirmed
    assert receipt.external_ref.endswith(key)
    head = store.head(key)
    assert head is not None
    assert head.sha256 == parcel.sha256
    assert head.retain_until == datetime(2035, 1, 1, tzinfo=UTC)
    assert head.metadata["document-number"] == "RE-2026-000123"
    # A retry of the same delivery is accepted and changes nothing.
    assert asyncio.run(ArchiveChannel(store).send(parcel)) == receipt
