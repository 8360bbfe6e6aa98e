"""Archive in a local folder, with the rules of the S3 store: write once, read-only, retention recorded."""

from __future__ import annotations

import hashlib
import json
import stat
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from postroom.channels.archive.store import ArchiveConflict, ArchivedObject
from postroom.channels.base import ChannelUnavailable
from postroom.core.files import write_atomically

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP


class LocalArchiveStore:
    """Objects as read-only files below ``root``, each with a ``.meta.json`` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("archive key leaves the archive folder")
        return path

    def location(self, key: str) -> str:
        """``file://`` URL of the object."""
        return self._path(key).as_uri()

    def put(
        self, key: str, data: bytes, sha256: str, metadata: Mapping[str, str], retain_until: datetime
    ) -> ArchivedObject:
        """Write the object and its metadata once; identical repeats are accepted."""
        existing = self.head(key)
        if existing is not None:
            if existing.sha256 != sha256:
                raise ArchiveConflict(f"archive key {key} already holds different content")
            return existing
        path = self._path(key)
        meta = {
            "sha256": sha256,
            "size": len(data),
            "retain_until": retain_until.isoformat(),
            "metadata": dict(metadata),
        }
        # The object is written before its metadata: an object without metadata is
        # incomplete and gets rewritten, metadata never points at a missing object.
        _write_once(path, data)
        _write_once(_meta_path(path), json.dumps(meta, sort_keys=True, indent=1).encode())
        stored = self.head(key)
        assert stored is not None
        return stored

    def get(self, key: str) -> bytes:
        """The object's bytes."""
        return self._path(key).read_bytes()

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


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _write_once(path: Path, data: bytes) -> None:
    if path.exists() and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
        return
    write_atomically(path, data, mode=READ_ONLY)
