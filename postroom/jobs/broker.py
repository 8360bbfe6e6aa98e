"""The Dramatiq broker: Redis in every real deployment."""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from postroom.jobs.middleware import GiveUp, TraceContext
from postroom.settings import Settings

NAMESPACE = "postroom"
DOCUMENTS_QUEUE = "documents"
DELIVERIES_QUEUE = "deliveries"
CALLBACKS_QUEUE = "callbacks"
MAINTENANCE_QUEUE = "maintenance"
BULK_QUEUE = "bulk"
"""Expansion of bulk runs and the rendering of their documents."""
BULK_DELIVERIES_QUEUE = "bulk-deliveries"
"""Deliveries of bulk runs, apart from single documents' so those are never stuck behind a run."""
QUEUES = (
    DOCUMENTS_QUEUE,
    DELIVERIES_QUEUE,
    CALLBACKS_QUEUE,
    MAINTENANCE_QUEUE,
    BULK_QUEUE,
    BULK_DELIVERIES_QUEUE,
)


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A RedisBroker for ``POSTROOM_REDIS_URL``.

    Without a Redis URL a stub broker stands in so that modules importing the actors
    (the CLI's ``render``, for instance) still load; ``serve`` and ``worker`` refuse
    to start without Redis.
    """
    broker: dramatiq.Broker
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            client=client,
            namespace=NAMESPACE,
            heartbeat_timeout=int(settings.worker_heartbeat_timeout_seconds * 1000),
            maintenance_chance=settings.queue_maintenance_chance,
        )
    else:
        broker = StubBroker()
    broker.add_middleware(CurrentMessage())
    # "after" hooks run in reverse order: GiveUp's fallback messages are sent while the span is open.
    broker.add_middleware(TraceContext(), before=Retries)
    broker.add_middleware(GiveUp(), before=Retries)
    return broker


def install_broker(settings: Settings) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one (before any actor is declared)."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
