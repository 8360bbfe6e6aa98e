"""Importing camt.053 statements and camt.054 notifications: each booked transaction once.

The same file twice is recognised by its SHA-256 and books nothing; a transaction reported
twice (a camt.054 during the day, then the camt.053) is recognised by its key.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import payments
from postroom.core.billing.models import BankImport
from postroom.core.billing.parties import iban_digest
from postroom.core.camt import BankEntry, EntryTransaction, parse_bank_message
from postroom.settings import Settings


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import did; ``repeated`` when the file was imported before."""

    bank_import: BankImport
    repeated: bool


def import_statement(session: Session, data: bytes, settings: Settings, *, actor: str) -> ImportOutcome:
    """Book every booked transaction of a camt.053/054 file (``CamtError`` on a malformed one)."""
    digest = hashlib.sha256(data).hexdigest()
    previous = session.scalars(select(BankImport).where(BankImport.sha256 == digest)).first()
    if previous is not None:
        return ImportOutcome(previous, repeated=True)
    message = parse_bank_message(data)
    record = BankImport(
        id=uuid.uuid4(),
        sha256=digest,
        message_kind=message.kind,
        message_id=message.message_id[:35],
        transactions=0,
        booked=0,
        duplicates=0,
        for_review=0,
        imported_by=actor,
    )
    session.add(record)
    session.flush()
    for report in message.reports:
        for entry in report.entries:
            if not entry.booked:
                continue
            for transaction in entry.transactions:
                if not entry.credit and not entry.is_direct_debit_return:
                    continue  # our own outgoing transfers: refunds and payouts are booked where they are made
                record.transactions += 1
                payment = payments.record(
                    session, _receipt(entry, transaction), settings, actor=actor, bank_import_id=record.id
                )
                if payment is None:
                    record.duplicates += 1
                    continue
                record.booked += 1
                record.for_review += payment.status == payments.REVIEW
    return ImportOutcome(record, repeated=False)


def _receipt(entry: BankEntry, transaction: EntryTransaction) -> payments.Receipt:
    booking_date = entry.booking_date or entry.value_date
    if booking_date is None:
        raise ValueError("a booked entry without booking or value date")
    returned = not entry.credit
    # A return's amount includes the bank's fee; the collection it undoes is the amount without it.
    amount = transaction.amount - (transaction.charges or 0) if returned else transaction.amount
    return payments.Receipt(
        transaction_key=transaction.key,
        source="camt",
        amount=amount,
        currency=transaction.currency,
        booking_date=booking_date,
        value_date=entry.value_date,
        remittance=" ".join(transaction.remittance) or None,
        creditor_reference=transaction.creditor_reference,
        end_to_end_id=transaction.end_to_end_id,
        counterparty_iban_sha256=iban_digest(transaction.counterparty_iban)
        if transaction.counterparty_iban
        else None,
        returned=returned,
        return_reason=transaction.return_reason,
        return_fee=transaction.charges,
    )
