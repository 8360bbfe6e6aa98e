"""The purge step: once a document is done with, its personal data leaves the hub (DESIGN §4).

Done with means every hand-off confirmed, or failed and older than
``POSTROOM_PURGE_FAILED_AFTER_HOURS``. The archive keeps its PDF (Art. 17(3)(b) GDPR).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from postroom.core.documents import purge_personal_data, purgeable
from postroom.core.models import utcnow
from postroom.core.states import DocumentStatus
from postroom.log import get_logger
from postroom.runtime import Runtime

log = get_logger(__name__)

CONFIRMED = "every hand-off confirmed"


def purge_document(rt: Runtime, document_id: uuid.UUID, reason: str) -> bool:
    """Remove the document's personal data from the database and its spooled PDFs; ``True`` if
    this call purged it. Safe to repeat: the files are removed again, the audit entry is not."""
    with rt.db.session() as session:
        purged = purge_personal_data(session, document_id, reason, actor="postroom")
    rt.spool.discard(document_id)
    if purged:
        log.info("personal data purged", document_id=str(document_id), reason=reason)
    return purged


def sweep(rt: Runtime) -> int:
    """Purge every document that is done with but still holds personal data; the count purged."""
    cutoff = utcnow() - timedelta(hours=rt.settings.purge_failed_after_hours)
    failed_reason = f"failed more than {rt.settings.purge_failed_after_hours} hours ago"
    count = 0
    while True:
        with rt.db.session() as session:
            due = purgeable(session, failed_before=cutoff)
        purged = sum(
            purge_document(rt, document_id, _reason(status, failed_reason)) for document_id, status in due
        )
        count += purged
        if not purged:
            return count


def _reason(status: DocumentStatus, failed_reason: str) -> str:
    return CONFIRMED if status is DocumentStatus.DELIVERED else failed_reason
