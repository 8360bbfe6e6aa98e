"""The Channel protocol: hand one rendered document to one output channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from postroom.documents.doctype import RetentionClass
from postroom.documents.parties import Recipient, Seller
from postroom.errors import PermanentError, TransientError


class DeliveryRejected(PermanentError):
    """The channel refused the document for good (5xx reply, failed preflight, conflict)."""

    code = "delivery_rejected"


class DeliveryDeferred(TransientError):
    """The channel could not take the document now; the delivery is retried with backoff."""

    code = "delivery_deferred"


class ChannelUnavailable(TransientError):
    """The channel's backend cannot be reached (readiness check)."""

    code = "channel_unavailable"


@dataclass(frozen=True, slots=True)
class Handoff:
    """Everything a channel needs for one delivery.

    It carries personal data (recipient, PDF) in memory only; channels must not log it.
    """

    delivery_id: uuid.UUID
    document_id: uuid.UUID
    document_type: str
    title: str
    number: str
    issue_date: date
    locale: str
    retention: RetentionClass
    recipient: Recipient
    seller: Seller
    pdf: bytes
    sha256: str
    print_group: str | None = None
    """The print batch group (a bulk run's id); ``None`` batches at the next cut-off."""


@dataclass(frozen=True, slots=True)
class HandoffReceipt:
    """Proof of a hand-off: the channel's reference and whether it is already confirmed.

    ``event`` names the hand-off in the delivery's history (``queued_for_print``,
    ``submitted``); unconfirmed receipts are confirmed later by the channel's counterpart.
    """

    external_ref: str
    confirmed: bool
    event: str | None = None
    stored: StoredCopy | None = None
    """Set by a channel that keeps the document for its retention period (the archive)."""


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """Where an archiving channel put the document and until when it is locked there."""

    key: str
    size: int
    retain_until: datetime
    lock_mode: str | None = None
    version_id: str | None = None


class Channel(Protocol):
    """One output channel. ``send`` is idempotent by ``Handoff.delivery_id``."""

    name: str
    variant: str

    async def send(self, handoff: Handoff) -> HandoffReceipt:
        """Hand the document over; raise :class:`DeliveryRejected` or :class:`DeliveryDeferred`."""
        ...

    async def check(self) -> None:
        """Raise :class:`ChannelUnavailable` when the channel's backend cannot be reached."""
        ...
