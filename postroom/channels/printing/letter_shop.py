"""Where print batches go: the letter shop's hot folder (a local or mounted directory) or its SFTP server.

Layout on both: batch files are written to ``<root>/out/`` (each atomically: a ``.part``
name first, renamed when complete; the JSON manifest last, so a complete manifest means a
complete batch). The letter shop acknowledges a batch by writing ``<root>/ack/<stem>.ack.json``::

    {"batch": "<batch id>", "status": "accepted", "rejected_pieces": []}

``status`` is ``accepted`` or ``rejected`` (the whole batch); ``rejected_pieces`` lists the
piece numbers it could not produce. After an acknowledgement is processed, postroom deletes
the batch files and the acknowledgement: the letter shop has taken the data.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import asyncssh

from postroom.channels.base import ChannelUnavailable

ACK_SUFFIX = ".ack.json"


class MalformedAcknowledgement(ValueError):
    """An acknowledgement file that does not follow the format above."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A letter shop's answer to one batch."""

    name: str
    batch: str
    accepted: bool
    rejected_pieces: frozenset[int] = field(default_factory=frozenset)

    @property
    def stem(self) -> str:
        """The batch file's name without extension."""
        return self.name.removesuffix(ACK_SUFFIX)


def parse_acknowledgement(name: str, content: bytes) -> Acknowledgement:
    """Read one acknowledgement file."""
    try:
        data = json.loads(content)
        status = data["status"]
        rejected = frozenset(int(number) for number in data.get("rejected_pieces", []))
        batch = str(data["batch"])
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedAcknowledgement(f"{name}: {type(error).__name__}") from None
    if status not in ("accepted", "rejected"):
        raise MalformedAcknowledgement(f"{name}: status must be accepted or rejected")
    return Acknowledgement(name, batch, status == "accepted", rejected)


class LetterShop(Protocol):
    """A letter shop's drop: put batch files, read acknowledgements, clean up."""

    async def put(self, files: Sequence[Path]) -> None:
        """Upload ``files`` (in order, each atomically) to ``out/``."""
        ...

    async def acknowledgements(self) -> list[tuple[str, bytes]]:
        """Names and contents of the acknowledgement files waiting in ``ack/``."""
        ...

    async def remove(self, names: Sequence[str]) -> None:
        """Delete files from ``out/`` or ``ack/`` (missing ones are fine)."""
        ...

    async def check(self) -> None:
        """Raise :class:`ChannelUnavailable` when the drop cannot be used."""
        ...


class HotFolder:
    """A directory the letter shop watches (local or network-mounted)."""

    def __init__(self, root: Path) -> None:
        self.out = root / "out"
        self.ack = root / "ack"

    async def put(self, files: Sequence[Path]) -> None:
        """Copy each file into ``out/`` under a temporary name, then rename it.

        The copy streams: a 10,000-piece print file is several hundred megabytes.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        for source in files:
            partial = self.out / f"{source.name}.part"
            shutil.copyfile(source, partial)
            partial.replace(self.out / source.name)

    async def acknowledgements(self) -> list[tuple[str, bytes]]:
        """Every ``*.ack.json`` in ``ack/``."""
        if not self.ack.is_dir():
            return []
        return [(path.name, path.read_bytes()) for path in sorted(self.ack.glob(f"*{ACK_SUFFIX}"))]

    async def remove(self, names: Sequence[str]) -> None:
        """Delete files by name from ``out/`` and ``ack/``."""
        for name in names:
            for folder in (self.out, self.ack):
                (folder / name).unlink(missing_ok=True)

    async def check(self) -> None:
        """The folders exist or can be made."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.ack.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ChannelUnavailable(f"print hot folder unusable ({type(error).__name__})") from None


class SftpFolder:
    """The same layout on the letter shop's SFTP server (asyncssh; key or password auth)."""

    def __init__(
        self,
        url: str,
        *,
        client_keys: Sequence[Path] = (),
        known_hosts: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "sftp" or not parts.hostname:
            raise ValueError("the SFTP target must be sftp://user@host[:port]/path")
        self.host, self.port = parts.hostname, parts.port or 22
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.root = unquote(parts.path) or "."
        self.client_keys = [str(key) for key in client_keys] or None
        # asyncssh reads ~/.ssh/known_hosts for (); None would switch host key checking off.
        self.known_hosts: str | tuple[()] = str(known_hosts) if known_hosts else ()
        self.timeout = timeout

    def _connect(self) -> asyncssh.SSHClientConnection:
        return asyncssh.connect(  # type: ignore[return-value]
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            client_keys=self.client_keys,
            known_hosts=self.known_hosts,
            connect_timeout=self.timeout,
        )

    async def put(self, files: Sequence[Path]) -> None:
        """Upload each file under a temporary name into ``out/``, then rename it."""
        async with self._connect() as connection, connection.start_sftp_client() as sftp:
            await sftp.makedirs(f"{self.root}/out", exist_ok=True)
            for source in files:
                target = f"{self.root}/out/{source.name}"
                await sftp.put(str(source), f"{target}.part")
                await sftp.posix_rename(f"{target}.part", target)

    async def acknowledgements(self) -> list[tuple[str, bytes]]:
        """Every ``*.ack.json`` in ``ack/``."""
        found: list[tuple[str, bytes]] = []
        folder = f"{self.root}/ack"
        async with self._connect() as connection, connection.start_sftp_client() as sftp:
            names = sorted(await sftp.listdir(folder)) if await sftp.isdir(folder) else []
            for name in (name for name in names if name.endswith(ACK_SUFFIX)):
                async with sftp.open(f"{folder}/{name}", "rb") as handle:
                    content = await handle.read()
                found.append((name, content if isinstance(content, bytes) else content.encode()))
        return found

    async def remove(self, names: Sequence[str]) -> None:
        """Delete files by name from ``out/`` and ``ack/``."""
        async with self._connect() as connection, connection.start_sftp_client() as sftp:
            for name in names:
                for folder in ("out", "ack"):
                    path = f"{self.root}/{folder}/{name}"
                    if await sftp.exists(path):
                        await sftp.remove(path)

    async def check(self) -> None:
        """Log in and make sure ``out/`` and ``ack/`` exist."""
        try:
            async with self._connect() as connection, connection.start_sftp_client() as sftp:
                await sftp.makedirs(f"{self.root}/out", exist_ok=True)
                await sftp.makedirs(f"{self.root}/ack", exist_ok=True)
        except (OSError, asyncssh.Error) as error:
            raise ChannelUnavailable(f"letter shop SFTP unavailable ({type(error).__name__})") from None


def open_letter_shop(url: str, **sftp_options: object) -> LetterShop:
    """The drop named by ``POSTROOM_PRINT_TARGET_URL``: ``file:///path`` or ``sftp://user@host/path``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return HotFolder(Path(unquote(parts.path)))
    if parts.scheme == "sftp":
        return SftpFolder(url, **sftp_options)  # type: ignore[arg-type]
    raise ValueError("the print target must be file:///path or sftp://user@host/path")
