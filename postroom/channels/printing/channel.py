"""The print channel: a preflighted piece joins the print queue; a cut-off puts it in a batch
for the letter shop, whose acknowledgement confirms it (see :mod:`postroom.jobs.printing`)."""

from __future__ import annotations

from postroom.channels.base import Handoff, HandoffReceipt
from postroom.channels.preflight import PreflightLimits, preflight_handoff
from postroom.channels.printing.inserter import MAX_SHEETS
from postroom.channels.printing.letter_shop import LetterShop
from postroom.core.db import Database
from postroom.core.print_batches import DEFAULT_GROUP, QueuedPiece, queue_piece


class PrintChannel:
    """Queues the print variant for the next batch; confirmed later, by the acknowledgement."""

    name = "print"
    variant = "print"

    def __init__(self, db: Database, letter_shop: LetterShop, *, duplex: bool = True) -> None:
        self.db = db
        self.letter_shop = letter_shop
        # More sheets than the inserter code can count do not go into one envelope anyway.
        self.limits = PreflightLimits(max_pages=MAX_SHEETS * (2 if duplex else 1))

    async def send(self, handoff: Handoff) -> HandoffReceipt:
        """Preflight (A4, fonts, window, at most 99 sheets) and queue; a failed preflight is permanent."""
        report = await preflight_handoff(handoff, self.limits)
        piece = QueuedPiece(
            delivery_id=handoff.delivery_id,
            document_id=handoff.document_id,
            country=handoff.recipient.country,
            postcode=handoff.recipient.postcode or "",
            pages=report.pages,
            sha256=handoff.sha256,
        )
        with self.db.session() as session:
            queue_piece(session, piece, handoff.print_group or DEFAULT_GROUP)
        return HandoffReceipt(external_ref="print-queue", confirmed=False, event="queued_for_print")

    async def check(self) -> None:
        """The letter shop's drop is usable."""
        await self.letter_shop.check()
