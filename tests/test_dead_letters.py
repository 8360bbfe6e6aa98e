"""Dead letters on the real Redis broker: listed by CLI and admin API, sent again with fresh retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from postroom.cli import main
from postroom.jobs.dead_letters import dead_letters
from tests.conftest import ADMIN_KEY, WRITER_KEY

QUEUE = f"test-dead-letters-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def broker(hub_env: dict[str, str]) -> dramatiq.Broker:
    from postroom.jobs import actors

    return actors.broker


@pytest.fixture(scope="module")
def probe(broker: dramatiq.Broker) -> dramatiq.Actor[[str], None]:
    def probe(subject_id: str) -> None:  # never run: the test plays the worker
        raise AssertionError(subject_id)

    declared: dramatiq.Actor[[str], None] = dramatiq.actor(
        queue_name=QUEUE, actor_name=f"probe_{QUEUE.replace('-', '_')}"
    )(probe)
    return declared


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    from postroom.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


def take(broker: dramatiq.Broker) -> Any:
    """Fetch the next message of the test queue as a worker would, and hand back the consumer."""
    consumer = broker.consume(QUEUE, prefetch=1, timeout=500)
    for _ in range(20):
        message = next(consumer)
        if message is not None:
            return consumer, message
    raise AssertionError("no message arrived")


def test_a_dead_letter_is_listed_and_sent_again_with_fresh_retries(
    broker: dramatiq.Broker, probe: dramatiq.Actor[[str], None], api: TestClient
) -> None:
    probe.send_with_options(args=("document-1",), retries=7)
    consumer, message = take(broker)
    consumer.nack(message)  # given up: to the dead-letter queue
    consumer.close()

    [letter] = dead_letters(broker.client, [QUEUE])  # type: ignore[attr-defined]
    assert (letter.actor, letter.args, letter.retries) == (probe.actor_name, ["document-1"], 7)

    listed = CliRunner().invoke(main, ["dlq", "list", "--queue", QUEUE])
    assert listed.exit_code == 0, listed.output
    assert letter.message_id in listed.output
    assert "document-1" in listed.output

    assert (
        api.get("/v1/admin/dead-letters", headers={"Authorization": f"Bearer {WRITER_KEY}"}).status_code
        == 403
    )
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    [view] = api.get("/v1/admin/dead-letters", params={"queue": QUEUE}, headers=admin).json()
    assert view["message_id"] == letter.message_id
    answer = api.post(
        "/v1/admin/dead-letters/requeue",
        json={"message_ids": [letter.message_id], "queues": [QUEUE]},
        headers=admin,
    )
    assert answer.json() == {"requeued": 1}
    assert dead_letters(broker.client, [QUEUE]) == []  # type: ignore[attr-defined]
    again = CliRunner().invoke(main, ["dlq", "requeue", "--queue", QUEUE, letter.message_id])
    assert again.exit_code == 2  # gone from the dead letters: nothing is sent twice

    consumer, message = take(broker)
    consumer.ack(message)
    consumer.close()
    assert message.args == ("document-1",)
    assert "retries" not in message.options
