"""A private redis-server on a free loopback port (embedded default and test fixtures)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from postroom.embedded.ports import free_port, stop_process, wait_for_port


class RedisProcess:
    """Runs ``redis-server`` without persistence and with ``noeviction`` until stopped."""

    def __init__(self, port: int | None = None, binary: str = "redis-server") -> None:
        self.port = port or free_port()
        self.binary = shutil.which(binary) or binary
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        if self._process is None:
            raise RuntimeError("not started")
        return self._process.pid

    def start(self) -> RedisProcess:
        """Start the server and wait until it accepts connections."""
        if not Path(self.binary).exists():
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self._dir = tempfile.mkdtemp(prefix="postroom-redis-")
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                self._dir,
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, timeout=15)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()
