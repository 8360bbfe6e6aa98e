"""Writing files so that a reader never sees a partial one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def staged(target: Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to a new temporary file beside ``target`` and fsync it; its path.

    The caller moves it into place (a rename, or a link where an existing file must not be
    replaced) and removes what is left. ``mode`` is set on the temporary file already.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def write_atomically(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``target``, fsync it, then rename it into place.

    ``mode`` (e.g. read-only for archived objects) is set before the rename, so the file
    never exists under its name with other permissions.
    """
    temporary = staged(target, data, mode=mode)
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
