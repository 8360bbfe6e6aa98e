"""Gapless number ranges (§14(4) Nr. 4 UStG: unique and sequential).

A number is drawn inside the transaction that issues the document, under a row lock on the
range: a concurrent issuer waits, and a rolled-back transaction gives its number back, so
no number is skipped or used twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from postroom.core.billing.models import NumberSequence


def next_number(session: Session, prefix: str, year: int, width: int = 6) -> str:
    """The next number of range ``<prefix>-<year>``, e.g. ``RE-2026-000042``."""
    key = f"{prefix}-{year}"
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(NumberSequence).values(range_key=key, next_value=1).on_conflict_do_nothing())
    sequence = session.scalars(
        select(NumberSequence)
        .where(NumberSequence.range_key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    value = sequence.next_value
    sequence.next_value = value + 1
    session.flush()
    return f"{key}-{value:0{width}d}"
