"""``/metrics``: Prometheus gauges read at scrape time from the database and the broker.

State lives in PostgreSQL and Redis, not in any one process, so the API reports it for the whole
hub: documents by type and status, deliveries by channel and status, the documents of running
bulk runs by status, and the depth of every queue. Labels are types, states, channels, queue
names and batch ids, never personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from postroom.core.batches import RUNNING
from postroom.core.models import Batch, Delivery, Document
from postroom.jobs.broker import NAMESPACE, QUEUES
from postroom.runtime import Runtime

router = APIRouter(tags=["health"])


class HubCollector(Collector):
    """Collects the hub's state on each scrape."""

    def __init__(self, rt: Runtime, redis_client: Callable[[], Any]) -> None:
        self.rt = rt
        self.redis_client = redis_client

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, read now."""
        documents = GaugeMetricFamily(
            "postroom_documents", "Documents by type and status", labels=["type", "status"]
        )
        deliveries = GaugeMetricFamily(
            "postroom_deliveries", "Deliveries by channel and status", labels=["channel", "status"]
        )
        runs = GaugeMetricFamily(
            "postroom_batch_documents", "Documents of running bulk runs by status", labels=["batch", "status"]
        )
        with self.rt.db.session() as session:
            for kind, status, count in session.execute(
                select(Document.type, Document.status, func.count()).group_by(Document.type, Document.status)
            ):
                documents.add_metric([kind, status.value], count)
            for channel, delivery_status, count in session.execute(
                select(Delivery.channel, Delivery.status, func.count()).group_by(
                    Delivery.channel, Delivery.status
                )
            ):
                deliveries.add_metric([channel, delivery_status.value], count)
            for batch_id, status, count in session.execute(
                select(Document.batch_id, Document.status, func.count())
                .join(Batch, Batch.id == Document.batch_id)
                .where(Batch.status == RUNNING)
                .group_by(Document.batch_id, Document.status)
            ):
                runs.add_metric([str(batch_id), status.value], count)
        yield documents
        yield deliveries
        yield runs
        client = self.redis_client()
        if client is not None:
            depth = GaugeMetricFamily(
                "postroom_queue_depth", "Messages waiting per queue (delayed ones included)", labels=["queue"]
            )
            for queue in QUEUES:
                waiting = client.llen(f"{NAMESPACE}:{queue}") + client.llen(f"{NAMESPACE}:{queue}.DQ")
                depth.add_metric([queue], waiting)
            yield depth


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition of the hub's state."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_registry(rt: Runtime, broker: Any) -> CollectorRegistry:
    """A registry holding the hub collector (one per app, not the process-global default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(rt, lambda: getattr(broker, "client", None)))
    return registry
