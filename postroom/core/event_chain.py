"""The archive's event log: append-only and hash-chained (GoBD).

Each entry's hash is the SHA-256 of the previous entry's hash and the entry's canonical JSON
(keys sorted, no insignificant whitespace, UTF-8; values are strings, integers, booleans and
lists or objects of them, never floats), so that changing any field of an entry, or removing one,
breaks the chain at that entry. Appends lock the one-row chain head: entries are numbered 1, 2, 3 …
without gaps, and entries cut off at the end no longer match the head. Details carry ids,
numbers and key ids, never personal data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.models import ArchiveChainHead, ArchiveEvent, utcnow

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""
_HEAD_ID = 1


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """``value`` as canonical JSON bytes: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(
    seq: int, at: datetime, kind: str, actor: str, subject: str | None, detail: Mapping[str, Any], prev: str
) -> str:
    """The hash an entry with these fields must carry."""
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "kind": kind,
        "actor": actor,
        "subject": subject,
        "detail": detail,
        "prev_hash": prev,
    }
    return hashlib.sha256(prev.encode() + canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry to append: what happened (``kind``), who did it, to what, and its details."""

    kind: str
    actor: str
    subject: str | None
    detail: Mapping[str, Any]


def append(
    session: Session, kind: str, actor: str, subject: str | None = None, **detail: Any
) -> ArchiveEvent:
    """Append an entry; it becomes part of the chain when ``session`` commits.

    The head row is locked until then, so concurrent appends queue up behind each other.
    """
    return extend(session, [Entry(kind, actor, subject, detail)])[0]


def extend(session: Session, entries: Sequence[Entry]) -> list[ArchiveEvent]:
    """:func:`append` each of ``entries`` in order, locking the head and writing once for all."""
    head = session.scalar(select(ArchiveChainHead).where(ArchiveChainHead.id == _HEAD_ID).with_for_update())
    if head is None:
        head = ArchiveChainHead(id=_HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
    events = []
    for entry in entries:
        at = utcnow()
        seq = head.seq + 1
        detail = dict(entry.detail)
        event = ArchiveEvent(
            seq=seq,
            at=at,
            kind=entry.kind,
            actor=entry.actor,
            subject=entry.subject,
            detail=detail,
            prev_hash=head.hash,
            hash=entry_hash(seq, at, entry.kind, entry.actor, entry.subject, detail, head.hash),
        )
        session.add(event)
        head.seq, head.hash = seq, event.hash
        events.append(event)
    session.flush()
    return events


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain stops holding: the entry's number and what is wrong with it."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of walking the chain: entries checked, the head, and the first break if any."""

    entries: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        """No break was found."""
        return self.broken is None


def walk(session: Session, batch: int = 1000) -> Iterator[ArchiveEvent]:
    """Every entry in order, read ``batch`` at a time."""
    after = 0
    while True:
        chunk = session.scalars(
            select(ArchiveEvent).where(ArchiveEvent.seq > after).order_by(ArchiveEvent.seq).limit(batch)
        ).all()
        yield from chunk
        if len(chunk) < batch:
            return
        after = chunk[-1].seq
        session.expunge_all()


def sealed(event: ArchiveEvent) -> bool:
    """Whether ``event``'s hash still matches its fields (it was not edited)."""
    fields = (event.seq, event.at, event.kind, event.actor, event.subject, event.detail, event.prev_hash)
    return entry_hash(*fields) == event.hash


def verify(session: Session, anchors: Mapping[int, str] | None = None) -> ChainReport:
    """Walk the chain from the first entry and report the first broken link.

    A link is broken where an entry's number skips (an entry was removed), its ``prev_hash``
    differs from the previous entry's hash, or its own hash does not match its fields (it was
    edited). ``anchors`` (entry number → hash, as written into the archive) must match too; and
    the last entry must be the head.
    """
    head = session.get(ArchiveChainHead, _HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    anchors = anchors or {}
    expected_prev, expected_seq, count = GENESIS, 1, 0

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(count, head_seq, head_hash, broken)

    for event in walk(session):
        count += 1
        if event.seq != expected_seq:
            return report(ChainBreak(expected_seq, "entry missing"))
        if event.prev_hash != expected_prev:
            return report(ChainBreak(event.seq, "previous hash does not match"))
        if not sealed(event):
            return report(ChainBreak(event.seq, "entry altered"))
        if event.seq in anchors and anchors[event.seq] != event.hash:
            return report(ChainBreak(event.seq, "differs from the archived anchor"))
        expected_prev, expected_seq = event.hash, event.seq + 1
    if expected_seq - 1 != head_seq or expected_prev != head_hash:
        return report(ChainBreak(expected_seq, "entries missing at the end"))
    beyond = [seq for seq in anchors if seq > head_seq]
    return report(ChainBreak(min(beyond), "anchored entry missing") if beyond else None)
