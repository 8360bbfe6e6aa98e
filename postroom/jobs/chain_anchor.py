"""Anchoring the archive's event chain in the archive itself.

Once a day the chain head (last entry number and hash) is written as a small JSON object into
the archive store, where the retention lock covers it: whoever can rewrite the database can
still not rewrite the chain up to the last anchor without ``postroom audit verify`` noticing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date

from postroom.channels.archive import ArchiveStore, retention_end
from postroom.core import event_chain
from postroom.core.models import ArchiveChainHead
from postroom.documents.doctype import RETENTION_YEARS
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)

ANCHOR_PREFIX = "event-chain/"


def anchor_key(seq: int) -> str:
    """The archive key of the anchor of entry ``seq``."""
    return f"{ANCHOR_PREFIX}anchor-{seq:012d}.json"


def anchor_event_chain(rt: Runtime, today: date) -> int | None:
    """Write the chain head into the archive (kept as long as books, 10 years); the anchored
    entry's number, or ``None`` when the chain is empty or its head is anchored already."""
    with rt.db.session() as session:
        head = session.get(ArchiveChainHead, 1)
        if head is None:
            return None
        seq, hash_ = head.seq, head.hash
    key = anchor_key(seq)
    if rt.archive.head(key) is not None:
        return None
    body = json.dumps({"seq": seq, "hash": hash_, "date": today.isoformat()}, sort_keys=True).encode()
    rt.archive.put(
        key,
        body,
        hashlib.sha256(body).hexdigest(),
        {"document-type": "event-chain-anchor", "retention-class": "books"},
        retention_end(today, RETENTION_YEARS["books"]),
    )
    with rt.db.session() as session:
        event_chain.append(session, "chain.anchor", "postroom", None, anchored_seq=seq, key=key)
    log.info("event chain anchored", seq=seq)
    return seq


def archived_anchors(store: ArchiveStore) -> Mapping[int, str]:
    """Every anchor in the archive: entry number → hash."""
    anchors: dict[int, str] = {}
    for key in store.keys(ANCHOR_PREFIX):
        anchor = json.loads(store.get(key))
        anchors[int(anchor["seq"])] = str(anchor["hash"])
    return anchors
