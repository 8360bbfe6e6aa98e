"""Archive channel and its storage backends (local folder, S3 with Object Lock)."""

from postroom.channels.archive.channel import ArchiveChannel, archive_key, open_archive_store
from postroom.channels.archive.store import ArchiveConflict, ArchivedObject, ArchiveStore, retention_end

__all__ = [
    "ArchiveChannel",
    "ArchiveConflict",
    "ArchiveStore",
    "ArchivedObject",
    "archive_key",
    "open_archive_store",
    "retention_end",
]
