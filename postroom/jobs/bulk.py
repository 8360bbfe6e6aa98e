"""Bulk runs in the workers: their own print batches, and finishing them once every document is final."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select

from postroom.core.batches import RUNNING, batch_print_group, print_cut_due, settle_batch
from postroom.core.models import Batch
from postroom.runtime import Runtime


@dataclass
class BulkRound:
    """What a look at the running bulk runs found: runs finished, print groups ready to cut."""

    finished: list[uuid.UUID] = field(default_factory=list)
    print_groups: list[str] = field(default_factory=list)


def settle_running(rt: Runtime) -> BulkRound:
    """Finish the running batches whose documents are all final, and name the runs whose letters
    are all in their print queue, so that their print batch is cut now rather than at a cut-off."""
    with rt.db.session() as session:
        running = list(session.scalars(select(Batch.id).where(Batch.status == RUNNING)))
    round_ = BulkRound()
    for batch_id in running:
        with rt.db.session() as session:
            if settle_batch(session, batch_id):
                round_.finished.append(batch_id)
            elif print_cut_due(session, batch_id):
                round_.print_groups.append(batch_print_group(batch_id))
    return round_
