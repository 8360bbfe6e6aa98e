"""One document end to end: real HTTP into ``postroom serve``, Redis, a ``postroom worker`` process,
PostgreSQL, the S3 endpoint and the SMTP server."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import redis
from pypdf import PdfReader

from postroom.embedded.eletter_provider import ELetterProvider
from postroom.embedded.letter_shop import LetterShopSimulator
from postroom.embedded.ports import free_port
from postroom.embedded.postgres import PostgresProcess
from postroom.embedded.smtp_sink import SmtpSink
from postroom.embedded.topology import Topology
from postroom.tracing import TraceParent
from postroom.webhooks import verify
from tests.conftest import (
    ARCHIVE_BUCKET,
    BULK_KEY,
    CORE_KEY,
    READER_KEY,
    REFUSED_ADDRESS,
    WEBHOOK_SECRET,
    WRITER_KEY,
    example,
)
from tests.core_orders import camt053, order_body
from tests.services import S3Server

pytestmark = pytest.mark.e2e

ELETTER_TIMEOUT = 2.0
CHANNELS = ("email", "print", "eletter", "archive")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def provider() -> Iterator[ELetterProvider]:
    """The e-letter provider; its letters move on by themselves and report by webhook."""
    with ELetterProvider(auto_advance=0.3, webhook_backoff=0.5) as server:
        yield server


@pytest.fixture(scope="module")
def letter_shop(hub_env: dict[str, str]) -> LetterShopSimulator:
    """The letter shop on the hub's hot folder; tests let it take batches when they want."""
    return LetterShopSimulator(Path(hub_env["POSTROOM_VAR_DIR"]) / "print")


@pytest.fixture(scope="module")
def topology(hub_env: dict[str, str], logs: Path, provider: ELetterProvider) -> Iterator[Topology]:
    env = {
        **os.environ,
        **provider.hub_environment(),
        "POSTROOM_ELETTER_TIMEOUT_SECONDS": str(ELETTER_TIMEOUT),
        # A killed worker's messages come back within seconds, not the production minute.
        "POSTROOM_WORKER_HEARTBEAT_TIMEOUT_SECONDS": "5",
        "POSTROOM_QUEUE_MAINTENANCE_CHANCE": "100000",
        "POSTROOM_WORKER_METRICS_PORT": str(free_port()),
    }
    hub = Topology(env, logs, worker_processes=2, worker_threads=2)
    provider.webhook_url = f"{hub.api_url}/v1/webhooks/eletter/pingen"
    with hub:
        yield hub


@pytest.fixture(scope="module")
def api(topology: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=topology.api_url, timeout=30) as client:
        yield client


def submit(api: httpx.Client, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {WRITER_KEY}", "Idempotency-Key": key or str(uuid.uuid4())}
    return api.post("/v1/documents", json=body, headers=headers)


BULK_HEADERS = {"Authorization": f"Bearer {BULK_KEY}", "Content-Type": "application/x-ndjson"}


def invoice_lines(count: int, prefix: str, channels: list[str] | None = None) -> list[str]:
    """``count`` example invoices as NDJSON lines, numbered ``<prefix>-<run>-<n>`` from 1."""
    run = uuid.uuid4().hex[:8]
    lines = []
    for index in range(1, count + 1):
        body = copy.deepcopy(example("invoice"))
        body["data"]["number"] = f"{prefix}-{run}-{index:03d}"
        if channels is not None:
            body["channels"] = channels
        lines.append(json.dumps(body))
    return lines


def wait_final(
    api: httpx.Client, document_id: str, timeout: float = 60, letter_shop: LetterShopSimulator | None = None
) -> dict[str, Any]:
    """The document once it and every one of its deliveries reached a final state (the letter shop,
    when given, takes the print batches that come up meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if letter_shop is not None:
            letter_shop.take_waiting()
        view: dict[str, Any] = api.get(
            f"/v1/documents/{document_id}", headers={"Authorization": f"Bearer {READER_KEY}"}
        ).json()
        deliveries_final = all(d["status"] in ("confirmed", "failed") for d in view["deliveries"])
        if view["status"] in ("delivered", "failed") and deliveries_final:
            return view
        time.sleep(0.1)
    raise AssertionError(f"document {document_id} not final after {timeout} s: {view}")


def messages_for(sink: SmtpSink, document_id: str) -> list[Any]:
    found = []
    for path in sink.messages():
        message = message_from_bytes(path.read_bytes(), policy=default)
        if message["X-Postroom-Document"] == document_id:
            found.append(message)
    return found


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_invoice_reaches_archive_and_email(
    api: httpx.Client, smtp_sink: SmtpSink, s3_server: S3Server
) -> None:
    body, key = example("invoice"), f"e2e-{uuid.uuid4()}"
    accepted = submit(api, body, key)
    assert accepted.status_code == 202, accepted.text
    document_id = accepted.json()["id"]

    view = wait_final(api, document_id)
    assert view["status"] == "delivered", (view["error"], view["deliveries"])
    assert {d["channel"]: d["status"] for d in view["deliveries"]} == {
        "archive": "confirmed",
        "email": "confirmed",
    }
    assert view["template"]["id"] == "invoice"
    assert view["template"]["engine"] == "typst"
    variants = {v["variant"]: v for v in view["variants"]}
    assert set(variants) == {"archive", "email"}

    reader = {"Authorization": f"Bearer {READER_KEY}"}
    pdf = api.get(f"/v1/documents/{document_id}/pdf", headers=reader)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == variants["archive"]["sha256"]
    text = pdf_text(pdf.content)
    for expected in ("RE-2026-000123", "DE999999995", "14.458,50"):
        assert expected in text

    [message] = messages_for(smtp_sink, document_id)
    attachment = next(message.iter_attachments())
    assert hashlib.sha256(attachment.get_content()).hexdigest() == variants["email"]["sha256"]
    email_delivery = next(d for d in view["deliveries"] if d["channel"] == "email")
    assert message["Message-ID"] == email_delivery["external_ref"]

    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="eu-central-1")
    archive_ref = next(d for d in view["deliveries"] if d["channel"] == "archive")["external_ref"]
    head = s3.head_object(
        Bucket=ARCHIVE_BUCKET, Key=archive_ref.removeprefix(f"s3://{ARCHIVE_BUCKET}/"), ChecksumMode="ENABLED"
    )
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == variants["archive"]["sha256"]
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].year == 2035

    # The same key and body again: the same document, no second document, no second e-mail.
    again = submit(api, body, key)
    assert again.status_code == 202
    assert again.json()["id"] == document_id
    assert again.json()["status"] == "delivered"
    time.sleep(1)
    assert len(messages_for(smtp_sink, document_id)) == 1


def test_the_callers_trace_and_the_worker_metrics_follow_a_document(
    api: httpx.Client, topology: Topology, logs: Path
) -> None:
    """A W3C ``traceparent`` sent with the request is answered, carried into the jobs and logged
    with the document's id by the worker; the worker's metrics count the render and the hand-off."""
    trace_id = uuid.uuid4().hex
    body = {**example("invoice"), "channels": ["archive"]}
    headers = {
        "Authorization": f"Bearer {WRITER_KEY}",
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
    }
    response = api.post("/v1/documents", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["traceparent"].split("-")[1] == trace_id
    document_id = response.json()["id"]
    assert wait_final(api, document_id)["status"] == "delivered"

    deadline, events = time.monotonic() + 10, set[str]()
    while {"document rendered", "delivery handed off"} - events and time.monotonic() < deadline:
        time.sleep(0.2)
        log_lines = (logs / "worker.log").read_text(encoding="utf-8").splitlines()
        traced = [json.loads(line) for line in log_lines if trace_id in line]
        events = {line["event"] for line in traced if line.get("document_id") == document_id}
    assert {"document rendered", "delivery handed off"} <= events
    untraced = api.post("/v1/documents", json=body, headers={"Authorization": f"Bearer {WRITER_KEY}"})
    assert TraceParent.parse(untraced.headers["traceparent"]) is not None  # a trace of its own

    port = topology.env["POSTROOM_WORKER_METRICS_PORT"]
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['postroom_render_seconds_count{engine="typst",template="invoice"}'] >= 1
    assert samples['postroom_deliveries_total{channel="archive",outcome="confirmed"}'] >= 1
    assert any(name.startswith("dramatiq_messages_total{") for name in samples)


def test_reference_invoice_to_archive(api: httpx.Client) -> None:
    body = example("reference_invoice")
    body["channels"] = ["archive"]  # the print channel is not built yet
    document_id = submit(api, body).json()["id"]
    view = wait_final(api, document_id)
    assert view["status"] == "delivered", (view["error"], view["deliveries"])
    [variant] = view["variants"]
    assert variant["pages"] == 2
    pdf = api.get(
        f"/v1/documents/{document_id}/pdf?variant=archive", headers={"Authorization": f"Bearer {READER_KEY}"}
    )
    text = pdf_text(pdf.content)
    assert "110.182,88" in text
    assert "04011000-12345-34" in text


def test_refused_recipient_gets_a_letter_instead(
    api: httpx.Client, smtp_sink: SmtpSink, letter_shop: LetterShopSimulator
) -> None:
    """SMTP 550 fails the e-mail delivery for good; the fallback channel, print, takes over."""
    body = copy.deepcopy(example("invoice"))
    body["recipient"]["email"] = REFUSED_ADDRESS
    response = submit(api, body)
    assert response.status_code == 202, response.text
    document_id = response.json()["id"]
    view = wait_final(api, document_id, letter_shop=letter_shop)
    assert view["status"] == "delivered", (view["error"], view["deliveries"])
    deliveries = {d["channel"]: d for d in view["deliveries"]}
    assert deliveries["email"]["status"] == "failed"
    assert deliveries["email"]["error"] == {
        "code": "delivery_rejected",
        "detail": "SMTP recipient refused 550",
    }
    assert deliveries["email"]["attempts"] == 1
    assert deliveries["print"]["status"] == "confirmed"
    assert deliveries["archive"]["status"] == "confirmed"
    assert messages_for(smtp_sink, document_id) == []


def wait_for_print_batch(hub_env: dict[str, str], document_id: str) -> tuple[str, dict[str, Any]]:
    """The stem and manifest of the print batch in the hot folder that holds ``document_id``."""
    out = Path(hub_env["POSTROOM_VAR_DIR"]) / "print" / "out"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in out.glob("*.manifest.json"):
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if any(row["document_id"] == document_id for row in manifest["rows"]):
                return path.name.removesuffix(".manifest.json"), manifest
        time.sleep(0.2)
    raise AssertionError(f"no print batch holds document {document_id}")


class CallbackReceiver:
    """An HTTP endpoint on loopback that records callbacks and answers with scripted status codes."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/postroom"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received


def test_callback_is_signed_and_retried_until_acknowledged(api: httpx.Client) -> None:
    receiver = CallbackReceiver(answers=[503])
    try:
        body = {**example("invoice"), "callback_url": receiver.url}
        document_id = submit(api, body).json()["id"]
        receiver.wait(2)
    finally:
        receiver.server.shutdown()
    (_, first_body), (headers, payload) = receiver.received[:2]
    assert first_body == payload  # the retry repeats the same event
    assert headers["Postroom-Event-Id"] == f"{document_id}:delivered"
    assert verify(WEBHOOK_SECRET, payload, headers["Postroom-Signature"])
    event = json.loads(payload)
    assert event["status"] == "delivered"
    assert {d["channel"]: d["status"] for d in event["deliveries"]} == {
        "archive": "confirmed",
        "email": "confirmed",
    }
    assert "recipient" not in event
    assert "Erika" not in payload.decode()
    view = wait_final(api, document_id)
    deadline = time.monotonic() + 10
    while view["callback_acknowledged_at"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
        view = wait_final(api, document_id)
    assert view["callback_acknowledged_at"] is not None


def test_print_letter_is_confirmed_by_the_acknowledgement_then_purged(
    api: httpx.Client,
    hub_env: dict[str, str],
    letter_shop: LetterShopSimulator,
    postgres: PostgresProcess,
    logs: Path,
) -> None:
    body = with_unique_recipient(example("invoice"))
    body["channels"] = ["print", "archive"]
    document_id = submit(api, body).json()["id"]
    hot_folder = Path(hub_env["POSTROOM_VAR_DIR"]) / "print"
    stem, manifest = wait_for_print_batch(hub_env, document_id)
    assert (hot_folder / "out" / f"{stem}.pdf").is_file()
    assert (hot_folder / "out" / f"{stem}.manifest.csv").is_file()
    view = api.get(f"/v1/documents/{document_id}", headers={"Authorization": f"Bearer {READER_KEY}"}).json()
    assert {d["channel"]: d["status"] for d in view["deliveries"]}["print"] == "sent"
    batch = next(batch for batch in letter_shop.take_waiting() if batch.stem == stem)
    assert batch.accepted
    assert batch.manifest == manifest
    view = wait_final(api, document_id)
    assert view["status"] == "delivered", (view["error"], view["deliveries"])
    print_delivery = next(d for d in view["deliveries"] if d["channel"] == "print")
    piece = next(row["piece"] for row in manifest["rows"] if row["document_id"] == document_id)
    assert print_delivery["external_ref"] == f"{stem}.pdf#piece={piece}"
    # The letter shop has the batch: its files and the acknowledgement go, and so does the personal data.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (hot_folder / "out" / f"{stem}.pdf").exists():
        time.sleep(0.2)
    assert not (hot_folder / "out" / f"{stem}.pdf").exists()
    assert not (hot_folder / "ack" / f"{stem}.ack.json").exists()
    wait_purged(hub_env, [document_id])
    assert traces(personal_data(body), hub_env, postgres, logs) == []


def test_every_channel_combination_is_confirmed_by_its_counterpart(
    api: httpx.Client,
    hub_env: dict[str, str],
    smtp_sink: SmtpSink,
    s3_server: S3Server,
    provider: ELetterProvider,
    letter_shop: LetterShopSimulator,
    postgres: PostgresProcess,
    logs: Path,
) -> None:
    """One document per combination of the four channels, each hand-off confirmed by the real
    counterpart; then the recipient's personal data is gone from everything the hub keeps."""
    body = with_unique_recipient(example("invoice"))
    combinations = [list(c) for n in range(1, 5) for c in itertools.combinations(CHANNELS, n)]
    # The first e-letter submit outlasts the hub's timeout; the provider creates the letter anyway.
    provider.fail_next("submit", status=None, delay=ELETTER_TIMEOUT + 1)
    documents: dict[str, list[str]] = {}
    for channels in combinations:
        request = {**copy.deepcopy(body), "channels": channels}
        request["data"]["number"] = f"RE-C-{uuid.uuid4().hex[:10]}"
        response = submit(api, request)
        assert response.status_code == 202, response.text
        documents[response.json()["id"]] = channels
    views = {document_id: wait_final(api, document_id, 90, letter_shop) for document_id in documents}

    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="eu-central-1")
    eletter_attempts, archived = [], {}
    for document_id, view in views.items():
        assert view["status"] == "delivered", (documents[document_id], view["error"], view["deliveries"])
        deliveries = {d["channel"]: d for d in view["deliveries"]}
        assert sorted(deliveries) == sorted(documents[document_id])
        assert all(d["status"] == "confirmed" for d in deliveries.values())
        sha256 = {v["variant"]: v["sha256"] for v in view["variants"]}
        archived_pdf = None
        if "archive" in deliveries:
            key = deliveries["archive"]["external_ref"].removeprefix(f"s3://{ARCHIVE_BUCKET}/")
            head = s3.head_object(Bucket=ARCHIVE_BUCKET, Key=key)
            assert head["ObjectLockMode"] == "COMPLIANCE"
            assert head["ObjectLockRetainUntilDate"].year == 2035
            archived_pdf = s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()
            assert hashlib.sha256(archived_pdf).hexdigest() == sha256["archive"]
            archived[document_id] = sha256["archive"]
        if "email" in deliveries:
            [message] = messages_for(smtp_sink, document_id)
            mailed = next(message.iter_attachments()).get_content()
            assert hashlib.sha256(mailed).hexdigest() == sha256["email"]
            if archived_pdf is not None:
                assert mailed == archived_pdf  # what the recipient got is what the auditor gets
        else:
            assert messages_for(smtp_sink, document_id) == []
        if "print" in deliveries:
            batch = letter_shop.batch_with(document_id)
            assert batch is not None
            assert batch.accepted
            assert batch.pdf_sha256 == batch.manifest["sha256"]
        if "eletter" in deliveries:
            delivery = deliveries["eletter"]
            [letter] = provider.letters_for(delivery["id"])
            assert letter.letter_id == delivery["external_ref"]
            assert letter.sha256 == sha256[delivery["variant"]]
            eletter_attempts.append(delivery["attempts"])
    assert max(eletter_attempts) >= 2  # the submit that timed out was retried: still one letter

    wait_purged(hub_env, list(documents))
    assert traces(personal_data(body), hub_env, postgres, logs) == []
    reader = {"Authorization": f"Bearer {READER_KEY}"}
    for document_id, archived_sha256 in archived.items():  # the archive still returns the PDF
        pdf = api.get(f"/v1/documents/{document_id}/pdf?variant=archive", headers=reader)
        assert pdf.status_code == 200
        assert hashlib.sha256(pdf.content).hexdigest() == archived_sha256


def with_unique_recipient(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` for a recipient whose name, street, e-mail address and IBAN occur nowhere else."""
    from schwifty import IBAN

    token = uuid.uuid4().hex[:8]
    body = copy.deepcopy(body)
    body["recipient"].update(
        name=f"Probe {token}",
        street=f"Probeweg {int(token[:4], 16)}",
        email=f"probe-{token}@example.org",
        iban=IBAN.generate("DE", bank_code="37050198", account_code=str(int(token, 16))).compact,
    )
    return body


def personal_data(body: dict[str, Any]) -> list[str]:
    """The recipient's name, street, e-mail address and IBAN (compact and in groups of four)."""
    recipient = body["recipient"]
    iban = recipient["iban"]
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return [recipient["name"], recipient["street"], recipient["email"], iban, grouped]


def wait_purged(hub_env: dict[str, str], document_ids: list[str], timeout: float = 30) -> None:
    """Wait until the hub purged the personal data of every document; amounts stay."""
    from sqlalchemy import text

    from postroom.core.db import database

    db = database(hub_env["POSTROOM_DATABASE_URL"])
    query = text("SELECT id, payload IS NULL AS empty, purged_at, amount FROM documents WHERE id = ANY(:ids)")
    deadline = time.monotonic() + timeout
    while True:
        with db.session() as session:
            rows = session.execute(query, {"ids": [uuid.UUID(i) for i in document_ids]}).all()
        if all(row.purged_at is not None for row in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [row.id for row in rows if row.purged_at is None] == []
    assert all(row.empty and row.amount is not None for row in rows)


def traces(secrets: list[str], hub_env: dict[str, str], postgres: PostgresProcess, logs: Path) -> list[str]:
    """Where any of ``secrets`` still shows: the PostgreSQL dump, every Redis key and value, and
    every file (text of PDFs included) under the hub's working directory and its logs."""
    needles = [secret.encode() for secret in secrets]
    found = [f"database dump: {secret}" for secret in secrets if secret.encode() in postgres.dump()]
    client = redis.Redis.from_url(hub_env["POSTROOM_REDIS_URL"])
    for key in client.scan_iter():
        content = key + redis_value(client, key)
        found += [f"redis {key!r}: {needle!r}" for needle in needles if needle in content]
    for root in (Path(hub_env["POSTROOM_VAR_DIR"]), logs):
        for path in (p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if data.startswith(b"%PDF"):
                data += pdf_text(data).encode()
            found += [f"{path}: {needle!r}" for needle in needles if needle in data]
    return found


def redis_value(client: Any, key: bytes) -> bytes:
    """Everything stored under ``key``, whatever its type, as one byte string (``DUMP`` would
    compress longer strings, hiding what they hold)."""
    kind = client.type(key)
    members: list[bytes]
    if kind == b"hash":
        members = [k + b"=" + v for k, v in client.hgetall(key).items()]
    elif kind == b"list":
        members = client.lrange(key, 0, -1)
    elif kind == b"set":
        members = list(client.smembers(key))
    elif kind == b"zset":
        members = client.zrange(key, 0, -1)
    elif kind == b"string":
        members = [client.get(key) or b""]
    else:
        members = [client.dump(key) or b""]
    return b"\n".join(members)


def test_a_bulk_run_reports_bad_lines_and_delivers_the_rest(
    api: httpx.Client, smtp_sink: SmtpSink, letter_shop: LetterShopSimulator
) -> None:
    """NDJSON streamed in: every good line becomes a delivered document, every bad one is
    reported by its line number and field, never by its content."""
    run = uuid.uuid4().hex[:8]
    lines = []
    for index in range(1, 25):
        body = copy.deepcopy(example("invoice"))
        body["data"]["number"] = f"RE-BULK-{run}-{index:03d}"
        if index % 4 == 0:
            body["channels"] = ["print", "archive"]
        lines.append(json.dumps(body))
    broken = copy.deepcopy(example("invoice"))
    broken["data"]["lines"][0]["unit_price"] = "12,50"  # a comma: not a decimal string
    lines[6] = json.dumps(broken)
    lines[11] = '{"type": "invoice", "recipient": '  # cut off
    lines[17] = json.dumps({**example("invoice"), "channels": ["fax"]})
    lines.insert(20, "")  # a blank line is skipped, not rejected
    headers = BULK_HEADERS

    def upload() -> Iterator[bytes]:  # streamed in pieces that split lines
        data = ("\n".join(lines) + "\n").encode()
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    response = api.post("/v1/batches", content=upload(), headers=headers)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert (batch["lines"], batch["accepted"], batch["rejected"]) == (25, 21, 3)
    assert [item["line"] for item in batch["rejected_lines"]] == [7, 12, 18]
    assert batch["rejected_lines"][0]["errors"][0]["field"] == "data.lines[0].unit_price"
    assert batch["rejected_lines"][2]["errors"][0]["field"] == "channels[0]"
    assert "12,50" not in response.text

    deadline = time.monotonic() + 120
    while batch["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.5)
        letter_shop.take_waiting()
        batch = api.get(f"/v1/batches/{batch['id']}", headers=headers).json()
    assert batch["status"] == "finished", batch
    assert batch["documents"]["delivered"] == 21
    assert batch["documents_per_second"] > 0
    mailed = [
        message_from_bytes(path.read_bytes(), policy=default)["Subject"] for path in smtp_sink.messages()
    ]
    # Invoices 4, 8, 16, 20 and 24 went to print (12 was cut off); the others by e-mail.
    assert sum(f"RE-BULK-{run}-" in (subject or "") for subject in mailed) == 16
    [print_batch] = [b for b in letter_shop.received if b.manifest["group"] == f"batch-{batch['id']}"]
    assert print_batch.manifest["pieces"] == 5  # the run's letters in one print batch of their own

    manifest = api.get(f"/v1/batches/{batch['id']}/manifest", headers=headers)
    assert manifest.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in manifest.text.splitlines()]
    assert [row["line"] for row in rows] == [n for n in range(1, 26) if n != 21]  # 21 was blank
    assert [row["line"] for row in rows if "rejected" in row] == [7, 12, 18]
    assert {row["status"] for row in rows if "status" in row} == {"delivered"}
    assert rows[3]["deliveries"]["print"]["external_ref"].startswith("postroom-")

    # Nothing failed: a retry reopens the run, finds nothing to do, and the run finishes again.
    retried = api.post(f"/v1/batches/{batch['id']}/retry-failed", headers=headers)
    assert retried.status_code == 202, retried.text
    batch = retried.json()
    assert batch["status"] == "running"
    batch = wait_finished(api, batch["id"], timeout=30)
    assert batch["status"] == "finished"
    assert batch["documents"]["delivered"] == 21


def test_a_finished_run_is_reported_to_its_callback(api: httpx.Client) -> None:
    receiver = CallbackReceiver(answers=[])
    lines, headers = invoice_lines(2, "RE-CB", ["archive"]), BULK_HEADERS
    try:
        response = api.post(
            "/v1/batches", params={"callback_url": receiver.url}, content="\n".join(lines), headers=headers
        )
        assert response.status_code == 202, response.text
        receiver.wait(1, timeout=60)
    finally:
        receiver.server.shutdown()
    [(received_headers, payload)] = receiver.received
    assert verify(WEBHOOK_SECRET, payload, received_headers["Postroom-Signature"])
    event = json.loads(payload)
    assert (event["event"], event["id"], event["accepted"]) == ("batch.finished", response.json()["id"], 2)
    assert event["documents"]["delivered"] == 2
    assert received_headers["Postroom-Event-Id"].startswith(f"{event['id']}:finished:")
    unsafe = api.post("/v1/batches", params={"callback_url": "ftp://x"}, content=lines[0], headers=headers)
    assert unsafe.status_code == 422
    assert unsafe.json()["errors"][0]["field"] == "callback_url"


def wait_finished(api: httpx.Client, batch_id: str, timeout: float) -> dict[str, Any]:
    """The run's view once it is finished (or the last one seen when ``timeout`` ran out)."""
    deadline = time.monotonic() + timeout
    batch: dict[str, Any] = api.get(f"/v1/batches/{batch_id}", headers=BULK_HEADERS).json()
    while batch["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(1)
        batch = api.get(f"/v1/batches/{batch_id}", headers=BULK_HEADERS).json()
    return batch


def manifest_rows(api: httpx.Client, batch_id: str) -> list[dict[str, Any]]:
    manifest = api.get(f"/v1/batches/{batch_id}/manifest", headers=BULK_HEADERS)
    return [json.loads(line) for line in manifest.text.splitlines()]


def test_a_run_of_2000_lines_delivers_1995_while_a_single_document_overtakes_it(
    api: httpx.Client, s3_server: S3Server
) -> None:
    """Five malformed lines among 2,000 are reported by number and the other 1,995 are archived;
    a document submitted meanwhile is delivered long before the run finishes, because bulk work
    has queues of its own and yields in the workers."""
    lines = invoice_lines(2000, "RE-BIG", ["archive"])
    lines[99] = lines[99].replace('"type": "invoice"', '"type": "fax"')  # line 100
    lines[499] = '{"type": "invoice", "recipient": '  # line 500: cut off
    lines[999] = "[1, 2, 3]"  # line 1000: not an object
    lines[1499] = lines[1499].replace('"channels": ["archive"]', '"channels": []')  # line 1500
    lines[1999] = lines[1999].replace('"tax_rate": "19"', '"tax_rate": "nineteen"')  # line 2000
    response = api.post("/v1/batches", content="\n".join(lines), headers=BULK_HEADERS)
    assert response.status_code == 202, response.text
    run = response.json()
    assert (run["lines"], run["accepted"], run["rejected"]) == (2000, 1995, 5)
    assert [item["line"] for item in run["rejected_lines"]] == [100, 500, 1000, 1500, 2000]

    deadline = time.monotonic() + 120
    while api.get(f"/v1/batches/{run['id']}", headers=BULK_HEADERS).json()["documents"]["delivered"] < 20:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    single = copy.deepcopy(example("invoice"))
    single["channels"] = ["archive"]
    view = wait_final(api, submit(api, single).json()["id"], timeout=30)
    assert view["status"] == "delivered"
    during = api.get(f"/v1/batches/{run['id']}", headers=BULK_HEADERS).json()
    assert during["status"] == "running"
    assert during["documents"]["delivered"] < 1000

    run = wait_finished(api, run["id"], timeout=400)
    assert run["status"] == "finished", run["documents"]
    assert run["documents"]["delivered"] == 1995
    rows = manifest_rows(api, run["id"])
    assert len(rows) == 2000
    assert [row["line"] for row in rows if "rejected" in row] == [100, 500, 1000, 1500, 2000]
    archived = [row["deliveries"]["archive"]["external_ref"] for row in rows if "document_id" in row]
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="eu-central-1")
    keys = {ref.removeprefix(f"s3://{ARCHIVE_BUCKET}/") for ref in archived}
    stored = {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ARCHIVE_BUCKET)
        for item in page.get("Contents", [])
    }
    assert len(keys) == 1995
    assert keys <= stored


def test_workers_stopped_or_killed_mid_run_neither_lose_nor_repeat_a_letter(
    api: httpx.Client, topology: Topology, smtp_sink: SmtpSink, s3_server: S3Server
) -> None:
    """While a run is sent by e-mail and archived, the worker is first stopped with SIGTERM (it
    finishes what it holds and exits cleanly), then one worker process is SIGKILLed (Dramatiq's
    supervisor stops the rest). Each time the worker is started again, as a service manager would;
    the dead process's messages return to the queue, and every document ends with exactly one
    mail at the SMTP server and one object version in the archive."""
    import psutil

    count = 90
    lines = invoice_lines(count, "RE-KILL", ["email", "archive"])
    run = api.post("/v1/batches", content="\n".join(lines), headers=BULK_HEADERS).json()

    def delivered() -> int:
        return int(api.get(f"/v1/batches/{run['id']}", headers=BULK_HEADERS).json()["documents"]["delivered"])

    def wait_for_more(more: int) -> None:
        target, deadline = delivered() + more, time.monotonic() + 120
        while delivered() < target:
            assert time.monotonic() < deadline
            time.sleep(0.1)

    wait_for_more(10)
    os.kill(topology.pid("worker"), signal.SIGTERM)
    assert topology.wait_exited("worker") == 0
    topology.restart("worker")
    wait_for_more(10)
    psutil.Process(topology.pid("worker")).children()[0].kill()
    assert topology.wait_exited("worker") != 0
    assert delivered() < count
    topology.restart("worker")

    run = wait_finished(api, run["id"], timeout=180)
    assert run["status"] == "finished", run["documents"]
    assert run["documents"]["delivered"] == count
    rows = manifest_rows(api, run["id"])
    documents = {row["document_id"] for row in rows}
    mailed = Counter(
        message_from_bytes(path.read_bytes(), policy=default)["X-Postroom-Document"]
        for path in smtp_sink.messages()
    )
    assert {document_id: mailed[document_id] for document_id in documents} == dict.fromkeys(documents, 1)
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="eu-central-1")
    for row in rows:
        key = row["deliveries"]["archive"]["external_ref"].removeprefix(f"s3://{ARCHIVE_BUCKET}/")
        versions = s3.list_object_versions(Bucket=ARCHIVE_BUCKET, Prefix=key)["Versions"]
        assert len(versions) == 1, key


def test_a_csv_run_goes_through_its_column_mapping(api: httpx.Client) -> None:
    invoice = example("invoice")
    mapping = {
        "type": {"value": "invoice"},
        "channels": {"value": ["archive"]},
        "recipient.name": "Kunde",
        "recipient.street": "Strasse",
        "recipient.postcode": "PLZ",
        "recipient.city": "Ort",
        "data.number": "Rechnungsnummer",
        "data.issue_date": "Datum",
        "data.due_date": "Faellig",
        "data.seller": {"value": invoice["data"]["seller"]},
        "data.lines[0].description": "Leistung",
        "data.lines[0].quantity": "Menge",
        "data.lines[0].unit_price": "Preis",
        "data.lines[0].tax_rate": {"value": "19"},
    }
    run = uuid.uuid4().hex[:8]
    csv_text = (
        "Rechnungsnummer,Kunde,Strasse,PLZ,Ort,Datum,Faellig,Leistung,Menge,Preis\n"
        f'RE-CSV-{run}-1,"Müller, Hans",Hauptstraße 1,50667,Köln,2026-11-20,2026-12-04,Courtage,1,11970.00\n'
        f"RE-CSV-{run}-2,Erika Beispiel,Ringstraße 2,50668,Köln,2026-11-20,2026-12-04,Courtage,1,12;50\n"
        f'RE-CSV-{run}-3,Jonas Probe,Weg 3,50669,Köln,2026-11-20,2026-12-04,"Courtage,\nzweizeilig",2,9.00\n'
    )
    headers = {"Authorization": f"Bearer {BULK_KEY}", "Content-Type": "text/csv; charset=utf-8"}
    response = api.post(
        "/v1/batches", params={"mapping": json.dumps(mapping)}, content=csv_text, headers=headers
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    assert (batch["accepted"], batch["rejected"]) == (2, 1)
    [rejected] = batch["rejected_lines"]
    assert rejected["line"] == 3
    assert rejected["errors"][0]["field"] == "data.lines[0].unit_price"
    batch = wait_finished(api, batch["id"], timeout=60)
    assert batch["documents"]["delivered"] == 2
    without = api.post("/v1/batches", content=csv_text, headers=headers)
    assert without.status_code == 422
    assert without.json()["errors"][0]["field"] == "mapping"


def test_an_all_or_nothing_run_with_a_bad_line_queues_nothing(api: httpx.Client) -> None:
    good = json.dumps(example("invoice"))
    headers = BULK_HEADERS
    response = api.post(
        "/v1/batches?mode=all-or-nothing", content=f"{good}\n[1, 2]\n{good}\n", headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "line 2: body", "message": "not a JSON object", "type": "json"}
    ]
    wrong_type = api.post("/v1/batches", content=good, headers={**headers, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415


def test_batch_submit_uploads_a_file_and_follows_the_run(api: httpx.Client, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from postroom.cli import main

    bodies = invoice_lines(3, "RE-CLI", ["archive"])
    file = tmp_path / "run.ndjson"
    file.write_text("\n".join([*bodies, '{"type": "invoice"}']) + "\n", encoding="utf-8")
    env = {"POSTROOM_API_URL": str(api.base_url), "POSTROOM_API_KEY": BULK_KEY}
    result = CliRunner().invoke(main, ["batch", "submit", str(file)], env=env)
    assert "3 line(s) accepted, 1 rejected" in result.output
    assert "line 4: recipient:" in result.output
    assert "finished" in result.output
    assert "delivered 3" in result.output
    assert result.exit_code == 1  # a line was rejected

    refused = CliRunner().invoke(main, ["batch", "submit", "--all-or-nothing", str(file)], env=env)
    assert refused.exit_code == 2
    assert "422" in refused.output
    assert "line 4: recipient" in refused.output


def test_logs_hold_no_personal_data(api: httpx.Client, logs: Path) -> None:
    """Runs last in this module: everything above went through these processes."""
    recipient = example("invoice")["recipient"]
    text = "\n".join(path.read_text(encoding="utf-8") for path in logs.glob("*.log"))
    assert "delivery handed off" in text  # the logs are there and were written by the workers
    for personal in (
        recipient["name"],
        recipient["street"],
        recipient["email"],
        "Mustermann",
        REFUSED_ADDRESS,
    ):
        assert personal not in text


CORE_HEADERS = {"Authorization": f"Bearer {CORE_KEY}"}


def wait_invoice(api: httpx.Client, invoice_id: str, status: str, timeout: float = 90) -> dict[str, Any]:
    """Poll an invoice until it reaches ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        invoice: dict[str, Any] = api.get(f"/v1/invoices/{invoice_id}", headers=CORE_HEADERS).json()
        if invoice["status"] == status or time.monotonic() > deadline:
            return invoice
        time.sleep(0.3)


def test_an_order_is_billed_paid_by_bank_statement_and_corrected_over_http(
    api: httpx.Client, smtp_sink: SmtpSink
) -> None:
    order = api.post("/v1/orders", json=order_body(), headers=CORE_HEADERS)
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "ready", order.json()["findings"]
    released = api.post(f"/v1/orders/{order.json()['id']}/release", headers=CORE_HEADERS)
    assert released.status_code == 200, released.text
    billed = {invoice["role"]: invoice for invoice in released.json()["invoices"]}
    assert set(billed) == {"seller", "buyer"}
    assert billed["seller"]["number"] != billed["buyer"]["number"]

    seller = wait_invoice(api, billed["seller"]["id"], "sent")
    buyer = wait_invoice(api, billed["buyer"]["id"], "sent")
    assert (seller["status"], buyer["status"]) == ("sent", "sent")
    assert seller["gross_total"] == buyer["gross_total"] == "14244.30"  # 11,970.00 + 19 % VAT
    for invoice in (seller, buyer):
        document = api.get(
            f"/v1/documents/{invoice['document_id']}", headers={"Authorization": f"Bearer {READER_KEY}"}
        )
        channels = {d["channel"]: d["status"] for d in document.json()["deliveries"]}
        assert channels == {"email": "confirmed", "archive": "confirmed"}
    mailed = [path.read_bytes() for path in smtp_sink.messages()]
    assert sum(seller["number"].encode() in mail for mail in mailed) == 1

    statement = camt053(
        (seller["number"], Decimal("14244.30")), (buyer["number"], Decimal("5000.00")), date.today()
    )
    headers = {**CORE_HEADERS, "Content-Type": "application/xml"}
    first = api.post("/v1/bank-statements", content=statement, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["booked"], first.json()["for_review"], first.json()["repeated"]) == (2, 0, False)
    again = api.post("/v1/bank-statements", content=statement, headers=headers)
    assert (again.json()["id"], again.json()["repeated"]) == (first.json()["id"], True)

    seller = api.get(f"/v1/invoices/{seller['id']}", headers=CORE_HEADERS).json()
    buyer = api.get(f"/v1/invoices/{buyer['id']}", headers=CORE_HEADERS).json()
    assert (seller["status"], seller["open_amount"], seller["paid_total"]) == ("paid", "0.00", "14244.30")
    assert (buyer["status"], buyer["open_amount"], buyer["paid_total"]) == (
        "partially_paid",
        "9244.30",
        "5000.00",
    )

    correction = {"lines": [{**released_line(), "unit_price": "11000.00"}]}
    cancelled = api.post(
        f"/v1/invoices/{buyer['id']}/cancel",
        json={"reason": "Courtage nachverhandelt", "correction": correction},
        headers=CORE_HEADERS,
    )
    assert cancelled.status_code == 200, cancelled.text
    result = cancelled.json()
    assert result["cancelled"]["status"] == "cancelled"
    assert result["cancelled"]["number"] == buyer["number"]
    assert result["cancelled"]["gross_total"] == "14244.30"  # the original never changes
    credit_note, corrected = result["credit_note"], result["correction"]
    assert credit_note["kind"] == "credit_note"
    assert credit_note["cancels_id"] == buyer["id"]
    assert corrected["number"] not in (buyer["number"], None)
    assert corrected["gross_total"] == "13090.00"
    assert (corrected["paid_total"], corrected["open_amount"], corrected["status"]) == (
        "5000.00",
        "8090.00",
        "partially_paid",
    )
    assert wait_invoice(api, credit_note["id"], "sent")["status"] == "sent"
    history = api.get(f"/v1/invoices/{buyer['id']}/history", headers=CORE_HEADERS).json()
    assert [event["after"] for event in history if event["after"]] == [
        "draft",
        "issued",
        "sent",
        "partially_paid",
        "cancelled",
    ]


def released_line() -> dict[str, str]:
    """The courtage line of the e2e order's buyer share, as its correction starts from."""
    return {"description": "Maklercourtage (korrigiert)", "quantity": "1", "unit": "C62", "tax_rate": "19"}
