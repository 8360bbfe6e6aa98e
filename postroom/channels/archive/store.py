"""What an archive backend must do: write once, keep until the retention date, read back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from postroom.channels.base import DeliveryRejected

CHUNK_SIZE = 64 * 1024
"""Bytes per piece of a streamed download."""


class ArchiveConflict(DeliveryRejected):
    """The key already holds different content; an archived object never changes."""

    code = "archive_conflict"


class RetentionShortened(DeliveryRejected):
    """A retain-until date earlier than the one in force was asked for; retention is never shortened.

    A :class:`~postroom.channels.base.DeliveryRejected` (a permanent error): retrying cannot help,
    and the message names the key and both dates, nothing personal.
    """

    code = "retention_shortened"


class ArchiveRetained(DeliveryRejected):
    """The object is still under retention; it cannot be deleted before its retain-until date."""

    code = "archive_retained"


class ArchiveObjectMissing(DeliveryRejected):
    """The key holds no (complete) object, so there is no retention to extend."""

    code = "archive_object_missing"


@dataclass(frozen=True, slots=True)
class ArchivedObject:
    """An object as the store reports it."""

    key: str
    sha256: str
    size: int
    retain_until: datetime | None
    lock_mode: str | None
    metadata: Mapping[str, str]
    version_id: str | None = None


class ArchiveStore(Protocol):
    """A write-once object store for archived PDFs."""

    def location(self, key: str) -> str:
        """A URL naming the object, e.g. ``s3://bucket/key`` or ``file:///...``."""
        ...

    def put(
        self, key: str, data: bytes, sha256: str, metadata: Mapping[str, str], retain_until: datetime
    ) -> ArchivedObject:
        """Store ``data`` under ``key`` unless the same content is already there.

        Raises :class:`ArchiveConflict` when the key holds other content. When it holds the same
        content, a later ``retain_until`` extends the retention and an earlier one is ignored
        (retention is never shortened).
        """
        ...

    def extend_retention(self, key: str, until: datetime) -> ArchivedObject:
        """Keep ``key`` at least until ``until`` (timezone-aware).

        A later date than the one in force replaces it; the same date changes nothing.
        Raises :class:`RetentionShortened` for an earlier date and :class:`ArchiveObjectMissing`
        when ``key`` holds no object.
        """
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes of ``key``."""
        ...

    def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The stored bytes of ``key`` in pieces, for downloads that must not hold the whole object."""
        ...

    def head(self, key: str) -> ArchivedObject | None:
        """What the store knows about ``key``, or ``None``."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys of the stored objects below ``prefix``, in key order."""
        ...

    def delete(self, key: str, now: datetime) -> bool:
        """Delete ``key`` (every version of it) once its retention has ended; ``False`` if absent.

        Raises :class:`ArchiveRetained` while ``now`` is before the retain-until date.
        """
        ...

    def check(self) -> None:
        """Raise :class:`~postroom.channels.base.ChannelUnavailable` if the store cannot be used."""
        ...


def retention_end(issue_date: date, years: int) -> datetime:
    """End of retention: ``years`` full calendar years after the end of the issue year."""
    return datetime(issue_date.year + years + 1, 1, 1, tzinfo=UTC)


def check_extension(key: str, current: datetime | None, until: datetime) -> bool:
    """Whether ``until`` extends the retention ``current`` of ``key``: ``True`` if later, ``False`` if equal.

    Raises :class:`RetentionShortened` if ``until`` is earlier, ``ValueError`` if it is naive.
    """
    require_aware(until)
    if current is None or until > current:
        return True
    if until == current:
        return False
    raise RetentionShortened(
        f"retention of archive key {key} ends {current.astimezone(UTC).isoformat()}; "
        f"{until.astimezone(UTC).isoformat()} would shorten it"
    )


def already_kept(existing: ArchivedObject, sha256: str, retain_until: datetime) -> bool:
    """Whether ``existing``, the object under a key, already holds content ``sha256`` retained at
    least until ``retain_until``, so that a put of it changes nothing.

    Raises :class:`ArchiveConflict` if the key holds other content.
    """
    if existing.sha256 != sha256:
        raise ArchiveConflict(f"archive key {existing.key} already holds different content")
    return existing.retain_until is not None and retain_until <= existing.retain_until


def check_expired(key: str, retain_until: datetime | None, now: datetime) -> None:
    """Raise :class:`ArchiveRetained` unless the retention of ``key`` has ended at ``now``."""
    if retain_until is not None and require_aware(now) < retain_until:
        until = retain_until.astimezone(UTC).isoformat()
        raise ArchiveRetained(f"archive key {key} is retained until {until}")


def require_aware(until: datetime) -> datetime:
    """``until`` itself; raises ``ValueError`` if it is naive (a retain-until date needs a time zone)."""
    if until.tzinfo is None or until.utcoffset() is None:
        raise ValueError("retain-until dates must be timezone-aware")
    return until
