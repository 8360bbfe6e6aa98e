"""``postroom demo``: the real topology on embedded defaults, fed with the example requests."""

from __future__ import annotations

import json
import os
import secrets
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from postroom.core.migrate import upgrade
from postroom.documents.catalogue import CATALOGUE
from postroom.embedded.eletter_provider import ELetterProvider
from postroom.embedded.letter_shop import LetterShopSimulator
from postroom.embedded.redis import RedisProcess
from postroom.embedded.smtp_sink import SmtpSink, eml_name
from postroom.embedded.topology import Topology
from postroom.settings import Settings

FINAL = {"delivered", "failed"}


@dataclass
class Submitted:
    """One example on its way through the hub."""

    example: str
    body: dict[str, Any]
    skipped_channels: list[str]
    document_id: str = ""
    started: float = 0.0
    finished: float | None = None
    view: dict[str, Any] | None = None


def _prepare(examples: Path, available_channels: set[str]) -> tuple[list[Submitted], list[str]]:
    submitted, notes = [], []
    for path in sorted(examples.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("type") not in CATALOGUE:
            notes.append(f"{path.name}: document type {body.get('type')!r} is not in the catalogue yet")
            continue
        skipped = [channel for channel in body["channels"] if channel not in available_channels]
        body["channels"] = [channel for channel in body["channels"] if channel in available_channels]
        if skipped:
            notes.append(
                f"{path.name}: channel(s) {', '.join(skipped)} not available yet, sent to the others"
            )
        submitted.append(Submitted(example=path.name, body=body, skipped_channels=skipped))
    return submitted, notes


def _landing(delivery: dict[str, Any], outbox: Path) -> str:
    ref = delivery.get("external_ref") or ""
    if delivery["channel"] == "archive" and ref.startswith("file://"):
        return os.path.relpath(unquote(urlsplit(ref).path))
    if delivery["channel"] == "email" and ref:
        return os.path.relpath(outbox / eml_name(ref))
    if delivery["channel"] == "print" and ref:
        return f"{ref} (print file taken by the letter shop)"
    if delivery["channel"] == "eletter" and ref:
        return f"letter {ref} at the e-letter provider"
    return ref


def run_demo(examples: Path, console: Console, timeout: float = 180.0) -> int:
    """Start everything, submit the examples, wait, print a summary, stop; return the exit code."""
    settings = Settings()
    console.width = max(console.width, 132)  # the summary's paths are long; a pipe reports 80
    env = dict(os.environ, POSTROOM_VAR_DIR=str(settings.var_dir), POSTROOM_LOG_JSON="true")
    outbox = settings.var_dir / "outbox"
    api_key = secrets.token_urlsafe(24)
    env["POSTROOM_API_KEYS"] = json.dumps(
        [{"id": "demo", "secret": api_key, "scopes": ["documents:write", "documents:read"]}]
    )
    began = time.monotonic()
    with ExitStack() as stack:
        if not settings.redis_url:
            redis = stack.enter_context(RedisProcess())
            env["POSTROOM_REDIS_URL"] = redis.url
            console.print(f"redis-server      private, {redis.url}")
        if "POSTROOM_SMTP_URL" not in os.environ:
            sink = stack.enter_context(SmtpSink(outbox))
            env["POSTROOM_SMTP_URL"] = sink.url
            console.print(f"SMTP sink         {sink.url} → {os.path.relpath(outbox)}/")
        upgrade(settings.database_url)
        console.print(f"database          {settings.database_url} (migrated)")
        channels = {"archive", "email"}
        if urlsplit(settings.print_target_url).scheme == "file":
            hot_folder = Path(unquote(urlsplit(settings.print_target_url).path))
            stack.enter_context(LetterShopSimulator(hot_folder))
            env.setdefault("POSTROOM_PRINT_CUTOFF_INTERVAL_SECONDS", "3")
            env.setdefault("POSTROOM_PRINT_ACK_POLL_SECONDS", "1")
            channels.add("print")
            console.print(f"letter shop       simulated on the hot folder {os.path.relpath(hot_folder)}/")
        provider = None
        if not settings.eletter_url:
            provider = stack.enter_context(ELetterProvider(auto_advance=0.5))
            env.update(provider.hub_environment())
            console.print(f"e-letter provider simulated, {provider.url}")
        channels.add("eletter")
        topology = Topology(env, settings.var_dir / "logs")
        if provider is not None:
            provider.webhook_url = f"{topology.api_url}/v1/webhooks/eletter/pingen"
        stack.enter_context(topology)
        console.print(
            f"API               {topology.api_url} (+ 2 worker processes, the scheduler), logs in var/logs/"
        )

        submitted, notes = _prepare(examples, channels)
        with httpx.Client(
            base_url=topology.api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as api:
            for item in submitted:
                item.started = time.monotonic()
                response = api.post(
                    "/v1/documents", json=item.body, headers={"Idempotency-Key": secrets.token_hex(16)}
                )
                if response.status_code != 202:
                    console.print(f"[red]{item.example}: {response.status_code} {response.text}[/red]")
                    item.finished = item.started
                    continue
                item.document_id = response.json()["id"]
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(i.finished is None for i in submitted):
                for item in (i for i in submitted if i.finished is None):
                    item.view = api.get(f"/v1/documents/{item.document_id}").json()
                    if item.view["status"] in FINAL:
                        item.finished = time.monotonic()
                time.sleep(0.1)
    elapsed = time.monotonic() - began
    return _summary(console, submitted, notes, outbox, elapsed)


def _summary(
    console: Console, submitted: list[Submitted], notes: list[str], outbox: Path, elapsed: float
) -> int:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("example", "document", "status", "seconds"):
        table.add_column(column, no_wrap=True)
    files: list[str] = []
    delivered = 0
    for item in submitted:
        view = item.view or {}
        status = view.get("status", "not accepted")
        delivered += status == "delivered"
        seconds = f"{item.finished - item.started:.2f}" if item.finished is not None else "timeout"
        table.add_row(item.example, f"{view.get('type', '')} {view.get('number', '')}", status, seconds)
        files.extend(
            f"  {d['channel']:<8} {d['status']:<10} {_landing(d, outbox)}" for d in view.get("deliveries", [])
        )
    console.print()
    console.print(table)
    console.print("\nwhere each file landed:")
    for line in files:
        console.print(line)
    for note in notes:
        console.print(f"note: {note}")
    console.print(
        f"\n{delivered} of {len(submitted)} documents delivered in {elapsed:.1f} s (start and stop included)."
    )
    return 0 if submitted and delivered == len(submitted) else 1
