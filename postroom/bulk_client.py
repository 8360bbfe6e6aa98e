"""The client side of bulk runs, for ``postroom batch submit``: streams a file to the API and
follows the run with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

FINAL_RUN_STATES = ("finished", "cancelled", "rejected")
UPLOAD_CHUNK = 256 * 1024


class RunRejected(Exception):
    """The API refused the upload (the message says why; it never holds line content)."""


class BulkClient:
    """``POST /v1/batches`` and ``GET /v1/batches/{id}`` with one API key."""

    def __init__(self, api_url: str, api_key: str, *, timeout: float = 300.0) -> None:
        self.http = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def submit(self, file: Path, *, all_or_nothing: bool = False) -> dict[str, Any]:
        """Stream ``file`` to the API; the accepted run."""

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    yield chunk

        response = self.http.post(
            "/v1/batches",
            params={"mode": "all-or-nothing" if all_or_nothing else "partial"},
            content=chunks(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        if response.status_code != 202:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            lines = [f"{e['field']}: {e['message']}" for e in problem.get("errors", [])[:20]]
            detail = problem.get("detail") or response.reason_phrase
            raise RunRejected("\n".join([f"{response.status_code} {detail}", *lines]))
        run: dict[str, Any] = response.json()
        return run

    def status(self, run_id: str) -> dict[str, Any]:
        """The run as the API reports it now."""
        response = self.http.get(f"/v1/batches/{run_id}")
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        return run

    def follow(self, run: dict[str, Any], console: Console, *, poll_seconds: float = 1.0) -> dict[str, Any]:
        """Show a progress bar of final documents until the run ends; the final run."""
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"batch {run['id'][:8]}", total=run["accepted"], states="")
            while run["status"] not in FINAL_RUN_STATES:
                time.sleep(poll_seconds)
                run = self.status(run["id"])
                counts = run["documents"]
                states = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
                progress.update(task, completed=counts["delivered"] + counts["failed"], states=states)
        console.print(
            f"batch {run['id']}: {run['status']}, "
            + ", ".join(f"{k} {v}" for k, v in run["documents"].items() if v)
        )
        return run

    def __enter__(self) -> BulkClient:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.http.close()
