"""The ``postroom`` command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console

from postroom.settings import PROJECT_ROOT, get_settings

console = Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    sys.exit(2)


def _settings_or_exit() -> Any:
    try:
        return get_settings()
    except ValidationError as error:
        # Values are left out: they may be secrets (API keys, passwords in URLs).
        lines = [
            f"  POSTROOM_{'.'.join(str(part) for part in e['loc']).upper() or 'SETTINGS'}: {e['msg']}"
            for e in error.errors(include_input=False)
        ]
        _fail("invalid configuration:\n" + "\n".join(lines))


def _channels_or_exit(settings: Any) -> None:
    """Build the output channels once, so a channel misconfiguration (DKIM, e-letter, print target)
    stops the process at start instead of failing every delivery."""
    from postroom.runtime import Runtime

    try:
        Runtime(settings).channels  # noqa: B018 - building them is the check
    except ValueError as error:
        _fail(f"invalid channel configuration: {error}")


@click.group()
@click.version_option(package_name="postroom")
def main() -> None:
    """postroom: render documents and deliver them to print, e-mail, e-letter and archive."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes")
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API."""
    import uvicorn

    from postroom.log import configure_logging

    settings = _settings_or_exit()
    if not settings.redis_url:
        _fail("POSTROOM_REDIS_URL is not set; the API enqueues into Redis (or run 'postroom demo')")
    if not settings.api_keys:
        _fail("POSTROOM_API_KEYS is not set; without keys every request would be refused")
    _channels_or_exit(settings)
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "postroom.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        timeout_graceful_shutdown=20,
    )


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def worker(processes: int, threads: int) -> None:
    """Run Dramatiq workers for every postroom queue."""
    from postroom.jobs.broker import QUEUES

    settings = _settings_or_exit()
    if not settings.redis_url:
        _fail("POSTROOM_REDIS_URL is not set; workers consume from Redis (or run 'postroom demo')")
    _channels_or_exit(settings)
    if settings.worker_metrics_port:
        # Dramatiq's Prometheus middleware reads these when the worker module loads; every worker
        # process writes its samples into the directory, emptied here so no dead process counts.
        metrics_dir = settings.var_dir / "worker-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ.update(
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            dramatiq_prom_db=str(metrics_dir),
            dramatiq_prom_host=settings.worker_metrics_host,
            dramatiq_prom_port=str(settings.worker_metrics_port),
        )
    args = [
        sys.executable,
        "-m",
        "dramatiq",
        "postroom.jobs.worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *QUEUES,
    ]
    os.execv(sys.executable, args)  # noqa: S606 - replaces this process with Dramatiq's supervisor


@main.command()
def scheduler() -> None:
    """Send the periodic maintenance jobs: print cut-offs and acknowledgements, purge sweeps."""
    import signal
    import threading

    from postroom.jobs import scheduler as clock
    from postroom.log import configure_logging

    settings = _settings_or_exit()
    if not settings.redis_url:
        _fail("POSTROOM_REDIS_URL is not set; the scheduler enqueues into Redis")
    configure_logging(settings.log_level, json=settings.log_json)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    clock.run(clock.schedule(settings), stop)


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    from postroom.core.migrate import upgrade

    settings = _settings_or_exit()
    upgrade(settings.database_url)
    console.print("database migrated")


@main.command()
@click.argument("document_type")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--engine", default=None, help="engine to use when the template exists for several")
@click.option(
    "--variant", default="email", show_default=True, type=click.Choice(["print", "email", "archive"])
)
def render(document_type: str, data: Path, output: Path, engine: str | None, variant: str) -> None:
    """Render DATA (a POST /v1/documents body) as DOCUMENT_TYPE into a PDF, without delivering it."""
    from postroom.documents.catalogue import UnknownDocumentType
    from postroom.documents.catalogue import document_type as lookup
    from postroom.renderer.engine import TemplateError
    from postroom.renderer.service import Renderer

    settings = _settings_or_exit()
    body = json.loads(data.read_text(encoding="utf-8"))
    if body.get("type", document_type) != document_type:
        _fail(f"{data} is a {body['type']!r} request, not {document_type!r}")
    try:
        doc_type = lookup(document_type)
        request = doc_type.parse({**body, "type": document_type})
        renderer = Renderer.for_folder(settings.templates_dir)
        timestamp = datetime.combine(request.data.issue_date, time(12), tzinfo=UTC)
        rendering = renderer.render(doc_type, request, [variant], timestamp=timestamp, engine=engine)  # type: ignore[list-item]
    except UnknownDocumentType as error:
        _fail(str(error))
    except ValidationError as error:
        _fail(f"{data} is not a valid {document_type} request:\n{error}")
    except TemplateError as error:
        _fail(error.detail)
    pdf = next(iter(rendering.pdfs.values()))
    output.write_bytes(pdf.data)
    digest = hashlib.sha256(pdf.data).hexdigest()
    console.print(f"wrote {output} ({pdf.pages} page(s), {len(pdf.data)} bytes, sha256 {digest[:16]}…)")


@main.command()
@click.option(
    "--examples",
    default=PROJECT_ROOT / "examples",
    show_default=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
def demo(examples: Path) -> None:
    """Start the real topology on embedded defaults, submit the examples, summarise, stop."""
    from postroom.embedded.demo import run_demo

    _settings_or_exit()
    # Paths and notes are long: never wrap or truncate them, whatever the terminal's width.
    sys.exit(run_demo(examples, Console(soft_wrap=True, highlight=False)))


@main.group()
def batch() -> None:
    """Bulk runs through a running hub's API."""


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--api-url", envvar="POSTROOM_API_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--api-key", envvar="POSTROOM_API_KEY", required=True, help="a key with batches:write")
@click.option("--all-or-nothing", is_flag=True, help="queue nothing when a line is rejected")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the run until it finishes")
def batch_submit(file: Path, api_url: str, api_key: str, all_or_nothing: bool, wait: bool) -> None:
    """Upload FILE (NDJSON, one document request per line) and show the run's progress.

    Exits 0 when every line was accepted and every document delivered, 1 otherwise.
    """
    from postroom.bulk_client import BulkClient, RunRejected

    with BulkClient(api_url, api_key) as client:
        try:
            run = client.submit(file, all_or_nothing=all_or_nothing)
        except RunRejected as error:
            _fail(str(error))
        console.print(f"batch {run['id']}: {run['accepted']} line(s) accepted, {run['rejected']} rejected")
        for item in run["rejected_lines"][:20]:
            reasons = "; ".join(f"{e['field']}: {e['message']}" for e in item["errors"])
            console.print(f"  line {item['line']}: {reasons}")
        if run["rejected"] > 20:
            console.print(f"  … and {run['rejected'] - 20} more (GET /v1/batches/{run['id']})")
        if wait:
            run = client.follow(run, console)
    complete = run["rejected"] == 0 and run["documents"]["delivered"] == run["accepted"]
    sys.exit(0 if complete else 1)


@main.group()
def dlq() -> None:
    """Dead letters: messages given up on after their retries or maximum age."""


def _dead_letter_broker() -> Any:
    settings = _settings_or_exit()
    if not settings.redis_url:
        _fail("POSTROOM_REDIS_URL is not set; dead letters live in Redis")
    from postroom.jobs import actors  # installs the Redis broker

    return actors.broker


@dlq.command("list")
@click.option("--queue", "queues", multiple=True, help="only these queues (repeatable)")
def dlq_list(queues: tuple[str, ...]) -> None:
    """List dead letters, oldest first, one a line (tab-separated): queue, message id, actor,
    arguments (ids), retries, dead since (UTC)."""
    from postroom.jobs.broker import QUEUES
    from postroom.jobs.dead_letters import dead_letters

    broker = _dead_letter_broker()
    letters = dead_letters(broker.client, queues or QUEUES)
    for letter in letters:
        arguments = ",".join(str(arg) for arg in letter.args)
        click.echo(
            f"{letter.queue}\t{letter.message_id}\t{letter.actor}\t{arguments}\t{letter.retries}\t"
            f"{letter.dead_since:%Y-%m-%dT%H:%M:%SZ}"
        )
    console.print(f"{len(letters)} dead letter(s)")


@dlq.command("requeue")
@click.argument("message_ids", nargs=-1)
@click.option("--queue", "queues", multiple=True, help="only these queues (repeatable)")
@click.option("--all", "everything", is_flag=True, help="every dead letter (of --queue, if given)")
def dlq_requeue(message_ids: tuple[str, ...], queues: tuple[str, ...], everything: bool) -> None:
    """Send dead letters again with fresh retries: the MESSAGE_IDS given, or --all."""
    from postroom.jobs.broker import QUEUES
    from postroom.jobs.dead_letters import dead_letters, requeue

    if not message_ids and not everything:
        _fail("name the message ids to requeue, or pass --all")
    broker = _dead_letter_broker()
    letters = [
        letter
        for letter in dead_letters(broker.client, queues or QUEUES)
        if everything or letter.message_id in message_ids
    ]
    missing = set(message_ids) - {letter.message_id for letter in letters}
    if missing:
        _fail(f"no dead letter {', '.join(sorted(missing))}")
    console.print(f"{requeue(broker, broker.client, letters)} dead letter(s) sent again")


@main.group()
def audit() -> None:
    """The archive's hash-chained event log."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the event chain from its first entry and check every link and the anchors written
    into the archive; exit 1 naming the first broken entry."""
    from postroom.core.event_chain import verify
    from postroom.jobs.chain_anchor import archived_anchors
    from postroom.runtime import Runtime

    rt = Runtime(_settings_or_exit())
    anchors = archived_anchors(rt.archive)
    with rt.db.session() as session:
        report = verify(session, anchors)
    if report.broken is not None:
        console.print(f"[red]event chain broken at entry {report.broken.seq}:[/red] {report.broken.reason}")
        sys.exit(1)
    console.print(
        f"event chain intact: {report.entries} entries, head {report.head_seq} "
        f"({report.head_hash[:16]}…), {len(anchors)} archived anchor(s) match"
    )


@main.group()
def archive() -> None:
    """The archive: retention and the event chain's anchors."""


@archive.command("retention")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first day")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="last day")
def archive_retention(start: datetime, end: datetime) -> None:
    """List archived documents whose retention ends between --from and --to (tab-separated:
    retain-until, key, type, number, legal hold)."""
    from postroom.core.archive_index import expiring
    from postroom.runtime import Runtime

    rt = Runtime(_settings_or_exit())
    with rt.db.session() as session:
        entries = expiring(session, start.date(), end.date())
        for entry in entries:
            hold = "legal-hold" if entry.legal_hold else ""
            click.echo(
                f"{entry.retain_until:%Y-%m-%d}\t{entry.archive_key}\t{entry.document_type}\t"
                f"{entry.number}\t{hold}"
            )
    console.print(f"{len(entries)} document(s), {sum(e.legal_hold for e in entries)} under legal hold")


@archive.command("anchor")
def archive_anchor() -> None:
    """Write the event chain's head into the archive now (the scheduler does it daily)."""
    from postroom.jobs.chain_anchor import anchor_event_chain
    from postroom.runtime import Runtime

    seq = anchor_event_chain(Runtime(_settings_or_exit()), datetime.now(UTC).date())
    console.print(f"anchored entry {seq}" if seq is not None else "nothing new to anchor")


@archive.command("purge-expired")
@click.option("--yes", is_flag=True, help="delete; without it, only list what would be deleted")
@click.option("--actor", default=None, help="who runs it, for the event chain (default: the login name)")
def archive_purge_expired(yes: bool, actor: str | None) -> None:
    """Delete archived documents whose retention has ended and that are not under legal hold;
    each deletion is chained into the event log with the actor."""
    import getpass

    from postroom.jobs.archive_retention import purge_expired
    from postroom.runtime import Runtime

    who = f"cli:{actor or getpass.getuser()}"
    outcome = purge_expired(Runtime(_settings_or_exit()), datetime.now(UTC), who, dry_run=not yes)
    for key in outcome.deleted:
        click.echo(f"{'deleted' if yes else 'would delete'}\t{key}")
    for key in outcome.held:
        click.echo(f"legal hold\t{key}")
    verb = "deleted" if yes else "due for deletion (pass --yes to delete)"
    console.print(f"{len(outcome.deleted)} document(s) {verb}, {len(outcome.held)} kept under legal hold")
