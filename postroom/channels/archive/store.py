"""What an archive backend must do: write once, keep until the retention date, read back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from postroom.channels.base import DeliveryRejected


class ArchiveConflict(DeliveryRejected):
    """The key already holds different content; an archived object never changes."""

    code = "archive_conflict"


@dataclass(frozen=True, slots=True)
class ArchivedObject:
    """An object as the store reports it."""

    key: str
    sha256: str
    size: int
    retain_until: datetime | None
    lock_mode: str | None
    metadata: Mapping[str, str]


class ArchiveStore(Protocol):
    """A write-once object store for archived PDFs."""

    def location(self, key: str) -> str:
        """A URL naming the object, e.g. ``s3://bucket/key`` or ``file:///...``."""
        ...

    def put(
        self, key: str, data: bytes, sha256: str, metadata: Mapping[str, str], retain_until: datetime
    ) -> ArchivedObject:
        """Store ``data`` under ``key`` unless the same content is already there.

        Raises :class:`ArchiveConflict` when the key holds other content.
        """
        ...

    def get(self, key: str) -> bytes:
        """The stored bytes of ``key``."""
        ...

    def head(self, key: str) -> ArchivedObject | None:
        """What the store knows about ``key``, or ``None``."""
        ...

    def check(self) -> None:
        """Raise :class:`~postroom.channels.base.ChannelUnavailable` if the store cannot be used."""
        ...


def retention_end(issue_date: date, years: int) -> datetime:
    """End of retention: ``years`` full calendar years after the end of the issue year."""
    return datetime(issue_date.year + years + 1, 1, 1, tzinfo=UTC)
