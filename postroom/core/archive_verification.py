"""Verifying one archived document: the stored bytes against the index and the event chain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.event_chain import sealed
from postroom.core.models import ArchiveEntry, ArchiveEvent


class StoredObject(Protocol):
    """What the store reports of an archived object (``ArchivedObject`` is one)."""

    @property
    def retain_until(self) -> datetime | None: ...

    @property
    def lock_mode(self) -> str | None: ...


class ReadableArchive(Protocol):
    """What verification needs of the archive store (``ArchiveStore`` is one)."""

    def stream(self, key: str, chunk_size: int = ...) -> Iterator[bytes]: ...

    def head(self, key: str) -> StoredObject | None: ...


class Verification(BaseModel):
    """The outcome of verifying one archived document; ``problems`` name what failed."""

    id: str
    key: str
    verified: bool
    problems: list[str]
    sha256_recorded: str
    sha256_stored: str | None
    chain_seq: int | None
    retention_mode: str | None
    retain_until: datetime | None
    legal_hold: bool


def verify_entry(session: Session, store: ReadableArchive, entry: ArchiveEntry) -> Verification:
    """Recompute the SHA-256 of the stored object and compare it with the index and with the
    ``archive.write`` entry of the event chain (whose own hash must still match its fields);
    read retention mode and date from the store."""
    problems: list[str] = []
    digest = hashlib.sha256()
    stored_sha256: str | None
    try:
        for piece in store.stream(entry.archive_key):
            digest.update(piece)
        stored_sha256 = digest.hexdigest()
    except (OSError, LookupError):
        stored_sha256 = None
        problems.append(f"{entry.archive_key}: the stored object cannot be read")
    if stored_sha256 is not None and stored_sha256 != entry.sha256:
        problems.append(f"{entry.archive_key}: the stored object's SHA-256 differs from the one recorded")

    write = session.scalar(
        select(ArchiveEvent)
        .where(ArchiveEvent.kind == "archive.write", ArchiveEvent.subject == str(entry.id))
        .order_by(ArchiveEvent.seq)
        .limit(1)
    )
    if write is None:
        problems.append("the event chain holds no archive.write entry for this document")
    else:
        if not sealed(write):
            problems.append(f"event chain entry {write.seq} was altered")
        if write.detail.get("sha256") != entry.sha256:
            problems.append(f"event chain entry {write.seq} records another SHA-256 than the index")

    head = store.head(entry.archive_key)
    if head is None:
        problems.append(f"{entry.archive_key}: the store reports no object")
    return Verification(
        id=str(entry.id),
        key=entry.archive_key,
        verified=not problems,
        problems=problems,
        sha256_recorded=entry.sha256,
        sha256_stored=stored_sha256,
        chain_seq=write.seq if write is not None else None,
        retention_mode=head.lock_mode if head is not None else None,
        retain_until=head.retain_until if head is not None else None,
        legal_hold=entry.legal_hold,
    )
