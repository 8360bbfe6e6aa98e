"""Dunning runs, collection and follow-ups over the API on the real PostgreSQL, with a fixed clock:
invoices are issued on fixed days and every run, hand-off and payment names its own date.

Runs select every overdue item in the database, so each test works in its own stretch of the
calendar, earlier than the tests before it (a run never reaches items due after its key date).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from postroom.core.billing.models import Charge, DunningRun, Followup, Invoice, Party
from postroom.core.billing.states import InvoiceStatus
from postroom.core.models import Batch, Document
from postroom.runtime import runtime
from tests.receivables import HEADERS, dunning_run, overdue_invoice, receivables_client

EXPANDED: list[uuid.UUID] = []
"""The bulk runs the API asked to expand (the workers' part is stubbed here)."""


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    with receivables_client(EXPANDED) as client:
        yield client


def letter_for(run: dict[str, Any], invoice: Invoice) -> dict[str, Any]:
    letter = letter_for_or_none(run, invoice)
    assert letter is not None, run["skipped"]
    return letter


def letter_for_or_none(run: dict[str, Any], invoice: Invoice) -> dict[str, Any] | None:
    for letter in run["proposal"]:
        if any(item["invoice_id"] == str(invoice.id) for item in letter["items"]):
            return dict(letter)
    return None


def invoice_view(api: TestClient, invoice: Invoice) -> dict[str, Any]:
    return dict(api.get(f"/v1/invoices/{invoice.id}", headers=HEADERS).json())


def letter_request(document_id: str) -> dict[str, Any]:
    with runtime().db.session() as session:
        document = session.get_one(Document, uuid.UUID(document_id))
        assert document.payload is not None
        return {"type": document.type, **document.payload}


def charges(invoice: Invoice) -> dict[str, Decimal]:
    with runtime().db.session() as session:
        rows = session.execute(
            select(Charge.kind, func.sum(Charge.amount))
            .where(Charge.invoice_id == invoice.id)
            .group_by(Charge.kind)
        )
        return dict(rows.all())


def test_an_unpaid_business_invoice_climbs_level_by_level_with_interest_to_the_cent_then_goes_to_collection(
    api: TestClient,
) -> None:
    invoice = overdue_invoice(date(2025, 1, 29))  # 4,760.00 gross, due 2025-02-12, in default from 2025-03-15
    assert (invoice.gross_total, invoice.due_date) == (Decimal("4760.00"), date(2025, 2, 12))

    reminder = letter_for(dunning_run(api, "2025-02-20"), invoice)
    assert (reminder["level"], reminder["interest"], reminder["fees"]) == (0, "0.00", [])
    assert reminder["channels"] == ["email", "archive"]

    first = letter_for(dunning_run(api, "2025-03-20"), invoice)
    # 6 days in default at 2.27 + 9 = 11.27 %: 4,760.00 × 11.27 × 6 / 36,500 = 8.818… → 8.82
    assert (first["level"], first["interest"]) == (1, "8.82")
    assert [(fee["kind"], fee["amount"]) for fee in first["fees"]] == [
        ("flat_rate", "40.00"),
        ("fee", "2.50"),
    ]

    second = letter_for(dunning_run(api, "2025-04-10"), invoice)
    assert (second["level"], second["interest"]) == (2, "39.68")
    assert [(fee["kind"], fee["amount"]) for fee in second["fees"]] == [("fee", "2.50")]  # the €40 only once

    too_early = api.post(
        "/v1/collection-cases",
        json={"invoice_ids": [str(invoice.id)], "agency": "rheinische", "as_of": "2025-05-15"},
        headers=HEADERS,
    )
    assert too_early.status_code == 409
    assert [e["field"] for e in too_early.json()["errors"]] == ["invoice_ids[0]"]
    assert "final dunning level" in too_early.json()["errors"][0]["message"]

    final_run = dunning_run(api, "2025-09-30")
    final = letter_for(final_run, invoice)
    # 2025-03-15 … 2025-06-30: 108 days at 11.27 %; 2025-07-01 … 2025-09-30: 92 days at 10.27 %
    # 4,760.00 × (11.27 × 108 + 10.27 × 92) / 36,500 = 281.948… → 281.95
    assert (final["level"], final["interest"], final["total"]) == (3, "281.95", "5044.45")
    stored = api.get(f"/v1/dunning-runs/{final_run['id']}", headers=HEADERS).json()
    (notice,) = [n for n in stored["notices"] if n["party_id"] == str(invoice.party_id)]
    body = letter_request(notice["document_id"])
    assert body["data"]["level"] == 3
    assert body["data"]["items"][0]["default_since"] == "2025-03-15"
    assert [r["level"] for r in body["data"]["previous_reminders"]] == [0, 1, 2]
    assert charges(invoice) == {
        "flat_rate": Decimal("40.00"),
        "fee": Decimal("7.50"),
        "interest": Decimal("281.95"),
    }
    view = invoice_view(api, invoice)
    assert (view["status"], view["dunning_level"], view["default_since"]) == ("overdue", 3, "2025-03-15")

    assert letter_for_or_none(dunning_run(api, "2025-10-14"), invoice) is None  # level 3 is the last

    case = api.post(
        "/v1/collection-cases",
        json={"invoice_ids": [str(invoice.id)], "agency": "rheinische", "as_of": "2025-10-15"},
        headers=HEADERS,
    )
    assert case.status_code == 201, case.text
    opened = case.json()
    assert (opened["principal"], opened["charges"]) == ("4760.00", "329.45")
    assert invoice_view(api, invoice)["status"] == "in_collection"
    export = api.get(f"/v1/collection-cases/{opened['id']}/export", headers=HEADERS)
    assert export.status_code == 200
    assert invoice.number in export.text
    notice_body = letter_request(opened["notice_document_id"])
    assert notice_body["type"] == "collection_notice"
    assert [r["date"] for r in notice_body["data"]["reminders"]] == ["2025-03-20", "2025-04-10", "2025-09-30"]

    action = api.post(
        f"/v1/collection-cases/{opened['id']}/actions", json={"action": "Fliegen lernen"}, headers=HEADERS
    )
    assert action.status_code == 409
    paid = api.post(
        f"/v1/collection-cases/{opened['id']}/payments",
        json={"amount": "3000.00", "costs": "120.00", "booking_date": "2025-11-20", "reference": "RI-1"},
        headers=HEADERS,
    ).json()
    assert (paid["received"], paid["costs"]) == ("3000.00", "120.00")
    assert invoice_view(api, invoice)["open_amount"] == "1760.00"
    closed = api.post(
        f"/v1/collection-cases/{opened['id']}/close",
        json={"outcome": "settled", "as_of": "2025-12-10", "reason": "Vergleich"},
        headers=HEADERS,
    ).json()
    assert closed["status"] == "settled"
    assert (invoice_view(api, invoice)["status"], invoice_view(api, invoice)["open_amount"]) == (
        "written_off",
        "0.00",
    )


def test_collection_needs_two_reminders_the_first_28_days_old_and_no_dispute(api: TestClient) -> None:
    invoice = overdue_invoice(date(2024, 9, 2), "1000.00")  # due 2024-09-16
    for key_date in ("2024-09-24", "2024-10-18", "2024-11-01", "2024-11-15"):
        assert letter_for_or_none(dunning_run(api, key_date), invoice) is not None
    assert invoice_view(api, invoice)["dunning_level"] == 3

    def hand_over(as_of: str) -> Any:
        body = {"invoice_ids": [str(invoice.id)], "agency": "rheinische", "as_of": as_of}
        return api.post("/v1/collection-cases", json=body, headers=HEADERS)

    dispute = {"disputed": True, "reason": "Leistung bestritten"}
    assert api.put(f"/v1/invoices/{invoice.id}/dunning", json=dispute, headers=HEADERS).status_code == 200
    refused = hand_over("2024-12-01")
    assert refused.status_code == 409
    assert "disputed" in refused.json()["errors"][0]["message"]
    resolved = {"disputed": False, "reason": "Einwand ausgeräumt"}
    api.put(f"/v1/invoices/{invoice.id}/dunning", json=resolved, headers=HEADERS)
    # reminders (level ≥ 1) on 2024-10-18, 2024-11-01, 2024-11-15: the first must be 28 days old
    assert hand_over("2024-11-14").status_code == 409
    assert hand_over("2024-11-16").status_code == 201


def test_a_payment_at_level_2_ends_the_dunning_and_cancels_open_followups(api: TestClient) -> None:
    invoice = overdue_invoice(date(2024, 3, 1), "500.00", kind="consumer")  # 595.00, due 2024-03-15
    for key_date in ("2024-03-25", "2024-04-20", "2024-05-06"):
        dunning_run(api, key_date)
    assert invoice_view(api, invoice)["dunning_level"] == 2
    open_tasks = api.get(f"/v1/followups?case_id={invoice.id}", headers=HEADERS).json()
    assert len(open_tasks) == 1
    assert "Mahnstufe 2" in open_tasks[0]["subject"]
    assert open_tasks[0]["assignee_group"] == "forderungsmanagement"
    assert open_tasks[0]["due_date"] == "2024-05-17"  # the day after the deadline (10 days)

    payment = {
        "amount": "595.00",
        "currency": "EUR",
        "booking_date": "2024-05-10",
        "invoice_id": str(invoice.id),
        "reference": f"PAY-{uuid.uuid4().hex[:8]}",
    }
    placed = api.post("/v1/payments", json=payment, headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex})
    assert placed.status_code in (200, 201), placed.text
    assert invoice_view(api, invoice)["status"] == "paid"
    assert api.get(f"/v1/followups?case_id={invoice.id}", headers=HEADERS).json() == []
    cancelled = api.get(f"/v1/followups?case_id={invoice.id}&status=cancelled", headers=HEADERS).json()
    assert len(cancelled) == 1
    assert letter_for_or_none(dunning_run(api, "2024-06-20"), invoice) is None


def test_a_dry_run_proposes_exactly_what_the_real_run_does_and_a_second_run_sends_nothing(
    api: TestClient,
) -> None:
    blocked = overdue_invoice(date(2023, 10, 2))
    disputed = overdue_invoice(date(2023, 10, 2))
    plain = [overdue_invoice(date(2023, 10, 2), kind=kind) for kind in ("business", "consumer")]
    api.put(
        f"/v1/accounts/{blocked.party_id}/dunning",
        json={"blocked_until": "2023-12-31", "block_reason": "Klärung"},
        headers=HEADERS,
    )
    api.put(
        f"/v1/invoices/{disputed.id}/dunning",
        json={"disputed": True, "reason": "bestritten"},
        headers=HEADERS,
    )

    proposal = dunning_run(api, "2023-11-20", dry_run=True)
    with runtime().db.session() as session:
        assert session.scalar(select(func.count()).where(DunningRun.key_date == date(2023, 11, 20))) == 0
    real = dunning_run(api, "2023-11-20")
    assert real["proposal"] == proposal["proposal"]
    assert real["letters"] == len(proposal["proposal"]) == 2
    assert {letter["party_id"] for letter in real["proposal"]} == {str(i.party_id) for i in plain}
    reasons = {s["invoice_number"]: s["reason"] for s in real["skipped"]}
    assert reasons[blocked.number] == "dunning block on the customer"
    assert reasons[disputed.number] == "disputed"
    assert real["batch_id"] is not None
    assert EXPANDED[-1] == uuid.UUID(real["batch_id"])

    again = api.post("/v1/dunning-runs", json={"key_date": "2023-11-20"}, headers=HEADERS)
    assert again.status_code == 200
    assert (again.json()["repeated"], again.json()["id"], again.json()["proposal"]) == (True, real["id"], [])
    with runtime().db.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Batch).where(Batch.id == uuid.UUID(real["batch_id"]))
            )
            == 1
        )
        assert [
            i.dunning_level
            for i in session.scalars(select(Invoice).where(Invoice.id.in_([p.id for p in plain])))
        ] == [0, 0]


def test_followups_are_listed_per_assignee_taken_over_by_a_group_member_and_notified_when_due(
    api: TestClient,
) -> None:
    case_id = uuid.uuid4()
    task = api.post(
        "/v1/followups",
        json={
            "case_kind": "invoice",
            "case_id": str(case_id),
            "subject": "Zahlungseingang prüfen",
            "due_date": "2022-06-01",
            "options": ["14 Tage auf Zahlungseingang warten", "Vorgang schließen"],
            "assignee_group": "forderungsmanagement",
        },
        headers=HEADERS,
    ).json()
    listed = api.get("/v1/followups?assignee=anna&due_before=2022-06-02", headers=HEADERS).json()
    assert task["id"] in [t["id"] for t in listed]
    assert task["id"] not in [
        t["id"] for t in api.get("/v1/followups?assignee=anna&due_before=2022-06-01", headers=HEADERS).json()
    ]

    stranger = api.post(f"/v1/followups/{task['id']}/take", json={"user": "mallory"}, headers=HEADERS)
    assert stranger.status_code == 409
    taken = api.post(f"/v1/followups/{task['id']}/take", json={"user": "anna"}, headers=HEADERS).json()
    assert taken["assignee"] == "anna"

    sent = api.post("/v1/followups/notices", json={"as_of": "2022-06-01"}, headers=HEADERS).json()
    assert sent["notices"] >= 1
    with runtime().db.session() as session:
        row = session.get_one(Followup, uuid.UUID(task["id"]))
        assert row.notice_document_id is not None
    notice = letter_request(str(row.notice_document_id))
    assert notice["type"] == "followup_notice"
    assert notice["recipient"]["email"] == "anna@muster-immobilien.example"  # the assignee's
    assert notice["data"]["subject"] == "Zahlungseingang prüfen"
    again = api.post("/v1/followups/notices", json={"as_of": "2022-06-01"}, headers=HEADERS).json()
    assert again["notices"] == 0

    done = api.post(
        f"/v1/followups/{task['id']}/complete",
        json={"option": "14 Tage auf Zahlungseingang warten", "user": "anna"},
        headers=HEADERS,
    ).json()
    assert done[0]["status"] == "done"
    assert done[0]["chosen_option"].startswith("14 Tage")
    assert len(done) == 2
    assert done[1]["status"] == "open"


def test_a_thousand_customer_run_sends_its_letters_as_one_batch_through_the_hub(api: TestClient) -> None:
    with runtime().db.session() as session:
        parties = [
            Party(
                id=uuid.uuid4(),
                kind="business" if n % 2 else "consumer",
                reference=f"KM-{n:05d}",
                name=f"Kunde {n}",
                street="Hauptstraße 1",
                postcode=f"{10000 + n}",
                city="Berlin",
                country="DE",
            )
            for n in range(1000)
        ]
        session.add_all(parties)
        session.flush()
        # Sent invoices as part 1 leaves them (their own documents are not the subject here).
        session.add_all(
            Invoice(
                kind="invoice",
                party_id=party.id,
                status=InvoiceStatus.SENT,
                number=f"TM-2023-{n:06d}",
                currency="EUR",
                lines=[],
                net_total=Decimal("100.00"),
                tax_total=Decimal("19.00"),
                gross_total=Decimal("119.00"),
                paid_total=Decimal("0.00"),
                charges_total=Decimal("0.00"),
                open_amount=Decimal("119.00"),
                issue_date=date(2023, 3, 1),
                due_date=date(2023, 3, 15),
                channels=["print", "archive"],
            )
            for n, party in enumerate(parties)
        )
    run = dunning_run(api, "2023-04-20")  # 36 days after due: level 0
    assert run["letters"] == 1000
    assert run["batch_id"] is not None
    with runtime().db.session() as session:
        batch = session.get_one(Batch, uuid.UUID(run["batch_id"]))
        assert (batch.status, batch.accepted, batch.rejected) == ("running", 1000, 0)
        types = session.scalars(select(Document.type).where(Document.batch_id == batch.id).distinct()).all()
        assert types == ["dunning_letter"]
        # The customers pay, so runs on later key dates (other tests' calendars) leave them alone.
        session.execute(
            update(Invoice)
            .where(Invoice.number.like("TM-2023-%"))
            .values(status=InvoiceStatus.PAID, paid_total=Invoice.gross_total, open_amount=Decimal("0.00"))
        )
