"""Bulk runs in the workers: finishing them once every document is final."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from postroom.core.batches import RUNNING, settle_batch
from postroom.core.models import Batch
from postroom.runtime import Runtime


def settle_running(rt: Runtime) -> list[uuid.UUID]:
    """Finish the running batches whose documents are all final; the batches finished."""
    with rt.db.session() as session:
        running = list(session.scalars(select(Batch.id).where(Batch.status == RUNNING)))
    finished = []
    for batch_id in running:
        with rt.db.session() as session:
            if settle_batch(session, batch_id):
                finished.append(batch_id)
    return finished
