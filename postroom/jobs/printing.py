"""Print batches: cut at the cut-off, built from the spool, handed to the letter shop, and
confirmed when its acknowledgement arrives."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from postroom.channels.printing.batch import BatchLayout, UnusablePiece, build_batch
from postroom.channels.printing.letter_shop import (
    Acknowledgement,
    MalformedAcknowledgement,
    parse_acknowledgement,
)
from postroom.core.models import PrintBatch
from postroom.core.print_batches import (
    ACKNOWLEDGED,
    DEFAULT_GROUP,
    QueuedPiece,
    acknowledge,
    batch_by_file,
    batch_pieces,
    cut_batch,
    drop_piece,
    record_handed_off,
    unfinished_batches,
)
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)


@dataclass
class PrintRound:
    """What a cut-off or a look at the acknowledgements did: the batches it handed off or
    settled, the documents it made final and the fallback deliveries it opened."""

    batches: list[uuid.UUID] = field(default_factory=list)
    final_documents: list[uuid.UUID] = field(default_factory=list)
    replacements: list[uuid.UUID] = field(default_factory=list)


def cut_print_batches(rt: Runtime, group: str = DEFAULT_GROUP) -> PrintRound:
    """Batch every waiting piece of ``group`` (several batches if there are more than the
    maximum) and hand each to the letter shop; batches left half-built by a dead worker are
    finished first.

    A piece whose print variant is unusable leaves its batch and its delivery fails (into its
    fallback) so that it cannot hold up the others; a letter shop that cannot be reached raises,
    and the batch is handed off on the next attempt.
    """
    round_ = PrintRound()
    with rt.db.session() as session:
        leftovers = unfinished_batches(session)
    for batch_id in leftovers:
        _hand_off_settling_unusable(rt, batch_id, round_)
    while True:
        with rt.db.session() as session:
            cut = cut_batch(session, group, rt.settings.print_batch_max_pieces)
        if cut is None:
            return round_
        _hand_off_settling_unusable(rt, cut, round_)


def _hand_off_settling_unusable(rt: Runtime, batch_id: uuid.UUID, round_: PrintRound) -> None:
    while True:
        try:
            if hand_off_batch(rt, batch_id):
                round_.batches.append(batch_id)
            return
        except UnusablePiece as error:
            log.warning(
                "print piece unusable", batch_id=str(batch_id), piece=error.number, error=error.reason
            )
            with rt.db.session() as session:
                outcome = drop_piece(
                    session, batch_id, error.piece.delivery_id, str(error), fallbacks=rt.fallbacks
                )
            round_.final_documents += outcome.final_documents
            round_.replacements += outcome.replacements


def hand_off_batch(rt: Runtime, batch_id: uuid.UUID) -> bool:
    """Build the batch's print file from the spooled print variants and put it in the drop;
    ``False`` if the batch no longer exists (its every piece was dropped)."""
    with rt.db.session() as session:
        batch = session.get(PrintBatch, batch_id)
        if batch is None:
            return False
        group, created = batch.group_key, batch.created_at
        pieces = batch_pieces(session, batch_id)

    def read(piece: QueuedPiece) -> bytes:
        return rt.spool.read(piece.document_id, "print")

    layout = BatchLayout(duplex=rt.settings.print_duplex, dl_max_sheets=rt.settings.print_dl_max_sheets)
    files = build_batch(
        batch_id,
        group,
        pieces,
        read,
        rt.settings.print_staging_path,
        created=created,
        templates_dir=rt.settings.templates_dir,
        layout=layout,
    )
    try:
        asyncio.run(rt.letter_shop.put([files.pdf, files.manifest_csv, files.manifest_json]))
    finally:
        for path in (files.pdf, files.manifest_csv, files.manifest_json):
            path.unlink(missing_ok=True)
    with rt.db.session() as session:
        record_handed_off(session, batch_id, files.pdf.name, files.sha256, files.sheets, files.pages)
    log.info("print batch handed off", batch_id=str(batch_id), pieces=len(pieces), sheets=files.sheets)
    return True


def collect_acknowledgements(rt: Runtime) -> PrintRound:
    """Confirm (or fail) the deliveries of every batch the letter shop acknowledged; delete the
    batch files and acknowledgements it has taken."""
    round_ = PrintRound()
    for name, content in asyncio.run(rt.letter_shop.acknowledgements()):
        try:
            ack = parse_acknowledgement(name, content)
        except MalformedAcknowledgement as error:
            log.warning("malformed print acknowledgement", error=str(error))
            continue
        with rt.db.session() as session:
            batch = batch_by_file(session, ack.stem)
            if batch is None or str(batch.id) != ack.batch:
                log.warning("acknowledgement for an unknown batch", file=name)
                continue
            batch_id, pending = batch.id, batch.status != ACKNOWLEDGED
        if pending:
            _apply_acknowledgement(rt, batch_id, ack, round_)
            round_.batches.append(batch_id)
        files = [f"{ack.stem}.pdf", f"{ack.stem}.manifest.csv", f"{ack.stem}.manifest.json", name]
        asyncio.run(rt.letter_shop.remove(files))
        log.info("print batch acknowledged", batch_id=ack.batch, accepted=ack.accepted)
    return round_


def _apply_acknowledgement(
    rt: Runtime, batch_id: uuid.UUID, ack: Acknowledgement, round_: PrintRound
) -> None:
    """Settle the batch's pieces one step (transaction) at a time (see :func:`acknowledge`)."""
    while True:
        with rt.db.session() as session:
            outcome = acknowledge(
                session,
                batch_id,
                ack.rejected_pieces,
                whole_batch_rejected=not ack.accepted,
                fallbacks=rt.fallbacks,
            )
        round_.final_documents += outcome.final_documents
        round_.replacements += outcome.replacements
        if outcome.complete:
            return
