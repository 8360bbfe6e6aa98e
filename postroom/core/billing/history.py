"""The append-only history of the core: one :class:`CoreEvent` per state transition."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing.models import CoreEvent
from postroom.core.billing.states import check_transition


def record(
    session: Session,
    entity: str,
    entity_id: uuid.UUID,
    action: str,
    *,
    actor: str,
    reason: str | None = None,
    before: StrEnum | None = None,
    after: StrEnum | None = None,
    **detail: Any,
) -> CoreEvent:
    """Append an event; ``detail`` holds ids, numbers and amounts, never personal data."""
    event = CoreEvent(
        entity=entity,
        entity_id=entity_id,
        action=action,
        actor=actor,
        reason=reason,
        before=before.value if before is not None else None,
        after=after.value if after is not None else None,
        detail={key: _plain(value) for key, value in detail.items()},
    )
    session.add(event)
    return event


def move(
    session: Session,
    entity: str,
    row: Any,
    target: StrEnum,
    action: str,
    *,
    actor: str,
    reason: str | None = None,
    **detail: Any,
) -> None:
    """Move ``row`` to ``target`` if its lifecycle allows it, and record the transition."""
    current = row.status
    check_transition(current, target)
    row.status = target
    record(
        session, entity, row.id, action, actor=actor, reason=reason, before=current, after=target, **detail
    )


def history(session: Session, entity: str, entity_id: uuid.UUID) -> list[CoreEvent]:
    """Every event of one order, invoice or commission, oldest first."""
    query = (
        select(CoreEvent)
        .where(CoreEvent.entity == entity, CoreEvent.entity_id == entity_id)
        .order_by(CoreEvent.id)
    )
    return list(session.scalars(query))


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | StrEnum):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # Decimal and dates keep their exact text
