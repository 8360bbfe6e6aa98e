"""Archive in a local folder, with the rules of the S3 store: write once, read-only, retention recorded.

Layout below the root::

    <key>                 the object, read-only, never rewritten
    <key>.meta.json       SHA-256, size, retain-until and metadata; replaced atomically when the
                          retention is extended (read-only like the object)
    retention-index       append-only JSON lines ``{"key", "retain_until", "set_at"}``: every
                          retain-until date ever set, in order; it also serves as the store's lock file

The store has no delete operation and never overwrites an object, whatever its retention.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postroom.channels.archive.store import (
    CHUNK_SIZE,
    ArchiveConflict,
    ArchivedObject,
    ArchiveObjectMissing,
    already_kept,
    check_expired,
    check_extension,
    require_aware,
)
from postroom.channels.base import ChannelUnavailable, DeliveryRejected
from postroom.core.files import staged, write_atomically

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP
RETENTION_INDEX = "retention-index"


class LocalArchiveStore:
    """Objects as read-only files below ``root``, each with a ``.meta.json`` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def index_path(self) -> Path:
        """The append-only retention index (``retention-index`` in the archive root)."""
        return self.root / RETENTION_INDEX

    def _path(self, key: str) -> Path:
        root = self.root.resolve()
        path = (self.root / key).resolve()
        if not path.is_relative_to(root):
            raise ValueError("archive key leaves the archive folder")
        if path == root / RETENTION_INDEX or path.name.endswith(".meta.json"):
            raise ValueError("archive key names one of the store's own files")
        return path

    def location(self, key: str) -> str:
        """``file://`` URL of the object."""
        return self._path(key).as_uri()

    def put(
        self, key: str, data: bytes, sha256: str, metadata: Mapping[str, str], retain_until: datetime
    ) -> ArchivedObject:
        """Write the object and its metadata once; identical repeats are accepted.

        A repeat with a later ``retain_until`` extends the retention, one with an earlier date
        leaves it as it is. Other content under ``key`` raises :class:`ArchiveConflict`, also
        when an earlier attempt left the object without its metadata.
        """
        path = self._path(key)
        require_aware(retain_until)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DeliveryRejected(f"data for archive key {key} does not match its SHA-256")
        meta = {
            "sha256": sha256,
            "size": len(data),
            "retain_until": retain_until.isoformat(),
            "metadata": dict(metadata),
        }
        # Written and fsynced before the store's lock is taken, so that writers share the disk's
        # latency and hold the lock only for the index entry.
        object_file = staged(path, data, mode=READ_ONLY)
        meta_file = staged(_meta_path(path), _encode(meta), mode=READ_ONLY)
        try:
            with self._locked() as index:
                existing = self.head(key)
                if existing is not None:
                    if already_kept(existing, sha256, retain_until):
                        return existing
                    return self._set_retention(index, key, retain_until)
                if path.exists() and _sha256(path) != sha256:
                    raise ArchiveConflict(
                        f"archive key {key} holds an incomplete object with different content"
                    )
                # The object, then the index entry, then the metadata: an object without metadata is
                # incomplete and is completed by the retry; metadata never points at a missing object,
                # and the index never lacks a date the metadata holds. A link never replaces a file.
                if not path.exists():
                    os.link(object_file, path)
                _append(index, key, retain_until)
                os.replace(meta_file, _meta_path(path))
        finally:
            object_file.unlink(missing_ok=True)
            meta_file.unlink(missing_ok=True)
        stored = self.head(key)
        assert stored is not None
        return stored

    def extend_retention(self, key: str, until: datetime) -> ArchivedObject:
        """Move the retain-until date of ``key`` to the later ``until``; see :class:`ArchiveStore`.

        The object stays as it is; the index gains an entry and ``.meta.json`` is replaced atomically.
        """
        self._path(key)
        with self._locked() as index:
            existing = self.head(key)
            if existing is None:
                raise ArchiveObjectMissing(f"archive key {key} holds no object")
            if not check_extension(key, existing.retain_until, until):
                return existing
            return self._set_retention(index, key, until)

    def _set_retention(self, index: int, key: str, until: datetime) -> ArchivedObject:
        meta_path = _meta_path(self._path(key))
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["retain_until"] = until.isoformat()
        _append(index, key, until)
        write_atomically(meta_path, _encode(meta), mode=READ_ONLY)
        stored = self.head(key)
        assert stored is not None
        return stored

    def retention_history(self, key: str) -> list[tuple[datetime, datetime]]:
        """``(retain_until, set_at)`` of every date set for ``key``, oldest first."""
        try:
            lines = self.index_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        history = []
        for line in lines:
            entry = json.loads(line)
            if entry["key"] == key:
                history.append(
                    (datetime.fromisoformat(entry["retain_until"]), datetime.fromisoformat(entry["set_at"]))
                )
        return history

    def get(self, key: str) -> bytes:
        """The object's bytes."""
        return self._path(key).read_bytes()

    def delete(self, key: str, now: datetime) -> bool:
        """Remove the object and its metadata once its retention has ended (see :class:`ArchiveStore`)."""
        path = self._path(key)
        with self._locked():
            existing = self.head(key)
            if existing is None:
                return False
            check_expired(key, existing.retain_until, now)
            _meta_path(path).unlink()
            path.unlink(missing_ok=True)
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys of the complete objects below ``prefix`` (those with their metadata beside them)."""
        root = self.root.resolve()
        for meta in sorted(self.root.rglob("*.meta.json")):
            key = meta.resolve().relative_to(root).as_posix().removesuffix(".meta.json")
            if key.startswith(prefix):
                yield key

    def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes in pieces."""
        with self._path(key).open("rb") as handle:
            while piece := handle.read(chunk_size):
                yield piece

    def head(self, key: str) -> ArchivedObject | None:
        """The object's recorded metadata, or ``None`` if it is absent or incomplete."""
        path = self._path(key)
        try:
            meta = json.loads(_meta_path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return ArchivedObject(
            key=key,
            sha256=meta["sha256"],
            size=meta["size"],
            retain_until=datetime.fromisoformat(meta["retain_until"]),
            lock_mode="read-only-file",
            metadata=meta["metadata"],
        )

    def check(self) -> None:
        """The folder exists (or can be made) and is writable."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as error:
            raise ChannelUnavailable(f"archive folder is not writable ({type(error).__name__})") from None

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """The retention index, opened for appending and locked against other writers (threads too)."""
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield descriptor
        finally:
            os.close(descriptor)  # releases the lock


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encode(meta: Mapping[str, Any]) -> bytes:
    return json.dumps(meta, sort_keys=True, indent=1).encode()


def _append(index: int, key: str, retain_until: datetime) -> None:
    entry = {
        "key": key,
        "retain_until": retain_until.isoformat(),
        "set_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    line = (json.dumps(entry) + "\n").encode()
    if os.write(index, line) != len(line):
        raise OSError("short write to the retention index")
    os.fsync(index)
