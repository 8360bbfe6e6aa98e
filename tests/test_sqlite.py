"""The embedded SQLite database under concurrent writers, as in the demo (API plus worker processes)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from postroom.core.db import Database


def test_a_transaction_that_reads_then_writes_waits_for_a_concurrent_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'postroom.db'}"
    setup = Database(url)
    with setup.session() as session:
        session.execute(text("CREATE TABLE counter (value INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    reader_writer, writer = Database(url), Database(url)  # separate engines, like separate processes
    has_read, errors = threading.Event(), []

    def read_then_write() -> None:
        try:
            with reader_writer.session() as session:
                value = session.execute(text("SELECT value FROM counter")).scalar_one()
                has_read.set()
                time.sleep(0.3)  # meanwhile the other process tries to write
                session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def write() -> None:
        has_read.wait()
        try:
            with writer.session() as session:
                session.execute(text("UPDATE counter SET value = value + 1"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=read_then_write), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with setup.session() as session:
        assert session.execute(text("SELECT value FROM counter")).scalar_one() == 2  # no lost update
