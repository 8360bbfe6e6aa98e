"""The archive channel: store the archive variant, read it back, confirm when the SHA-256 matches."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from postroom.channels.archive.local import LocalArchiveStore
from postroom.channels.archive.s3 import S3ArchiveStore, s3_client
from postroom.channels.archive.store import ArchiveStore, retention_end
from postroom.channels.base import DeliveryRejected, Handoff, HandoffReceipt, StoredCopy
from postroom.documents.doctype import RETENTION_YEARS

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def archive_key(document_type: str, issue_date: date, number: str, document_id: uuid.UUID) -> str:
    """``<type>/<issue year>/<number>--<document id>.pdf``: readable, unique, stable across retries."""
    return f"{document_type}/{issue_date.year}/{_UNSAFE.sub('_', number)}--{document_id}.pdf"


def archive_metadata(handoff: Handoff) -> dict[str, str]:
    """What an archived object carries besides its bytes: ids, number, type, dates, retention class.

    The customer appears only by the pseudonymous ``customer-id`` (``recipient.customer_number``,
    when the request has one); names, addresses, e-mail addresses and IBANs are never stored here.
    """
    metadata = {
        "document-id": str(handoff.document_id),
        "document-type": handoff.document_type,
        "document-number": handoff.number,
        "issue-date": handoff.issue_date.isoformat(),
        "retention-class": handoff.retention,
    }
    if handoff.recipient.customer_number:
        metadata["customer-id"] = handoff.recipient.customer_number
    return metadata


def open_archive_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str = "eu-central-1",
    require_lock: bool = True,
) -> ArchiveStore:
    """The store named by ``POSTROOM_ARCHIVE_URL`` (``file:///path`` or ``s3://bucket/prefix``)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalArchiveStore(Path(unquote(parts.path)))
    if parts.scheme == "s3" and parts.hostname:
        client = s3_client(s3_endpoint_url, s3_region)
        return S3ArchiveStore(client, parts.hostname, parts.path, require_lock=require_lock)
    raise ValueError("archive URL must be file:///path or s3://bucket/prefix")


class ArchiveChannel:
    """Archives the PDF/A variant for its retention period (DESIGN §5, archive)."""

    name = "archive"
    variant = "archive"

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store

    async def send(self, handoff: Handoff) -> HandoffReceipt:
        """Store, read back, compare SHA-256; confirmed on a match."""
        key = archive_key(handoff.document_type, handoff.issue_date, handoff.number, handoff.document_id)
        metadata = archive_metadata(handoff)
        retain_until = retention_end(handoff.issue_date, RETENTION_YEARS[handoff.retention])
        put = await asyncio.to_thread(
            self.store.put, key, handoff.pdf, handoff.sha256, metadata, retain_until
        )
        stored = await asyncio.to_thread(self.store.get, key)
        if hashlib.sha256(stored).hexdigest() != handoff.sha256:
            raise DeliveryRejected(f"archive read-back of {key} does not match the rendered SHA-256")
        copy = StoredCopy(
            key=key,
            size=len(stored),
            retain_until=put.retain_until or retain_until,
            lock_mode=put.lock_mode,
            version_id=put.version_id,
        )
        return HandoffReceipt(external_ref=self.store.location(key), confirmed=True, stored=copy)

    async def check(self) -> None:
        """The store is reachable and usable."""
        await asyncio.to_thread(self.store.check)
