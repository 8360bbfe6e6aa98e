"""Prometheus metrics the workers record.

``postroom worker`` runs Dramatiq's Prometheus middleware: every worker process writes into one
multiprocess directory and a forked exposition server answers ``GET /metrics`` on
``POSTROOM_WORKER_METRICS_PORT`` with the sum, beside Dramatiq's own message metrics. The API's
``/metrics`` serves the hub's state read from the database and Redis. Labels are ids of templates,
engines and channels, never personal data.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RENDER_SECONDS = Histogram(
    "postroom_render_seconds",
    "Time to render the variants of one document, by engine and template.",
    ["engine", "template"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 120.0),
)
DELIVERIES = Counter(
    "postroom_deliveries",
    "Delivery attempts by channel and outcome: sent (awaiting confirmation), confirmed, deferred "
    "(retried later) or rejected (failed for good).",
    ["channel", "outcome"],
)
