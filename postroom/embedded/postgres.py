"""A private PostgreSQL cluster on a free loopback port (test fixtures and benchmarks)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from postroom.embedded.ports import free_port, stop_process, wait_for_port


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server binaries (``POSTROOM_PG_BINDIR`` overrides)."""
    override = os.environ.get("POSTROOM_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3].split(".")[0]),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")


class PostgresProcess:
    """A throwaway PostgreSQL cluster on a free loopback port, tuned for tests (no fsync).

    PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` user
    that Debian's package creates.
    """

    def __init__(self, database: str = "postroom") -> None:
        self.port = free_port()
        self.database = database
        self.bindir = postgres_bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="postroom-pg-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            account = pwd.getpwnam(self._user)
            os.chown(self._dir, account.pw_uid, account.pw_gid)

    def url(self, database: str | None = None) -> str:
        """SQLAlchemy URL of ``database`` (the default one unless given)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        if self._process is None:
            raise RuntimeError("not started")
        return self._process.pid

    def start(self) -> PostgresProcess:
        """initdb, start, create the database."""
        data = self._dir / "data"
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self._user,
        )
        self._process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self._dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self._dir / "server.log").open("wb"),
            user=self._user,
        )
        wait_for_port(self.port, timeout=30)
        self.create_database(self.database)
        return self

    def create_database(self, name: str) -> str:
        """Create another database in this cluster and return its URL."""
        for _ in range(50):
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
                ) as connection:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    return self.url(name)
            except psycopg.OperationalError:  # still starting up
                time.sleep(0.1)
        raise TimeoutError("PostgreSQL did not accept connections")

    def dump(self, database: str | None = None) -> bytes:
        """``pg_dump`` of ``database`` (the default one unless given) as plain SQL."""
        result = subprocess.run(
            [
                str(self.bindir / "pg_dump"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "--no-owner",
                database or self.database,
            ],
            check=True,
            capture_output=True,
        )
        return result.stdout

    def stop(self) -> None:
        """Fast shutdown (SIGINT: do not wait for pooled clients) and removal of the cluster."""
        if self._process is not None:
            stop_process(self._process, signal.SIGINT, timeout=20)
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PostgresProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
