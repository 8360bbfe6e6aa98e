"""Fixtures: private PostgreSQL, Redis, SMTP and S3 (moto) instances on free loopback ports."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from postroom.channels.base import Handoff
from postroom.core.migrate import upgrade
from postroom.documents.catalogue import document_type
from postroom.embedded.postgres import PostgresProcess
from postroom.embedded.redis import RedisProcess
from postroom.embedded.smtp_sink import SmtpSink
from postroom.runtime import runtime
from postroom.settings import get_settings
from tests.services import S3_CREDENTIALS, S3Server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WRITER_KEY = "test-writer-secret"
ADMIN_KEY = "test-admin-secret"
BULK_KEY = "test-bulk-key"
READER_KEY = "test-reader-secret"
AUDITOR_KEY = "test-auditor-secret"
LIMITED_AUDITOR_KEY = "test-limited-auditor-secret"
CORE_KEY = "test-core-secret"
LIMITED_AUDITOR_VIEW = {"issued_from": "2019-01-01", "issued_to": "2019-06-30", "document_types": ["invoice"]}
"""What the limited auditor key may see of the archive."""
ARCHIVE_BUCKET = "postroom-archive"
REFUSED_ADDRESS = "unknown.mailbox@example.org"
WEBHOOK_SECRET = "test-webhook-secret"


def example(name: str) -> dict[str, Any]:
    """A request body from ``examples/``."""
    body: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return body


def example_handoff(
    pdf: bytes,
    example_name: str = "invoice",
    *,
    locale: str = "de",
    delivery_id: uuid.UUID | None = None,
    **recipient: Any,
) -> Handoff:
    """A hand-off of ``examples/<example_name>.json`` carrying ``pdf``, as the delivery job builds
    it; ``recipient`` changes fields of the recipient (``name=...`` among them)."""
    doc_type = document_type(example_name)
    request = doc_type.parse(example(example_name))
    return Handoff(
        delivery_id=delivery_id or uuid.uuid4(),
        document_id=uuid.uuid4(),
        document_type=example_name,
        title=doc_type.title(locale),
        number=request.number,
        issue_date=request.data.issue_date,
        locale=locale,
        retention=doc_type.retention,
        recipient=request.recipient.model_copy(update=recipient),
        seller=request.data.seller,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresProcess]:
    server = PostgresProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    with RedisProcess() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    for name, value in S3_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path_factory.mktemp("outbox"), refused=frozenset({REFUSED_ADDRESS})) as sink:
        yield sink


FOLLOWUP_DIRECTORY = {
    "forderungsmanagement": {"email": "forderungen@muster-immobilien.example", "members": ["anna", "jonas"]},
    "auftragsmanagement": {"email": "auftraege@muster-immobilien.example", "members": ["jonas"]},
    "anna": {"email": "anna@muster-immobilien.example"},
}
COLLECTION_AGENCY = {
    "key": "rheinische",
    "name": "Rheinische Inkasso GmbH",
    "street": "Domstraße 1",
    "postcode": "50668",
    "city": "Köln",
    "phone": "+49 221 98765-0",
}


@pytest.fixture(scope="session")
def hub_env(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresProcess,
    redis_server: RedisProcess,
    s3_server: S3Server,
    smtp_sink: SmtpSink,
) -> dict[str, str]:
    """The environment of a production-like hub on the private services, applied to this process."""
    upgrade(postgres.url())
    s3_server.create_bucket(ARCHIVE_BUCKET)
    env = {
        **S3_CREDENTIALS,
        "POSTROOM_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "POSTROOM_DATABASE_URL": postgres.url(),
        "POSTROOM_REDIS_URL": redis_server.url,
        "POSTROOM_ARCHIVE_URL": f"s3://{ARCHIVE_BUCKET}/documents",
        "POSTROOM_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "POSTROOM_SMTP_URL": smtp_sink.url,
        "POSTROOM_API_KEYS": json.dumps(
            [
                {"id": "writer", "secret": WRITER_KEY, "scopes": ["documents:write", "documents:read"]},
                {"id": "reader", "secret": READER_KEY, "scopes": ["documents:read"]},
                {"id": "admin", "secret": ADMIN_KEY, "scopes": ["admin"]},
                {"id": "bulk", "secret": BULK_KEY, "scopes": ["batches:write", "documents:read"]},
                {"id": "auditor", "secret": AUDITOR_KEY, "scopes": ["archive:read"]},
                {"id": "core", "secret": CORE_KEY, "scopes": ["core:write", "core:read"]},
                {
                    "id": "auditor-h1-2019",
                    "secret": LIMITED_AUDITOR_KEY,
                    "scopes": ["archive:read"],
                    "archive": LIMITED_AUDITOR_VIEW,
                },
            ]
        ),
        "POSTROOM_JOB_MAX_RETRIES": "2",
        "POSTROOM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "POSTROOM_CALLBACK_ALLOW_PRIVATE_NETWORKS": "true",
        "POSTROOM_LOG_JSON": "true",
        "POSTROOM_PRINT_CUTOFF_INTERVAL_SECONDS": "1",
        "POSTROOM_PRINT_ACK_POLL_SECONDS": "1",
        "POSTROOM_ISSUER": json.dumps(example("invoice")["data"]["seller"]),
        "POSTROOM_FOLLOWUP_DIRECTORY": json.dumps(FOLLOWUP_DIRECTORY),
        "POSTROOM_COLLECTION_AGENCIES": json.dumps([COLLECTION_AGENCY]),
    }
    os.environ.update(env)
    get_settings.cache_clear()
    runtime.cache_clear()
    return env
