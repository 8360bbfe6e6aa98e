"""A bulk run end to end: reference invoices as one NDJSON upload through the API, Redis and the
workers into the archive folder and one print batch the letter shop acknowledges.

The clock runs from the first byte of the upload until the run is ``finished``: every document
archived and its letter confirmed by the letter shop. Peak RSS is sampled for the API process and
for each worker process (Dramatiq's supervisor forks them); CPU time for every process of the hub,
by role, so that the run's cost per document can be set against the pure render cost.
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


class ProcessSampler:
    """Samples, in the background, the resident memory of the API and of each worker process and
    the CPU time of every process of the hub by role: API, workers, scheduler, PostgreSQL, Redis
    and this process (upload, polling and the simulated letter shop).

    CPU time is read per process and kept at its highest reading, so a process that exits
    mid-run (a PostgreSQL backend, a forked worker) still counts with its last sample.
    """

    def __init__(self, hub: Hub, interval: float = 0.5) -> None:
        self.roots = {
            "api": psutil.Process(hub.topology.pid("api")),
            "workers": psutil.Process(hub.topology.pid("worker")),
            "scheduler": psutil.Process(hub.topology.pid("scheduler")),
            **{name: psutil.Process(pid) for name, pid in hub.servers.items()},
            "bench": psutil.Process(),
        }
        self.interval = interval
        self.api_mb = 0.0
        self.worker_mb = 0.0
        self._cpu: dict[str, dict[int, float]] = {role: {} for role in self.roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) spent since the start, by role."""
        return {role: round(sum(readings.values()), 1) for role, readings in self._cpu.items()}

    def _sample(self) -> None:
        baseline = self._read_cpu()
        while not self._stop.wait(self.interval):
            for role, readings in self._read_cpu().items():
                for pid, seconds in readings.items():
                    spent = seconds - baseline[role].get(pid, 0.0)
                    self._cpu[role][pid] = max(self._cpu[role].get(pid, 0.0), spent)
            try:
                self.api_mb = max(self.api_mb, self.roots["api"].memory_info().rss / MB)
                workers = [p.memory_info().rss / MB for p in self.roots["workers"].children(recursive=True)]
            except psutil.Error:
                continue
            if workers:
                self.worker_mb = max(self.worker_mb, *workers)

    def _read_cpu(self) -> dict[str, dict[int, float]]:
        readings: dict[str, dict[int, float]] = {}
        for role, root in self.roots.items():
            readings[role] = {}
            try:
                tree = [root] if role == "bench" else [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                readings[role][process.pid] = times.user + times.system
        return readings

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(count: int, processes: int = 2, threads: int = 1) -> dict[str, Any]:
    """Submit ``count`` reference invoices as one bulk run and wait until it is finished.

    One thread per worker process by default: a bulk run's messages render (CPU, mostly holding
    the GIL), so a second thread in the same process only contends for the interpreter; on this
    machine two threads a process cost about 15 % more CPU per document.
    """
    with running_hub(processes, threads) as hub, LetterShopSimulator(hub.var / "print", interval=1.0):
        headers = {"Content-Type": "application/x-ndjson"}
        with ProcessSampler(hub) as sampler:
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
        cpu = sampler.cpu_seconds()
    delivered = batch["documents"].get("delivered", 0)
    return {
        "name": f"bulk run: reference invoice to archive + print, {processes} worker process(es)"
        f" x {threads} thread(s)",
        "count": count,
        "delivered": delivered,
        "status": batch["status"],
        "docs_per_second": delivered / elapsed,
        "upload_seconds": uploaded,
        "total_seconds": elapsed,
        "worker_processes": processes,
        "worker_threads": threads,
        "peak_rss_api_mb": sampler.api_mb,
        "peak_rss_worker_mb": sampler.worker_mb,
        **{f"cpu_seconds_{role}": seconds for role, seconds in cpu.items()},
        "cpu_seconds_per_document": sum(cpu.values()) / max(delivered, 1),
    }


if __name__ == "__main__":
    import sys

    arguments = [int(argument) for argument in sys.argv[1:4]]
    print(json.dumps(run(*arguments), indent=2))
