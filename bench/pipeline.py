"""End-to-end throughput: documents through the API, Redis, workers, archive and SMTP.

The hub runs as in production: ``postroom serve`` and ``postroom worker`` processes on a
private PostgreSQL and Redis, a local archive folder and the SMTP sink.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from postroom.core.migrate import upgrade
from postroom.embedded.postgres import PostgresProcess
from postroom.embedded.redis import RedisProcess
from postroom.embedded.smtp_sink import SmtpSink
from postroom.embedded.topology import Topology
from postroom.settings import PROJECT_ROOT

KEY = "bench-secret"
INVOICE = json.loads((PROJECT_ROOT / "examples" / "invoice.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Hub:
    """A running hub: an authenticated client to its API, its processes, SMTP sink and working folder."""

    api: httpx.Client
    topology: Topology
    sink: SmtpSink
    var: Path
    servers: dict[str, int]
    """Process ids of the private PostgreSQL and Redis servers, by name."""


@contextmanager
def running_hub(processes: int, threads: int) -> Iterator[Hub]:
    """API and workers on private PostgreSQL, Redis and SMTP sink, a local archive folder and the
    print hot folder under a temporary working folder."""
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as folder:
        var = Path(folder)
        with PostgresProcess() as postgres, RedisProcess() as redis, SmtpSink(var / "outbox") as sink:
            upgrade(postgres.url())
            env = {
                **os.environ,
                "POSTROOM_VAR_DIR": str(var),
                "POSTROOM_DATABASE_URL": postgres.url(),
                "POSTROOM_REDIS_URL": redis.url,
                "POSTROOM_ARCHIVE_URL": (var / "archive").as_uri(),
                "POSTROOM_SMTP_URL": sink.url,
                "POSTROOM_LOG_LEVEL": "WARNING",
                "POSTROOM_PRINT_ACK_POLL_SECONDS": "2",  # the simulated letter shop answers at once
                "POSTROOM_API_KEYS": json.dumps([{"id": "bench", "secret": KEY, "scopes": ["admin"]}]),
            }
            topology = Topology(env, var / "logs", worker_processes=processes, worker_threads=threads)
            headers = {"Authorization": f"Bearer {KEY}"}
            with topology, httpx.Client(base_url=topology.api_url, headers=headers, timeout=60) as api:
                yield Hub(api, topology, sink, var, {"postgres": postgres.pid, "redis": redis.pid})


def run(count: int, processes: int, threads: int) -> dict[str, Any]:
    """Submit ``count`` invoices (e-mail + archive) and wait until every one is final."""
    with running_hub(processes, threads) as hub:
        api, sink = hub.api, hub.sink
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = list(pool.map(lambda index: _submit(api, index), range(count)))
        submitted = time.perf_counter() - started
        views = _wait_all(api, ids, timeout=max(120.0, count * 0.5))
        elapsed = time.perf_counter() - started
        emails = len(sink.messages())
    delivered = [view for view in views if view["status"] == "delivered"]
    latencies = sorted(_seconds(view["created_at"], view["delivered_at"]) for view in delivered)
    return {
        "name": f"pipeline: invoice to e-mail + archive, {processes}x{threads} workers",
        "count": count,
        "delivered": len(delivered),
        "emails": emails,
        "docs_per_second": len(delivered) / elapsed,
        "submit_seconds": submitted,
        "total_seconds": elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000 if latencies else None,
    }


def _submit(api: httpx.Client, index: int) -> str:
    body = {**INVOICE, "data": {**INVOICE["data"], "number": f"RE-B-{index:07d}"}}
    response = api.post("/v1/documents", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    response.raise_for_status()
    document_id: str = response.json()["id"]
    return document_id


def _wait_all(api: httpx.Client, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Every document once final, polling one at a time in submission order.

    Documents finish roughly in order, so this costs about one request per finished
    document instead of a sweep over all pending ones, which would load the API under test.
    """
    deadline = time.monotonic() + timeout
    views = []
    for document_id in ids:
        view = api.get(f"/v1/documents/{document_id}").json()
        while view["status"] not in ("delivered", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            view = api.get(f"/v1/documents/{document_id}").json()
        views.append(view)
    return views


def _seconds(start: str, end: str) -> float:
    return datetime.fromisoformat(end).timestamp() - datetime.fromisoformat(start).timestamp()
