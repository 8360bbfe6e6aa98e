from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postroom.channels.archive import (
    ArchiveChannel,
    ArchiveConflict,
    ArchiveObjectMissing,
    ArchiveRetained,
    ArchiveStore,
    RetentionShortened,
    archive_key,
    archive_metadata,
    open_archive_store,
    retention_end,
)
from postroom.channels.archive.local import LocalArchiveStore
from postroom.channels.base import ChannelUnavailable, DeliveryRejected, Handoff
from tests.conftest import example_handoff
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
    return example_handoff(pdf)


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


def test_delete_waits_for_the_end_of_retention(store: ArchiveStore) -> None:
    key = "invoice/2026/expiring.pdf"
    store.put(key, PDF, SHA, {}, UNTIL)
    with pytest.raises(ArchiveRetained):
        store.delete(key, UNTIL - timedelta(seconds=1))
    assert store.get(key) == PDF
    if isinstance(store, LocalArchiveStore):
        assert store.delete(key, UNTIL)
        assert store.head(key) is None
        assert key not in list(store.keys("invoice/"))
    else:  # the store's own lock runs on the real clock: S3 refuses until 2035 whatever we claim
        with pytest.raises(ArchiveRetained, match="still locked by the store"):
            store.delete(key, UNTIL)
        assert store.get(key) == PDF
    assert not store.delete("invoice/2026/never-stored.pdf", UNTIL)


def test_keys_lists_objects_below_a_prefix(store: ArchiveStore) -> None:
    for name in ("b", "a", "c"):
        store.put(f"letters/2026/{name}.pdf", PDF, SHA, {}, UNTIL)
    store.put("invoice/2026/x.pdf", PDF, SHA, {}, UNTIL)
    assert list(store.keys("letters/")) == ["letters/2026/a.pdf", "letters/2026/b.pdf", "letters/2026/c.pdf"]


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


# --- retention per document class, extension, never shortening ---------------------------------------

LATER = datetime(2040, 1, 1, tzinfo=UTC)


def catalogue_handoff(name: str, pdf: bytes = PDF, **recipient: Any) -> Handoff:
    """A hand-off of ``examples/<name>.json`` as the delivery job builds it."""
    return example_handoff(pdf, name, **recipient)


@pytest.mark.parametrize(
    ("name", "until"),
    [("invoice", datetime(2035, 1, 1, tzinfo=UTC)), ("dunning_letter", datetime(2033, 1, 1, tzinfo=UTC))],
)
def test_s3_lock_follows_the_document_class(s3_server: S3Server, name: str, until: datetime) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    store = open_archive_store(f"s3://{bucket}/documents", s3_endpoint_url=s3_server.endpoint_url)
    parcel = catalogue_handoff(name)
    assert parcel.issue_date.year == 2026
    asyncio.run(ArchiveChannel(store).send(parcel))
    key = "documents/" + archive_key(name, parcel.issue_date, parcel.number, parcel.document_id)
    head = store.client.head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == until


def test_extend_retention(store: ArchiveStore) -> None:
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    extended = store.extend_retention("invoice/2026/a.pdf", LATER)
    assert extended.retain_until == LATER
    head = store.head("invoice/2026/a.pdf")
    assert head is not None
    assert head.retain_until == LATER
    assert head.sha256 == SHA
    # The same date again changes nothing; the object itself never changes.
    assert store.extend_retention("invoice/2026/a.pdf", LATER).retain_until == LATER
    assert store.get("invoice/2026/a.pdf") == PDF


@pytest.mark.parametrize("shorter", [LATER - timedelta(seconds=1), UNTIL, datetime(2030, 1, 1, tzinfo=UTC)])
def test_shortening_is_refused(store: ArchiveStore, shorter: datetime) -> None:
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    store.extend_retention("invoice/2026/a.pdf", LATER)
    with pytest.raises(RetentionShortened, match="would shorten it") as caught:
        store.extend_retention("invoice/2026/a.pdf", shorter)
    assert isinstance(caught.value, DeliveryRejected)
    assert caught.value.code == "retention_shortened"
    head = store.head("invoice/2026/a.pdf")
    assert head is not None
    assert head.retain_until == LATER


def test_put_extends_but_never_shortens(store: ArchiveStore) -> None:
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    assert store.put("invoice/2026/a.pdf", PDF, SHA, {}, LATER).retain_until == LATER
    # An earlier date on a repeated put keeps the retention in force (no error: a retry is no request).
    assert store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL).retain_until == LATER
    head = store.head("invoice/2026/a.pdf")
    assert head is not None
    assert head.retain_until == LATER


def test_extending_an_absent_object_or_with_a_naive_date(store: ArchiveStore) -> None:
    with pytest.raises(ArchiveObjectMissing):
        store.extend_retention("invoice/2026/missing.pdf", LATER)
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.extend_retention("invoice/2026/a.pdf", LATER.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put("invoice/2026/b.pdf", PDF, SHA, {}, UNTIL.replace(tzinfo=None))


def test_s3_extension_keeps_the_object_locked(s3_server: S3Server) -> None:
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    store = open_archive_store(f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint_url)
    store.put("k.pdf", PDF, SHA, {}, UNTIL)
    store.extend_retention("k.pdf", LATER)
    client = store.client  # type: ignore[attr-defined]
    head = client.head_object(Bucket=bucket, Key="k.pdf")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", LATER)
    [version] = client.list_object_versions(Bucket=bucket)["Versions"]
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key="k.pdf", VersionId=version["VersionId"])


def test_s3_bucket_without_lock_has_no_retention_to_extend(s3_server: S3Server) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket, object_lock=False)
    store = open_archive_store(f"s3://{bucket}", s3_endpoint_url=s3_server.endpoint_url, require_lock=False)
    store.put("k.pdf", PDF, SHA, {}, UNTIL)
    assert store.put("k.pdf", PDF, SHA, {}, LATER).retain_until is None  # an idempotent repeat still passes
    with pytest.raises(DeliveryRejected, match="no Object Lock"):
        store.extend_retention("k.pdf", LATER)


def test_local_extension_keeps_the_file_and_records_the_history(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    store = LocalArchiveStore(root)
    store.put("invoice/2026/a.pdf", PDF, SHA, {"document-number": "RE-1"}, UNTIL)
    pdf_path, meta_path = root / "invoice/2026/a.pdf", root / "invoice/2026/a.pdf.meta.json"
    before = pdf_path.stat()
    store.extend_retention("invoice/2026/a.pdf", LATER)
    with pytest.raises(RetentionShortened):
        store.extend_retention("invoice/2026/a.pdf", UNTIL)
    after = pdf_path.stat()
    assert pdf_path.read_bytes() == PDF
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_mode,
    )
    meta = json.loads(meta_path.read_text())
    assert meta["retain_until"] == LATER.isoformat()
    assert meta["metadata"] == {"document-number": "RE-1"}
    for path in (pdf_path, meta_path):
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert sorted(p.name for p in pdf_path.parent.iterdir()) == ["a.pdf", "a.pdf.meta.json"]  # no leftovers
    entries = [json.loads(line) for line in (root / "retention-index").read_text().splitlines()]
    assert [(e["key"], e["retain_until"]) for e in entries] == [
        ("invoice/2026/a.pdf", UNTIL.isoformat()),
        ("invoice/2026/a.pdf", LATER.isoformat()),
    ]
    history = store.retention_history("invoice/2026/a.pdf")
    assert [until for until, _ in history] == [UNTIL, LATER]
    assert history[0][1] <= history[1][1]
    assert all(set_at.tzinfo is not None for _, set_at in history)


def test_local_concurrent_extensions_end_at_the_latest(tmp_path: Path) -> None:
    store = LocalArchiveStore(tmp_path / "archive")
    store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL)
    dates = [UNTIL + timedelta(days=day) for day in (400, 10, 900, 50, 700, 30, 899, 1)]
    refused: list[datetime] = []

    def extend(until: datetime) -> None:
        try:
            store.extend_retention("invoice/2026/a.pdf", until)
        except RetentionShortened:
            refused.append(until)

    threads = [threading.Thread(target=extend, args=(until,)) for until in dates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    head = store.head("invoice/2026/a.pdf")
    assert head is not None
    assert head.retain_until == max(dates)
    recorded = [until for until, _ in store.retention_history("invoice/2026/a.pdf")]
    assert recorded == sorted(recorded)  # every recorded date was later than the one before
    assert len(recorded) == 1 + len(dates) - len(refused)


def test_local_store_never_overwrites_an_object(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    store = LocalArchiveStore(root)
    # An earlier attempt wrote the object but crashed before its metadata.
    (root / "invoice/2026").mkdir(parents=True)
    (root / "invoice/2026/a.pdf").write_bytes(PDF)
    other = b"%PDF-1.7 other content"
    with pytest.raises(ArchiveConflict, match="incomplete"):
        store.put("invoice/2026/a.pdf", other, hashlib.sha256(other).hexdigest(), {}, UNTIL)
    assert (root / "invoice/2026/a.pdf").read_bytes() == PDF
    # The same content completes it.
    assert store.put("invoice/2026/a.pdf", PDF, SHA, {}, UNTIL).retain_until == UNTIL
    # Data that does not match its SHA-256 is refused; nothing is deleted before its retain-until date.
    with pytest.raises(DeliveryRejected, match="does not match"):
        store.put("invoice/2026/b.pdf", other, SHA, {}, UNTIL)
    with pytest.raises(ArchiveRetained):
        store.delete("invoice/2026/a.pdf", UNTIL - timedelta(days=1))
    with pytest.raises(ValueError, match="own files"):
        store.put("retention-index", PDF, SHA, {}, UNTIL)


# --- metadata ------------------------------------------------------------------------------------------


def test_metadata_is_pseudonymous(store: ArchiveStore) -> None:
    parcel = catalogue_handoff("dunning_letter")
    asyncio.run(ArchiveChannel(store).send(parcel))
    head = store.head(archive_key("dunning_letter", parcel.issue_date, parcel.number, parcel.document_id))
    assert head is not None
    metadata = {name: value for name, value in head.metadata.items() if name != "sha256"}
    assert metadata == {
        "document-id": str(parcel.document_id),
        "document-type": "dunning_letter",
        "document-number": "MA-2026-000311",
        "issue-date": "2026-11-23",
        "retention-class": "letter",
        "customer-id": "K-200871",
    }
    recipient = parcel.recipient
    personal = [recipient.name, recipient.attention, recipient.street, recipient.city, recipient.email]
    stored = " ".join(head.metadata.values())
    for value in filter(None, personal):
        assert value not in stored
    assert "Schmidt" not in stored


def test_metadata_without_customer_number_and_with_non_ascii(store: ArchiveStore) -> None:
    anonymous = catalogue_handoff("invoice", customer_number=None)
    assert "customer-id" not in archive_metadata(anonymous)
    parcel = catalogue_handoff("invoice", customer_number="KÄ-100234")
    asyncio.run(ArchiveChannel(store).send(parcel))
    head = store.head(archive_key("invoice", parcel.issue_date, parcel.number, parcel.document_id))
    assert head is not None
    assert head.metadata["customer-id"] == "KÄ-100234"
    assert head.retain_until == datetime(2035, 1, 1, tzinfo=UTC)


def test_channel_retry_with_the_same_document_changes_nothing(store: ArchiveStore) -> None:
    parcel = catalogue_handoff("invoice")
    first = asyncio.run(ArchiveChannel(store).send(parcel))
    again = asyncio.run(ArchiveChannel(store).send(replace(parcel, delivery_id=uuid.uuid4())))
    assert first == again
