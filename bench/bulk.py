"""A bulk run end to end: reference invoices as one NDJSON upload through the API, Redis and the
workers into the archive folder and one print batch the letter shop acknowledges.

The clock runs from the first byte of the upload until the run is ``finished``: every document
archived and its letter confirmed by the letter shop. Peak RSS is sampled for the API process and
for each worker process (Dramatiq's supervisor forks them).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil

from bench.pipeline import Hub, running_hub
from postroom.embedded.letter_shop import LetterShopSimulator
from postroom.settings import PROJECT_ROOT

REFERENCE = json.loads((PROJECT_ROOT / "examples" / "reference_invoice.json").read_text(encoding="utf-8"))
MB = 1024 * 1024


def ndjson(count: int, run: str) -> Iterator[bytes]:
    """``count`` reference invoices (print and archive) as NDJSON, streamed in pieces of 500 lines."""
    lines = []
    for index in range(1, count + 1):
        body = copy.deepcopy(REFERENCE)
        body["data"]["number"] = f"RE-{run}-{index:06d}"
        lines.append(json.dumps(body))
        if len(lines) == 500:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


class PeakRss:
    """Samples the resident memory of the API process and of each worker process in the background."""

    def __init__(self, hub: Hub, interval: float = 0.5) -> None:
        self.api = psutil.Process(hub.topology.pid("api"))
        self.supervisor = psutil.Process(hub.topology.pid("worker"))
        self.interval = interval
        self.api_mb = 0.0
        self.worker_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.api_mb = max(self.api_mb, self.api.memory_info().rss / MB)
                workers = [p.memory_info().rss / MB for p in self.supervisor.children(recursive=True)]
            except psutil.Error:
                continue
            if workers:
                self.worker_mb = max(self.worker_mb, *workers)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(count: int, processes: int = 2, threads: int = 2) -> dict[str, Any]:
    """Submit ``count`` reference invoices as one bulk run and wait until it is finished."""
    with running_hub(processes, threads) as hub, LetterShopSimulator(hub.var / "print", interval=1.0):
        headers = {"Content-Type": "application/x-ndjson"}
        with PeakRss(hub) as rss:
            started = time.perf_counter()
            response = hub.api.post("/v1/batches", content=ndjson(count, "BULK"), headers=headers)
            response.raise_for_status()
            uploaded = time.perf_counter() - started
            batch = response.json()
            deadline = time.monotonic() + max(300.0, count * 1.0)
            while batch["status"] != "finished" and time.monotonic() < deadline:
                time.sleep(1.0)
                batch = hub.api.get(f"/v1/batches/{batch['id']}").json()
            elapsed = time.perf_counter() - started
    delivered = batch["documents"].get("delivered", 0)
    return {
        "name": f"bulk run: reference invoice to archive + print, {processes} worker process(es)",
        "count": count,
        "delivered": delivered,
        "status": batch["status"],
        "docs_per_second": delivered / elapsed,
        "upload_seconds": uploaded,
        "total_seconds": elapsed,
        "worker_processes": processes,
        "peak_rss_api_mb": rss.api_mb,
        "peak_rss_worker_mb": rss.worker_mb,
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2), indent=2))
