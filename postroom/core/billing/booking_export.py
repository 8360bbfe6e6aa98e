"""The daily booking export: the journal's new entries as one CSV file for the accounting system.

File ``<booking_export_dir>/bookings-<YYYY-MM-DD>.csv``: UTF-8, ``;``-separated, CRLF line ends,
a header row, then one row per journal line, grouped by entry::

    entry;date;event;voucher;account;debit;credit;party;text
    1041;2025-09-30;interest;MA-2025-000012;1400;281.95;0.00;K-100234;interest MA-2025-000012
    1041;2025-09-30;interest;MA-2025-000012;2650;0.00;281.95;K-100234;interest MA-2025-000012

``entry`` is the journal entry's number (rows of one entry balance: debit = credit), ``date`` the
booking date (ISO 8601), ``event`` what happened (invoice, credit_note, receipt, payment, return,
transfer, refund, fee, interest, collection_cost, write_off, commission, commission_payout,
advance), ``voucher`` the voucher's number, ``account`` the ledger account
(``POSTROOM_BOOKING_ACCOUNTS``), ``debit`` and ``credit`` amounts with a decimal point and two
decimals, ``party`` the pseudonymous customer or agent number (never a name).

The file of day D carries every entry not yet exported whose booking date is D or earlier, so an
entry booked late (a payment placed by a clerk days after it arrived) rides with the next file.
A day is exported once; asking again returns the same file. Its acknowledgement by the
accounting system is the hand-off that lets the core purge personal data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postroom.core.billing import handoffs, history
from postroom.core.billing.journal import UnbalancedEntry
from postroom.core.billing.models import BookingExport, JournalEntry, JournalLine
from postroom.core.files import write_atomically
from postroom.core.models import utcnow
from postroom.money import ZERO
from postroom.settings import Settings

HEADER = ("entry", "date", "event", "voucher", "account", "debit", "credit", "party", "text")
_CHUNK = 5000


class ExportNotFound(LookupError):
    """No booking export with that id."""


def export_day(session: Session, settings: Settings, day: date, *, actor: str) -> BookingExport:
    """Write the file of ``day`` (once) and mark its entries exported; returns the export."""
    existing = session.scalars(select(BookingExport).where(BookingExport.day == day)).first()
    if existing is not None:
        return existing
    rows = session.execute(
        select(JournalEntry, JournalLine)
        .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .where(JournalEntry.export_id.is_(None), JournalEntry.day <= day)
        .order_by(JournalEntry.id, JournalLine.id)
    ).all()
    content, debit_total, credit_total = _csv((entry, line) for entry, line in rows)
    entry_ids = sorted({entry.id for entry, _ in rows})
    assert settings.booking_export_dir is not None
    target = settings.booking_export_dir / f"bookings-{day.isoformat()}.csv"
    write_atomically(target, content, mode=0o440)
    export = BookingExport(
        id=uuid.uuid4(),
        day=day,
        file=str(target),
        sha256=hashlib.sha256(content).hexdigest(),
        entries=len(entry_ids),
        debit_total=debit_total,
        credit_total=credit_total,
    )
    session.add(export)
    session.flush()
    for start in range(0, len(entry_ids), _CHUNK):
        chunk = entry_ids[start : start + _CHUNK]
        session.execute(update(JournalEntry).where(JournalEntry.id.in_(chunk)).values(export_id=export.id))
    history.record(session, "booking", export.id, "exported", actor=actor, day=day, entries=len(entry_ids))
    return export


def _csv(rows: Iterable[tuple[JournalEntry, JournalLine]]) -> tuple[bytes, Decimal, Decimal]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    debit_total = credit_total = ZERO
    entry_debit = entry_credit = ZERO
    current: JournalEntry | None = None
    for entry, line in rows:
        if current is not None and entry.id != current.id:
            _check(current, entry_debit, entry_credit)
            entry_debit = entry_credit = ZERO
        current = entry
        entry_debit += line.debit
        entry_credit += line.credit
        writer.writerow(
            (
                entry.id,
                entry.day.isoformat(),
                entry.event,
                entry.voucher,
                line.account,
                f"{line.debit:.2f}",
                f"{line.credit:.2f}",
                entry.party_reference or "",
                entry.text,
            )
        )
        debit_total += line.debit
        credit_total += line.credit
    if current is not None:
        _check(current, entry_debit, entry_credit)
    if debit_total != credit_total:
        raise UnbalancedEntry(f"the export is off by {debit_total - credit_total}")
    return buffer.getvalue().encode("utf-8"), debit_total, credit_total


def _check(entry: JournalEntry, debit: Decimal, credit: Decimal) -> None:
    if debit != credit:
        raise UnbalancedEntry(f"journal entry {entry.id} ({entry.event} {entry.voucher}) does not balance")


def acknowledge(session: Session, export_id: uuid.UUID, *, actor: str) -> BookingExport:
    """The accounting system took the file: its items whose bookings are all acknowledged now are
    confirmed to the core, which purges parties nothing else needs. Acknowledging twice is a no-op."""
    export = session.get(BookingExport, export_id, with_for_update=True)
    if export is None:
        raise ExportNotFound(f"no booking export {export_id}")
    if export.status == "acknowledged":
        return export
    export.status, export.acknowledged_at, export.acknowledged_by = "acknowledged", utcnow(), actor
    session.flush()
    invoice_ids = list(
        session.scalars(
            select(JournalEntry.invoice_id)
            .where(JournalEntry.export_id == export.id, JournalEntry.invoice_id.is_not(None))
            .distinct()
        )
    )
    handoffs.acknowledge_booking(session, fully_acknowledged(session, invoice_ids), actor=actor)
    history.record(session, "booking", export.id, "acknowledged", actor=actor, day=export.day)
    return export


def fully_acknowledged(session: Session, invoice_ids: Sequence[uuid.UUID | None]) -> list[uuid.UUID]:
    """Those of the invoices whose every journal entry is in an acknowledged export."""
    wanted = [invoice_id for invoice_id in invoice_ids if invoice_id is not None]
    pending = set(
        session.scalars(
            select(JournalEntry.invoice_id)
            .outerjoin(BookingExport, BookingExport.id == JournalEntry.export_id)
            .where(
                JournalEntry.invoice_id.in_(wanted),
                (BookingExport.id.is_(None)) | (BookingExport.status != "acknowledged"),
            )
            .distinct()
        )
    )
    return [invoice_id for invoice_id in wanted if invoice_id not in pending]


def entries_of(session: Session, export: BookingExport) -> list[JournalEntry]:
    """The journal entries an export carries, in file order."""
    return list(
        session.scalars(
            select(JournalEntry).where(JournalEntry.export_id == export.id).order_by(JournalEntry.id)
        )
    )
