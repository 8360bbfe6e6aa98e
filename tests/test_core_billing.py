"""The core in-process: orders and their checks, invoices, payments, commissions and the purge,
over the API (TestClient) on the real PostgreSQL; documents are enqueued but not rendered here."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import handoffs, invoices, payments
from postroom.core.billing.models import Advance, Invoice, NumberSequence, Party, Payment
from postroom.core.billing.outbox import DocumentRefused
from postroom.core.billing.parties import iban_digest
from postroom.core.models import Document
from postroom.core.states import DocumentStatus
from postroom.runtime import runtime
from tests.conftest import CORE_KEY
from tests.core_orders import BUYER_IBAN, DATA, camt053, order_body

HEADERS = {"Authorization": f"Bearer {CORE_KEY}"}
XML = {**HEADERS, "Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    from postroom.api.app import create_app

    app = create_app()
    app.state.enqueue_render = lambda document_id: None  # the worker's part is tested end to end
    with TestClient(app) as client:
        yield client


def released(api: TestClient, **changes: Any) -> dict[str, dict[str, Any]]:
    """Submit and release an order; its invoices by role."""
    order = api.post("/v1/orders", json=order_body(**changes), headers=HEADERS)
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "ready", order.json()["findings"]
    release = api.post(f"/v1/orders/{order.json()['id']}/release", headers=HEADERS)
    assert release.status_code == 200, release.text
    return {
        i["role"]: api.get(f"/v1/invoices/{i['id']}", headers=HEADERS).json()
        for i in release.json()["invoices"]
    }


def deliver(document_id: str) -> None:
    """Play the hub's confirmation of every hand-off of a document."""
    with runtime().db.session() as session:
        document = session.get_one(Document, uuid.UUID(document_id))
        document.status = DocumentStatus.DELIVERED
        handoffs.document_delivered(session, document.id)


def test_an_order_is_idempotent_by_its_upstream_id(api: TestClient) -> None:
    body = order_body()
    first = api.post("/v1/orders", json=body, headers=HEADERS)
    again = api.post("/v1/orders", json=body, headers=HEADERS)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = api.post("/v1/orders", json={**body, "price": "400000.00"}, headers=HEADERS)
    assert changed.status_code == 409


def test_a_malformed_order_is_422_with_the_field_path(api: TestClient) -> None:
    body = order_body()
    body["seller_share"]["amount"] = 11970.0
    response = api.post("/v1/orders", json=body, headers=HEADERS)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["seller_share.amount"]


def test_failed_checks_send_an_order_to_review_until_a_clerk_corrects_it(api: TestClient) -> None:
    body = order_body()
    body["seller"]["iban"] = "DE00120300000000202051"
    body["buyer_share"] = {"rate": "2.00", "amount": "7980.00"}  # §656c: both commissioned, unequal
    body["seller_share"]["amount"] = "11900.00"  # not price × rate
    del body["buyer"]["street"]
    order = api.post("/v1/orders", json=body, headers=HEADERS).json()
    assert order["status"] == "needs_review"
    assert {(f["code"], f["field"]) for f in order["findings"]} == {
        ("iban_invalid", "seller.iban"),
        ("656c_unequal_shares", "buyer_share"),
        ("commission_mismatch", "seller_share.amount"),
        ("address_incomplete", "buyer.street"),
    }
    assert "Erika" not in str(order["findings"])
    refused = api.post(f"/v1/orders/{order['id']}/release", headers=HEADERS)
    assert refused.status_code == 409
    assert len(refused.json()["errors"]) == 4

    corrected = order_body()
    corrected["order_id"] = body["order_id"]
    corrected["property"] = body["property"]
    corrected["seller"]["reference"], corrected["buyer"]["reference"] = (
        body["seller"]["reference"],
        body["buyer"]["reference"],
    )
    corrected["agents"] = body["agents"]
    response = api.put(f"/v1/orders/{order['id']}", json=corrected, headers=HEADERS)
    assert response.json()["status"] == "ready", response.json()["findings"]
    history = api.get(f"/v1/orders/{order['id']}/history", headers=HEADERS).json()
    assert [(e["action"], e["after"]) for e in history] == [
        ("received", "ready"),
        ("checked", "needs_review"),
        ("corrected", None),
        ("checked", "ready"),
    ]


def test_a_second_order_on_the_same_object_and_parties_is_a_duplicate(api: TestClient) -> None:
    body = order_body()
    api.post("/v1/orders", json=body, headers=HEADERS)
    twin = api.post("/v1/orders", json={**body, "order_id": body["order_id"] + "-B"}, headers=HEADERS).json()
    assert [f["code"] for f in twin["findings"]] == ["duplicate"]


def test_656d_the_buyer_share_falls_due_after_the_seller_paid(api: TestClient) -> None:
    body = order_body(commissioned_by=["seller"])
    body["buyer_share"] = {"rate": "3.00", "amount": "11970.00"}
    invoices_by_role = released(api, **{k: body[k] for k in ("commissioned_by", "buyer_share")})
    assert invoices_by_role["buyer"]["due_after_id"] == invoices_by_role["seller"]["id"]
    too_high = order_body(commissioned_by=["seller"], buyer_share={"rate": "4.00", "amount": "15960.00"})
    order = api.post("/v1/orders", json=too_high, headers=HEADERS).json()
    assert [f["code"] for f in order["findings"]] == ["656d_share_too_high"]


def test_a_rejected_order_mails_submitter_and_agency_and_schedules_a_followup(api: TestClient) -> None:
    order = api.post("/v1/orders", json=order_body(), headers=HEADERS).json()
    rejected = api.post(
        f"/v1/orders/{order['id']}/reject", json={"reason": "Objekt doppelt"}, headers=HEADERS
    )
    assert rejected.json()["status"] == "rejected"
    with runtime().db.session() as session:
        notices = session.scalars(
            select(Document).where(
                Document.type == "followup_notice", Document.idempotency_key.like("core:%")
            )
        ).all()
        mine = [
            d
            for d in notices
            if d.payload and d.payload["data"]["context"].get("order_reference") == order["order_id"]
        ]
        assert sorted(d.payload["recipient"]["email"] for d in mine if d.payload) == [
            "auftrag@partner.example",
            "buero@muster-immobilien.example",
        ]
        from postroom.core.billing.followups import for_case

        (task,) = for_case(session, uuid.UUID(order["id"]))
        assert (task.status, task.assignee_group) == ("open", "auftragsmanagement")
        assert (task.due_date - mine[0].issue_date).days == 14


COURTAGE_LINE = {
    "description": "Courtage",
    "quantity": "1",
    "unit": "C62",
    "unit_price": "100.00",
    "tax_rate": "19",
}


def new_draft(session: Session) -> Invoice:
    """A draft invoice over 100.00 net to a party the other tests created."""
    party = session.scalars(select(Party).where(Party.kind == "consumer", Party.name.is_not(None))).first()
    assert party is not None
    return invoices.new_invoice(
        session,
        kind="invoice",
        party_id=party.id,
        lines=[COURTAGE_LINE],
        currency="EUR",
        channels=["email", "archive"],
        actor="test",
    )


def test_issuing_refuses_an_invoice_without_the_statutory_content(api: TestClient) -> None:
    rt = runtime()
    assert rt.settings.issuer is not None
    no_tax_id = rt.settings.issuer.model_copy(update={"vat_id": None, "tax_number": None})
    settings = rt.settings.model_copy(update={"issuer": no_tax_id, "invoice_prefix": "NOTAX"})
    with rt.db.session() as session:
        draft = new_draft(session)
        with pytest.raises(DocumentRefused, match=r"§14\(4\) Nr. 2 UStG"):
            invoices.issue(session, draft, settings, today=date(2026, 11, 23), actor="test")
        session.rollback()
    with rt.db.session() as session:  # the refused issue rolled back: no number was used up
        assert session.scalar(select(NumberSequence).where(NumberSequence.range_key == "NOTAX-2026")) is None


def test_200_invoices_issued_from_8_parallel_requests_get_gapless_numbers(api: TestClient) -> None:
    rt = runtime()
    prefix = "".join(chr(65 + int(c, 16) % 26) for c in uuid.uuid4().hex[:6])
    settings = rt.settings.model_copy(update={"invoice_prefix": prefix})
    with rt.db.session() as session:
        drafts = [new_draft(session).id for _ in range(200)]
    errors: list[BaseException] = []

    def issue_share(ids: list[uuid.UUID]) -> None:
        try:
            for invoice_id in ids:
                with rt.db.session() as session:
                    draft = session.get_one(Invoice, invoice_id)
                    invoices.issue(session, draft, settings, today=date(2026, 11, 23), actor="test")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=issue_share, args=(drafts[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with rt.db.session() as session:
        numbers = sorted(
            str(n) for n in session.scalars(select(Invoice.number).where(Invoice.id.in_(drafts)))
        )
    assert numbers == [f"{prefix}-2026-{n:06d}" for n in range(1, 201)]


def test_matching_review_queue_overpayment_refund_and_a_returned_direct_debit(api: TestClient) -> None:
    billed = released(api)
    seller, buyer = billed["seller"], billed["buyer"]
    unknown = api.post(
        "/v1/payments",
        json={"amount": "14244.30", "booking_date": "2026-11-24", "reference": "Miete November"},
        headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex},
    ).json()
    assert unknown["status"] == "review"
    queue = {p["id"]: p for p in api.get("/v1/payments", headers=HEADERS).json()}
    assert seller["id"] in {s["id"] for s in queue[unknown["id"]]["suggestions"]}  # the same open amount
    placed = api.post(
        f"/v1/payments/{unknown['id']}/place", json={"invoice_id": seller["id"]}, headers=HEADERS
    )
    assert placed.json()["status"] == "matched"
    assert api.get(f"/v1/invoices/{seller['id']}", headers=HEADERS).json()["status"] == "paid"

    rt = runtime()
    with rt.db.session() as session:  # a direct debit collected with an overpayment, by RF reference
        receipt = payments.Receipt(
            f"test:{uuid.uuid4()}",
            "camt",
            Decimal("15000.00"),
            "EUR",
            date(2026, 11, 25),
            creditor_reference=payments.creditor_reference(buyer["number"]),
            end_to_end_id="E2E-" + buyer["number"],
            counterparty_iban_sha256=iban_digest(BUYER_IBAN),
        )
        collection = payments.record(session, receipt, rt.settings, actor="test")
        assert collection is not None
        assert (collection.status, collection.unallocated) == ("credit", Decimal("755.70"))
    assert api.get(f"/v1/invoices/{buyer['id']}", headers=HEADERS).json()["status"] == "paid"
    refund = api.post(
        f"/v1/payments/{collection.id}/refund",
        json={"amount": "755.70", "reason": "Überzahlung"},
        headers=HEADERS,
    )
    assert refund.json()["status"] == "refunded"

    with rt.db.session() as session:
        returned = payments.Receipt(
            f"test:{uuid.uuid4()}",
            "camt",
            Decimal("14244.30"),
            "EUR",
            date(2026, 11, 28),
            end_to_end_id="E2E-" + buyer["number"],
            returned=True,
            return_reason="MD06",
            return_fee=Decimal("3.00"),
        )
        payment = payments.record(session, returned, rt.settings, actor="test")
        assert payment is not None
        assert payment.status == "returned"
    reopened = api.get(f"/v1/invoices/{buyer['id']}", headers=HEADERS).json()
    assert (reopened["status"], reopened["open_amount"], reopened["charges_total"]) == (
        "issued",
        "14247.30",
        "3.00",
    )


def test_the_same_bank_file_twice_books_once(api: TestClient) -> None:
    billed = released(api)
    statement = camt053(
        (billed["seller"]["number"], Decimal("14244.30")),
        (billed["buyer"]["number"], Decimal("100.00")),
        date.today(),
    )
    first = api.post("/v1/bank-statements", content=statement, headers=XML).json()
    again = api.post("/v1/bank-statements", content=statement, headers=XML).json()
    assert (first["booked"], again["repeated"], again["id"]) == (2, True, first["id"])
    with runtime().db.session() as session:
        assert (
            session.scalar(
                select(Payment.id).where(Payment.bank_import_id == uuid.UUID(first["id"])).limit(1)
            )
            is not None
        )
        assert (
            len(
                session.scalars(select(Payment).where(Payment.bank_import_id == uuid.UUID(first["id"]))).all()
            )
            == 2
        )
    assert api.get(f"/v1/invoices/{billed['buyer']['id']}", headers=HEADERS).json()["paid_total"] == "100.00"


def test_statement_fixtures_of_both_versions_import_without_error(api: TestClient) -> None:
    for name in ("camt053_v02.xml", "camt053_v08.xml", "camt054_v08.xml"):
        response = api.post("/v1/bank-statements", content=(DATA / name).read_bytes(), headers=XML)
        assert response.status_code == 201, response.text
    broken = api.post("/v1/bank-statements", content=b"<Document>", headers=XML)
    assert broken.status_code == 422


def test_commissions_become_payable_are_run_with_advances_and_discounting(api: TestClient) -> None:
    billed = released(api)
    seller, buyer = billed["seller"], billed["buyer"]
    listed = api.get("/v1/commissions", params={"order_id": seller["order_id"]}, headers=HEADERS).json()
    assert [(c["status"], c["amount"]) for c in listed] == [("pending", "4788.00"), ("pending", "4788.00")]
    agent_id = listed[0]["agent_id"]
    advance = api.post(
        f"/v1/agents/{agent_id}/advances",
        json={"kind": "training_credit", "amount": "1500.00", "reference": f"EK-{uuid.uuid4().hex[:8]}"},
        headers=HEADERS,
    )
    assert advance.status_code == 201, advance.text
    api.post(
        "/v1/payments",
        json={"amount": "14244.30", "booking_date": "2026-11-24", "invoice_id": seller["id"]},
        headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex},
    )
    by_invoice = {
        c["invoice_id"]: c
        for c in api.get("/v1/commissions", params={"agent_id": agent_id}, headers=HEADERS).json()
    }
    assert by_invoice[seller["id"]]["status"] == "payable"
    assert by_invoice[buyer["id"]]["status"] == "pending"
    discounted = api.post(f"/v1/commissions/{by_invoice[buyer['id']]['id']}/discount", headers=HEADERS).json()
    assert (discounted["status"], Decimal(discounted["discount_rate"])) == ("payable", Decimal("2.5"))

    run = api.post(
        "/v1/commission-runs",
        json={"period_start": "2026-11-01", "period_end": "2026-11-30"},
        headers=HEADERS,
    )
    assert run.status_code == 201, run.text
    (statement,) = [s for s in run.json() if s["agent_id"] == agent_id]
    # 2 × 4,788.00 net, less 2.5 % of 4,788.00 (119.70), plus 19 % VAT, less the 1,500.00 offset.
    net = Decimal("9576.00") - Decimal("119.70")
    assert Decimal(statement["gross_total"]) == net + (net * Decimal("0.19")).quantize(Decimal("0.01"))
    assert Decimal(statement["payout"]) == Decimal(statement["gross_total"]) - Decimal("1500.00")
    with runtime().db.session() as session:
        document = session.get_one(Document, uuid.UUID(statement["document_id"]))
        assert document.type == "commission_statement"
        assert (
            session.scalars(select(Advance).where(Advance.agent_id == uuid.UUID(agent_id))).one().outstanding
            == 0
        )
    again = api.post(
        "/v1/commission-runs",
        json={"period_start": "2026-11-01", "period_end": "2026-11-30"},
        headers=HEADERS,
    )
    assert all(s["agent_id"] != agent_id for s in again.json())  # nothing left to pay this agent
    accounts = runtime().settings.booking_accounts
    booked = {
        entry["event"]: {(line["account"], line["debit"], line["credit"]) for line in entry["lines"]}
        for entry in api.get("/v1/journal", params={"voucher": statement["number"]}, headers=HEADERS).json()
    }
    vat = Decimal(statement["gross_total"]) - net
    assert booked["commission"] == {
        (accounts.commission_expense, "9576.00", "0.00"),
        (accounts.input_vat, str(vat), "0.00"),
        (accounts.discount_income, "0.00", "119.70"),
        (accounts.agent_payables, "0.00", statement["gross_total"]),
    }
    assert booked["commission_payout"] == {
        (accounts.agent_payables, statement["gross_total"], "0.00"),
        (accounts.advances, "0.00", "1500.00"),
        (accounts.bank, "0.00", statement["payout"]),
    }
    history = api.get(f"/v1/commissions/{by_invoice[seller['id']]['id']}/history", headers=HEADERS).json()
    assert [e["after"] for e in history] == ["pending", "payable", "paid_out"]


def test_a_party_is_purged_once_paid_delivered_and_booked(api: TestClient) -> None:
    billed = released(api, buyer=None, buyer_share=None, commissioned_by=["seller"])
    (invoice,) = billed.values()
    api.post(
        "/v1/payments",
        json={"amount": invoice["gross_total"], "booking_date": "2026-11-24", "invoice_id": invoice["id"]},
        headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex},
    )
    rt = runtime()
    with rt.db.session() as session:
        assert (
            session.get_one(Party, uuid.UUID(invoice["party_id"])).name is not None
        )  # not delivered, not booked
    deliver(invoice["document_id"])
    with rt.db.session() as session:
        assert handoffs.acknowledge_booking(session, [uuid.UUID(invoice["id"])], actor="accounting") == 1
    with rt.db.session() as session:
        party = session.get_one(Party, uuid.UUID(invoice["party_id"]))
        assert (party.name, party.email, party.iban, party.purged_at is not None) == (None, None, None, True)
    assert (
        api.get(f"/v1/invoices/{invoice['id']}", headers=HEADERS).json()["gross_total"]
        == invoice["gross_total"]
    )
