"""The archive index: what auditors search by, one row per archived document.

A row is written in the transaction that confirms the archive delivery, together with the
``archive.write`` entry of the event chain. Searches page with an opaque keyset cursor, so a
page costs the same at entry 100,000 as at entry 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from postroom.core import event_chain
from postroom.core.models import ArchiveEntry, Document, utcnow
from postroom.documents.doctype import Figures
from postroom.settings import ArchiveRestriction

SortField = Literal["issue_date", "number", "archived_at"]
SYSTEM_ACTOR = "postroom"


class InvalidCursor(ValueError):
    """The cursor was not issued by this search (or was altered)."""


@dataclass(frozen=True, slots=True)
class ArchiveFilter:
    """Search criteria; every one given must hold (``None`` means any)."""

    number: str | None = None
    document_type: str | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    customer_id: str | None = None
    order_reference: str | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccessLimits:
    """What an auditor key may see: issue dates within a range and some document types only."""

    issued_from: date | None = None
    issued_to: date | None = None
    document_types: frozenset[str] | None = None

    @classmethod
    def of(cls, restriction: ArchiveRestriction) -> AccessLimits:
        """The limits an API key's ``archive`` restriction sets."""
        return cls(restriction.issued_from, restriction.issued_to, restriction.document_types)

    def admits(self, entry: ArchiveEntry) -> bool:
        """Whether ``entry`` lies within these limits."""
        return (
            (self.issued_from is None or entry.issue_date >= self.issued_from)
            and (self.issued_to is None or entry.issue_date <= self.issued_to)
            and (self.document_types is None or entry.document_type in self.document_types)
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search: its entries and the cursor of the next page (``None`` on the last)."""

    entries: Sequence[ArchiveEntry]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ArchivedDocument:
    """What the index records of one archived document."""

    document: Document
    figures: Figures | None
    order_reference: str | None
    retention_class: str
    location: str
    key: str
    sha256: str
    size: int
    retain_until: datetime
    lock_mode: str | None = None
    version_id: str | None = None
    has_einvoice: bool = False


def record_archived(session: Session, archived: ArchivedDocument) -> ArchiveEntry:
    """Index an archived document and chain its ``archive.write`` event; repeating it changes nothing."""
    return record_archived_many(session, [archived])[0]


def record_archived_many(session: Session, archived: Sequence[ArchivedDocument]) -> list[ArchiveEntry]:
    """:func:`record_archived` for several documents, in one query for those indexed already and
    one extension of the event chain for the rest."""
    ids = [item.document.id for item in archived]
    existing = {
        entry.id: entry for entry in session.scalars(select(ArchiveEntry).where(ArchiveEntry.id.in_(ids)))
    }
    entries, events = [], []
    for item in archived:
        document = item.document
        entry = existing.get(document.id)
        if entry is None:
            entry = existing[document.id] = _entry(item)
            session.add(entry)
            events.append(
                event_chain.Entry(
                    "archive.write",
                    SYSTEM_ACTOR,
                    str(document.id),
                    {
                        "key": item.key,
                        "sha256": item.sha256,
                        "size": item.size,
                        "retain_until": item.retain_until.isoformat(),
                        "lock_mode": item.lock_mode,
                        "version_id": item.version_id,
                    },
                )
            )
        entries.append(entry)
    if events:
        event_chain.extend(session, events)
    return entries


def _entry(archived: ArchivedDocument) -> ArchiveEntry:
    document, figures = archived.document, archived.figures
    return ArchiveEntry(
        id=document.id,
        document_type=document.type,
        number=document.number,
        issue_date=document.issue_date,
        customer_id=document.customer_ref,
        order_reference=archived.order_reference,
        currency=figures.currency if figures is not None else None,
        net_total=figures.net if figures is not None else None,
        tax_total=figures.tax if figures is not None else None,
        gross_total=figures.gross if figures is not None else None,
        archive_key=archived.key,
        location=archived.location,
        sha256=archived.sha256,
        size_bytes=archived.size,
        has_einvoice=archived.has_einvoice,
        retention_class=archived.retention_class,
        retain_until=archived.retain_until,
        archived_at=utcnow(),
    )


def search(
    session: Session,
    criteria: ArchiveFilter,
    limits: AccessLimits,
    *,
    sort: SortField = "issue_date",
    descending: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Entries matching ``criteria`` within ``limits``, ``limit`` per page, ordered by ``sort``
    (ties by id); ``cursor`` continues after the last entry of the previous page."""
    column = getattr(ArchiveEntry, sort)
    query = filtered(select(ArchiveEntry), criteria, limits)
    if cursor is not None:
        value, last_id = _decode_cursor(cursor, sort, descending)
        after = (
            or_(column < value, and_(column == value, ArchiveEntry.id < last_id))
            if descending
            else or_(column > value, and_(column == value, ArchiveEntry.id > last_id))
        )
        query = query.where(after)
    order = (column.desc(), ArchiveEntry.id.desc()) if descending else (column.asc(), ArchiveEntry.id.asc())
    rows = session.scalars(query.order_by(*order).limit(limit + 1)).all()
    entries = rows[:limit]
    if len(rows) <= limit:
        return Page(entries)
    last = entries[-1]
    return Page(entries, _encode_cursor(sort, descending, getattr(last, sort), last.id))


def filtered(query: Select[Any], criteria: ArchiveFilter, limits: AccessLimits) -> Select[Any]:
    """``query`` restricted to the stored entries matching ``criteria`` within ``limits``."""
    conditions: list[ColumnElement[bool]] = [ArchiveEntry.deleted_at.is_(None)]
    equal = {
        ArchiveEntry.number: criteria.number,
        ArchiveEntry.document_type: criteria.document_type,
        ArchiveEntry.customer_id: criteria.customer_id,
        ArchiveEntry.order_reference: criteria.order_reference,
    }
    conditions += [column == value for column, value in equal.items() if value is not None]
    for lower in (criteria.issued_from, limits.issued_from):
        if lower is not None:
            conditions.append(ArchiveEntry.issue_date >= lower)
    for upper in (criteria.issued_to, limits.issued_to):
        if upper is not None:
            conditions.append(ArchiveEntry.issue_date <= upper)
    if criteria.amount_min is not None:
        conditions.append(ArchiveEntry.gross_total >= criteria.amount_min)
    if criteria.amount_max is not None:
        conditions.append(ArchiveEntry.gross_total <= criteria.amount_max)
    if limits.document_types is not None:
        conditions.append(ArchiveEntry.document_type.in_(sorted(limits.document_types)))
    return query.where(*conditions)


def _encode_cursor(sort: SortField, descending: bool, value: Any, last_id: uuid.UUID) -> str:
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    raw = json.dumps({"s": sort, "d": descending, "v": text, "i": str(last_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_CURSOR_VALUE: dict[str, Callable[[str], Any]] = {
    "issue_date": date.fromisoformat,
    "archived_at": datetime.fromisoformat,
    "number": str,
}


def _decode_cursor(cursor: str, sort: SortField, descending: bool) -> tuple[Any, uuid.UUID]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort or raw["d"] != descending:
            raise InvalidCursor("the cursor belongs to a search with another sort order")
        text, last_id = str(raw["v"]), uuid.UUID(raw["i"])
        value: Any = _CURSOR_VALUE[sort](text)
    except InvalidCursor:
        raise
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("the cursor is not one this search issued") from error
    return value, last_id


def expiring(session: Session, start: date, end: date) -> Sequence[ArchiveEntry]:
    """Entries still stored whose retention ends within ``start``..``end`` (inclusive), by date."""
    return session.scalars(
        select(ArchiveEntry)
        .where(
            ArchiveEntry.deleted_at.is_(None),
            ArchiveEntry.retain_until >= datetime.combine(start, time.min, tzinfo=UTC),
            ArchiveEntry.retain_until < datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
        )
        .order_by(ArchiveEntry.retain_until, ArchiveEntry.id)
    ).all()
