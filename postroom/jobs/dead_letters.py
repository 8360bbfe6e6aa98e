"""Dead letters: messages Dramatiq gave up on (retries or maximum age exhausted), kept by the Redis
broker in ``<namespace>:<queue>.XQ`` for its dead-message TTL. They can be listed and sent again.

A message carries ids only, so a dead letter holds no personal data. Sending one again is safe:
every actor is idempotent, and one whose subject already reached a final state does nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.common import current_millis, xq_name

from postroom.jobs.broker import NAMESPACE, QUEUES


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message given up on."""

    queue: str
    message_id: str
    actor: str
    args: list[Any]
    retries: int
    dead_since: datetime


def _keys(queue: str) -> tuple[str, str]:
    zset = f"{NAMESPACE}:{xq_name(queue)}"
    return zset, f"{zset}.msgs"


def dead_letters(client: Any, queues: Iterable[str] = QUEUES) -> list[DeadLetter]:
    """Every dead letter of ``queues``, oldest first."""
    found = []
    for queue in queues:
        zset, messages = _keys(queue)
        for message_id, score in client.zrange(zset, 0, -1, withscores=True):
            data = client.hget(messages, message_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            found.append(
                DeadLetter(
                    queue=queue,
                    message_id=message_id.decode(),
                    actor=message.actor_name,
                    args=list(message.args),
                    retries=int(message.options.get("retries", 0)),
                    dead_since=datetime.fromtimestamp(score / 1000, UTC),
                )
            )
    return sorted(found, key=lambda letter: letter.dead_since)


def requeue(broker: dramatiq.Broker, client: Any, letters: Iterable[DeadLetter]) -> int:
    """Send ``letters`` again on their queues with fresh retries; the count sent.

    Each letter is taken out of the dead-letter queue first; one already taken (by a concurrent
    requeue or Redis's expiry) is skipped, so no message is sent twice from here.
    """
    sent = 0
    for letter in letters:
        zset, messages = _keys(letter.queue)
        data = client.hget(messages, letter.message_id)
        if data is None or not client.zrem(zset, letter.message_id):
            continue
        client.hdel(messages, letter.message_id)
        message = dramatiq.Message.decode(data)
        # A new id and timestamp: retries and the maximum age count from now.
        fresh = dataclasses.replace(
            message,
            queue_name=letter.queue,
            message_id=str(uuid.uuid4()),
            message_timestamp=current_millis(),
            options={k: v for k, v in message.options.items() if k not in ("retries", "traceback", "eta")},
        )
        broker.enqueue(fresh)
        sent += 1
    return sent
