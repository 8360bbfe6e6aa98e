"""One document end to end: real HTTP into ``postroom serve``, Redis, a ``postroom worker`` process,
PostgreSQL, the S3 endpoint and the SMTP server."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from pypdf import PdfReader

from postroom.embedded.smtp_sink import SmtpSink
from postroom.embedded.topology import Topology
from postroom.webhooks import verify
from tests.conftest import ARCHIVE_BUCKET, READER_KEY, REFUSED_ADDRESS, WEBHOOK_SECRET, WRITER_KEY, example
from tests.services import S3Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str], logs: Path) -> Iterator[httpx.Client]:
    topology = Topology(dict(os.environ), logs, worker_processes=1, worker_threads=2)
    with topology, httpx.Client(base_url=topology.api_url, timeout=30) as client:
        yield client


def submit(api: httpx.Client, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {WRITER_KEY}", "Idempotency-Key": key or str(uuid.uuid4())}
    return api.post("/v1/documents", json=body, headers=headers)


def wait_final(api: httpx.Client, document_id: str, timeout: float = 60) -> dict[str, Any]:
    """The document once it and every one of its deliveries reached a final state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    api: httpx.Client, smtp_sink: SmtpSink, hub_env: dict[str, str]
) -> None:
    """SMTP 550 fails the e-mail delivery for good; the fallback channel, print, takes over."""
    body = copy.deepcopy(example("invoice"))
    body["recipient"]["email"] = REFUSED_ADDRESS
    response = submit(api, body)
    assert response.status_code == 202, response.text
    document_id = response.json()["id"]
    stem, manifest = wait_for_print_batch(hub_env, document_id)
    acknowledge_print_batch(hub_env, stem, manifest)
    view = wait_final(api, document_id)
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


def acknowledge_print_batch(hub_env: dict[str, str], stem: str, manifest: dict[str, Any]) -> None:
    """Write the letter shop's acknowledgement of a whole batch."""
    ack = Path(hub_env["POSTROOM_VAR_DIR"]) / "print" / "ack"
    ack.mkdir(exist_ok=True)
    content = {"batch": manifest["batch"], "status": "accepted", "rejected_pieces": []}
    (ack / f"{stem}.ack.json").write_text(json.dumps(content), encoding="utf-8")


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


def test_print_letter_is_confirmed_by_the_acknowledgement_then_purged(
    api: httpx.Client, hub_env: dict[str, str]
) -> None:
    body = example("invoice")
    body["channels"] = ["print", "archive"]
    document_id = submit(api, body).json()["id"]
    hot_folder = Path(hub_env["POSTROOM_VAR_DIR"]) / "print"
    stem, manifest = wait_for_print_batch(hub_env, document_id)
    assert (hot_folder / "out" / f"{stem}.pdf").is_file()
    assert (hot_folder / "out" / f"{stem}.manifest.csv").is_file()
    view = api.get(f"/v1/documents/{document_id}", headers={"Authorization": f"Bearer {READER_KEY}"}).json()
    assert {d["channel"]: d["status"] for d in view["deliveries"]}["print"] == "sent"
    acknowledge_print_batch(hub_env, stem, manifest)
    view = wait_final(api, document_id)
    assert view["status"] == "delivered", (view["error"], view["deliveries"])
    # The letter shop has the batch: its files and the acknowledgement go, and so does the personal data.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (hot_folder / "out" / f"{stem}.pdf").exists():
        time.sleep(0.2)
    assert not (hot_folder / "out" / f"{stem}.pdf").exists()
    assert not (hot_folder / "ack" / f"{stem}.ack.json").exists()
    assert_purged(hub_env, document_id, body)


def assert_purged(hub_env: dict[str, str], document_id: str, body: dict[str, Any]) -> None:
    """No trace of the recipient in the database row, the spool or Redis once the document is done."""
    from sqlalchemy import text

    from postroom.core.db import database

    deadline = time.monotonic() + 20
    db = database(hub_env["POSTROOM_DATABASE_URL"])
    row: Any = None
    while time.monotonic() < deadline:
        with db.session() as session:
            row = session.execute(
                text("SELECT payload, purged_at, amount FROM documents WHERE id = :id"), {"id": document_id}
            ).one()
        if row.purged_at is not None:
            break
        time.sleep(0.2)
    assert row.purged_at is not None
    assert row.payload is None
    assert row.amount is not None  # amounts stay
    recipient = body["recipient"]
    secrets = [recipient["name"], recipient["street"]] + (
        [recipient["email"]] if recipient.get("email") else []
    )
    spool = Path(hub_env["POSTROOM_VAR_DIR"]) / "spool"
    leftovers = [path for path in spool.rglob("*") if document_id.replace("-", "") in str(path)]
    assert not leftovers
    import redis

    client = redis.Redis.from_url(hub_env["POSTROOM_REDIS_URL"])
    for key in client.scan_iter():
        dump = client.dump(key) or b""
        assert not any(secret.encode() in dump for secret in secrets), key
