"""Deleting archived documents whose retention has ended (an admin's command, never automatic).

A document under legal hold stays. Each deletion removes the object (every version) from the
store first, then marks the index row deleted and chains an ``archive.purge`` entry naming the
admin; a run cut short is completed by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from postroom.core import event_chain
from postroom.core.models import ArchiveEntry
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)


@dataclass
class PurgeOutcome:
    """Keys deleted (or, in a dry run, due for deletion) and keys kept under legal hold."""

    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


def purge_expired(rt: Runtime, now: datetime, actor: str, *, dry_run: bool = False) -> PurgeOutcome:
    """Delete every archived document whose retention ended by ``now`` and which is not held."""
    outcome = PurgeOutcome()
    with rt.db.session() as session:
        expired = session.scalars(
            select(ArchiveEntry)
            .where(ArchiveEntry.deleted_at.is_(None), ArchiveEntry.retain_until <= now)
            .order_by(ArchiveEntry.retain_until, ArchiveEntry.id)
        ).all()
        due = [(entry.id, entry.archive_key, entry.legal_hold) for entry in expired]
    for entry_id, key, held in due:
        if held:
            outcome.held.append(key)
            continue
        outcome.deleted.append(key)
        if dry_run:
            continue
        rt.archive.delete(key, now)
        with rt.db.session() as session:
            entry = session.get_one(ArchiveEntry, entry_id)
            entry.deleted_at = now
            event_chain.append(session, "archive.purge", actor, str(entry_id), key=key)
    if not dry_run and outcome.deleted:
        log.info("expired archive objects deleted", count=len(outcome.deleted), actor=actor)
    return outcome
