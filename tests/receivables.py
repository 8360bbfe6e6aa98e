"""Shared pieces of the receivables tests: an API client whose bulk runs are recorded (and
cancelled afterwards, so later workers never see them), invoices issued on a fixed day through
the core's own path, and dunning runs over the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from postroom.core.batches import cancel_batch
from postroom.core.billing import invoices
from postroom.core.billing.models import Invoice, Party
from postroom.runtime import runtime
from tests.conftest import CORE_KEY

HEADERS = {"Authorization": f"Bearer {CORE_KEY}"}


@contextmanager
def receivables_client(expanded: list[uuid.UUID] | None = None) -> Iterator[TestClient]:
    """The API without workers: documents are not rendered, bulk runs are recorded in ``expanded``
    instead of expanded, and cancelled when the client closes."""
    from postroom.api.app import create_app

    expanded = [] if expanded is None else expanded
    app = create_app()
    app.state.enqueue_render = lambda document_id: None  # rendering is tested end to end elsewhere
    app.state.expand_batch = expanded.append
    with TestClient(app) as client:
        yield client
    with runtime().db.session() as session:
        for batch_id in expanded:
            cancel_batch(session, batch_id)


def overdue_invoice(
    issued: date, net: str = "4000.00", *, kind: str = "business", email: bool = True
) -> Invoice:
    """An invoice issued on ``issued`` through the core's own path (due 14 days later)."""
    party_id, reference = uuid.uuid4(), f"K-{uuid.uuid4().hex[:8].upper()}"
    with runtime().db.session() as session:
        party = Party(
            id=party_id,
            kind=kind,
            reference=reference,
            name="Schmidt & Söhne Bauträger KG" if kind == "business" else "Erika Mustermann",
            street="Am Römerturm 3",
            postcode="80331",
            city="München",
            country="DE",
            email="rechnungen@schmidt-soehne.example" if email else None,
        )
        session.add(party)
    channels = ["email", "archive"] if email else ["print", "archive"]
    return issued_invoice(party_id, issued, net, channels=channels)


def issued_invoice(party_id: uuid.UUID, issued: date, net: str, *, channels: list[str]) -> Invoice:
    """An invoice of ``net`` plus 19 % VAT to the party, issued on ``issued`` through the core's own
    path (due 14 days later)."""
    rt = runtime()
    with rt.db.session() as session:
        line = {
            "description": "Maklercourtage",
            "quantity": "1",
            "unit": "C62",
            "unit_price": net,
            "tax_rate": "19",
        }
        invoice = invoices.new_invoice(
            session,
            kind="invoice",
            party_id=party_id,
            lines=[line],
            currency="EUR",
            channels=channels,
            actor="core",
        )
        invoices.issue(session, invoice, rt.settings, today=issued, actor="core")
        session.flush()
        session.expunge(invoice)
        return invoice


def dunning_run(api: TestClient, key_date: str, **extra: Any) -> dict[str, Any]:
    """``POST /v1/dunning-runs``; the run (or proposal) as JSON."""
    response = api.post("/v1/dunning-runs", json={"key_date": key_date, **extra}, headers=HEADERS)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())
