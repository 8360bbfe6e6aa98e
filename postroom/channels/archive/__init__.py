"""Archive channel and its storage backends (local folder, S3 with Object Lock)."""

from postroom.channels.archive.channel import (
    ArchiveChannel,
    archive_key,
    archive_metadata,
    open_archive_store,
)
from postroom.channels.archive.store import (
    ArchiveConflict,
    ArchivedObject,
    ArchiveObjectMissing,
    ArchiveRetained,
    ArchiveStore,
    RetentionShortened,
    retention_end,
)

__all__ = [
    "ArchiveChannel",
    "ArchiveConflict",
    "ArchiveObjectMissing",
    "ArchiveRetained",
    "ArchiveStore",
    "ArchivedObject",
    "RetentionShortened",
    "archive_key",
    "archive_metadata",
    "open_archive_store",
    "retention_end",
]
