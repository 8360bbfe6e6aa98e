"""The booking journal and the daily export over the API on the real PostgreSQL: every business
event books a balanced entry, the day's file balances per entry and in total, a day is exported
once, and its acknowledgement is the hand-off that lets the core purge a party.

The receivables here live in 2026-01..04, after the dunning tests' calendar (their runs end on
2025-12-10 and never reach these items) and before today's business day, the export's day.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from postroom.core.billing.models import Invoice, JournalEntry, JournalLine, Party
from postroom.runtime import runtime
from tests.receivables import HEADERS, dunning_run, overdue_invoice, receivables_client
from tests.test_core_billing import deliver

ZERO = Decimal("0.00")


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    with receivables_client() as client:
        yield client


def pay(api: TestClient, invoice: Invoice, amount: str, booking_date: str) -> dict[str, Any]:
    body = {"amount": amount, "booking_date": booking_date, "invoice_id": str(invoice.id)}
    response = api.post("/v1/payments", json=body, headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def receivable(*invoice_ids: uuid.UUID) -> Decimal:
    """What the journal says the debtor owes on the receivables account for these vouchers."""
    accounts = runtime().settings.booking_accounts
    with runtime().db.session() as session:
        lines = session.execute(
            select(JournalLine.debit, JournalLine.credit)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(JournalEntry.invoice_id.in_(invoice_ids), JournalLine.account == accounts.receivables)
        ).all()
    return sum((debit - credit for debit, credit in lines), ZERO)


def rows_of(file: bytes) -> list[dict[str, str]]:
    text = file.decode("utf-8")
    assert text.startswith("entry;date;event;voucher;account;debit;credit;party;text\r\n")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def test_every_event_books_balanced_entries_and_the_days_file_balances(api: TestClient) -> None:
    paid = overdue_invoice(date(2026, 1, 5), "1000.00")  # 1,190.00
    paying = pay(api, paid, "1200.00", "2026-01-12")  # 10.00 too much: a credit balance
    refund = {"amount": "10.00", "reason": "Überzahlung erstattet"}
    assert api.post(f"/v1/payments/{paying['id']}/refund", json=refund, headers=HEADERS).status_code == 200

    cancelled = overdue_invoice(date(2026, 1, 5), "500.00")  # 595.00, part paid, corrected to 476.00
    pay(api, cancelled, "300.00", "2026-01-14")
    correction = {"lines": [{**cancelled.lines[0], "unit_price": "400.00"}]}
    storno = api.post(
        f"/v1/invoices/{cancelled.id}/cancel",
        json={"reason": "Courtage falsch berechnet", "correction": correction},
        headers=HEADERS,
    )
    assert storno.status_code == 200, storno.text
    corrected = uuid.UUID(storno.json()["correction"]["id"])
    credit_note = uuid.UUID(storno.json()["credit_note"]["id"])
    assert storno.json()["correction"]["open_amount"] == "176.00"  # the 300.00 moved over
    with runtime().db.session() as session:
        pay(api, session.get_one(Invoice, corrected), "176.00", "2026-01-20")

    chased = overdue_invoice(date(2026, 1, 5), "2000.00")  # 2,380.00, due 2026-01-19
    for key_date in ("2026-01-27", "2026-02-20", "2026-03-06", "2026-03-20"):
        dunning_run(api, key_date)
    case = api.post(
        "/v1/collection-cases",
        json={"invoice_ids": [str(chased.id)], "agency": "rheinische", "as_of": "2026-03-23"},
        headers=HEADERS,
    )
    assert case.status_code == 201, case.text
    case_url = f"/v1/collection-cases/{case.json()['id']}"
    agency = {"amount": "1000.00", "costs": "85.00", "booking_date": "2026-04-10", "reference": "RI-4711"}
    assert api.post(f"{case_url}/payments", json=agency, headers=HEADERS).status_code in (200, 201)
    close = {"outcome": "written_off", "as_of": "2026-04-30", "reason": "Schuldner insolvent"}
    assert api.post(f"{case_url}/close", json=close, headers=HEADERS).json()["status"] == "written_off"

    agent_id = uuid.uuid4()
    with runtime().db.session() as session:
        session.add(Party(id=agent_id, kind="agent", reference=f"M-{agent_id.hex[:6]}", name="Max Makler"))
    advance = {"kind": "advance", "amount": "750.00", "reference": f"VS-{uuid.uuid4().hex[:8]}"}
    booked = api.post(f"/v1/agents/{agent_id}/advances", json=advance, headers=HEADERS)
    assert booked.status_code in (200, 201), booked.text

    # The journal mirrors the items: nothing owed on any of them any more.
    for vouchers in ((paid.id,), (cancelled.id, credit_note), (corrected,), (chased.id,)):
        assert receivable(*vouchers) == ZERO
    chased_events = {
        e["event"] for e in api.get(f"/v1/journal?invoice_id={chased.id}", headers=HEADERS).json()
    }
    assert chased_events == {"invoice", "fee", "interest", "payment", "write_off"}

    exported = api.post("/v1/booking-exports", json={}, headers=HEADERS)
    assert exported.status_code == 201, exported.text
    export = exported.json()
    assert export["debit_total"] == export["credit_total"]
    file = api.get(f"/v1/booking-exports/{export['id']}/file", headers=HEADERS)
    assert file.headers["x-content-sha256"] == export["sha256"]
    rows = rows_of(file.content)
    per_entry: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        per_entry[row["entry"]] += Decimal(row["debit"]) - Decimal(row["credit"])
    assert len(per_entry) == export["entries"]
    assert set(per_entry.values()) == {ZERO}, "an entry does not balance"
    assert sum(Decimal(row["debit"]) for row in rows) == Decimal(export["debit_total"])
    events = {row["event"] for row in rows}
    assert events >= {
        "invoice",
        "credit_note",
        "receipt",
        "payment",
        "refund",
        "transfer",
        "fee",
        "interest",
        "collection_cost",
        "write_off",
        "advance",
    }
    assert "Schmidt" not in file.text  # customer numbers, never names
    assert "Makler" not in file.text

    again = api.post("/v1/booking-exports", json={"day": export["day"]}, headers=HEADERS)
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["sha256"]) == (export["id"], export["sha256"])
    assert api.get("/v1/journal?limit=5", headers=HEADERS).json()[0]["export_id"] is not None


def test_the_acknowledged_export_is_the_hand_off_that_purges_the_customer(api: TestClient) -> None:
    invoice = overdue_invoice(date(2026, 4, 1), "300.00")  # 357.00
    pay(api, invoice, "357.00", "2026-04-08")
    assert invoice.document_id is not None
    deliver(str(invoice.document_id))
    with runtime().db.session() as session:
        assert session.get_one(Party, invoice.party_id).name is not None  # not booked yet

    # A day of its own: what earlier days left unexported (this invoice and its payment) rides along.
    export = api.post("/v1/booking-exports", json={"day": "2026-04-30"}, headers=HEADERS).json()
    entries = api.get(f"/v1/journal?invoice_id={invoice.id}", headers=HEADERS).json()
    assert [(e["event"], e["export_id"]) for e in entries] == [
        ("invoice", export["id"]),
        ("payment", export["id"]),
    ]
    acknowledged = api.post(f"/v1/booking-exports/{export['id']}/acknowledge", headers=HEADERS).json()
    assert acknowledged["status"] == "acknowledged"
    with runtime().db.session() as session:
        party = session.get_one(Party, invoice.party_id)
        assert (party.name, party.purged_at is not None) == (None, True)
        assert session.get_one(Invoice, invoice.id).booking_acknowledged_at is not None
    listed = api.get("/v1/booking-exports?status=exported", headers=HEADERS).json()
    assert export["id"] not in [e["id"] for e in listed]


def test_a_day_still_to_come_is_not_exported(api: TestClient) -> None:
    refused = api.post("/v1/booking-exports", json={"day": "2999-01-01"}, headers=HEADERS)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "day"
