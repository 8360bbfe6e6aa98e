"""Customer accounts, account statements and payment plans over the API on the real PostgreSQL,
with a fixed clock: invoices are issued on fixed days and every run, review and payment names its
own date.

Dunning runs select every overdue item in the database, so these tests live in 2026-05..11: after
the dunning and booking tests' calendars (their runs end by 2026-03-20 and never reach these
items) and before today's business day (the booking export's day, so every entry booked here goes
out with that day's file). Each test works in its own stretch, earlier than the tests before it
(a run never reaches items due after its key date; earlier tests leave only paid items behind).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postroom.core.billing.models import Charge, CoreEvent, Invoice, Party
from postroom.core.models import Document
from postroom.documents.types.account_statement import AccountStatementRequest
from postroom.documents.types.payment_plan import PaymentPlanRequest
from postroom.jobs import receivables
from postroom.jobs.scheduler import schedule
from postroom.runtime import runtime
from tests.receivables import HEADERS, dunning_run, issued_invoice, receivables_client

EXPANDED: list[uuid.UUID] = []
"""The bulk runs the API asked to expand (the workers' part is stubbed here)."""


@pytest.fixture(scope="module")
def api(hub_env: dict[str, str]) -> Iterator[TestClient]:
    with receivables_client(EXPANDED) as client:
        yield client


def customer(kind: str = "business") -> uuid.UUID:
    """A new customer with a full address and an e-mail address."""
    with runtime().db.session() as session:
        party = Party(
            id=uuid.uuid4(),
            kind=kind,
            reference=f"K-{uuid.uuid4().hex[:8].upper()}",
            name="Schmidt & Söhne Bauträger KG" if kind == "business" else "Erika Mustermann",
            street="Am Römerturm 3",
            postcode="80331",
            city="München",
            country="DE",
            email="rechnungen@schmidt-soehne.example",
        )
        session.add(party)
        return party.id


def issued(party_id: uuid.UUID, day: date, net: str) -> Invoice:
    """An invoice of ``net`` plus 19 % VAT e-mailed and archived, issued on ``day`` (due 14 days later)."""
    return issued_invoice(party_id, day, net, channels=["email", "archive"])


def pay(api: TestClient, invoice: Invoice, amount: str, booking_date: str) -> None:
    body = {"amount": amount, "booking_date": booking_date, "invoice_id": str(invoice.id)}
    response = api.post("/v1/payments", json=body, headers={**HEADERS, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text


def review(api: TestClient, as_of: str) -> dict[str, Any]:
    response = api.post(f"/v1/payment-plans/review?as_of={as_of}", headers=HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def agree(api: TestClient, party_id: uuid.UUID, items: list[Invoice], **terms: Any) -> Any:
    body = {"party_id": str(party_id), "invoice_ids": [str(item.id) for item in items], **terms}
    return api.post("/v1/payment-plans", json=body, headers=HEADERS)


def plan_of(api: TestClient, plan_id: str) -> dict[str, Any]:
    return dict(api.get(f"/v1/payment-plans/{plan_id}", headers=HEADERS).json())


def invoice_of(api: TestClient, invoice: Invoice) -> dict[str, Any]:
    return dict(api.get(f"/v1/invoices/{invoice.id}", headers=HEADERS).json())


def request_of(document_id: str | uuid.UUID) -> dict[str, Any]:
    with runtime().db.session() as session:
        document = session.get_one(Document, uuid.UUID(str(document_id)))
        assert document.payload is not None
        return {"type": document.type, "channels": document.channels, **document.payload}


def open_charges(party_id: uuid.UUID) -> dict[str, Decimal]:
    with runtime().db.session() as session:
        rows = session.execute(
            select(Charge.kind, func.sum(Charge.open_amount))
            .where(Charge.party_id == party_id, Charge.status == "open")
            .group_by(Charge.kind)
        )
        return dict(rows.all())


def test_the_account_shows_balance_open_items_days_late_reminders_and_flags_and_goes_out_as_statements(
    api: TestClient,
) -> None:
    party = customer()
    early = issued(party, date(2026, 5, 4), "1000.00")  # 1,190.00 due 2026-05-18
    prompt = issued(party, date(2026, 6, 1), "500.00")  # 595.00 due 2026-06-15
    pay(api, early, "1190.00", "2026-08-16")  # 90 days late
    pay(api, prompt, "645.00", "2026-06-10")  # early: 0 days late, 50.00 stays as credit
    first = issued(party, date(2026, 8, 3), "4000.00")  # 4,760.00 due 2026-08-17
    second = issued(party, date(2026, 8, 3), "2000.00")  # 2,380.00 due 2026-08-17
    for key_date in ("2026-08-25", "2026-09-18", "2026-10-02", "2026-10-16"):  # levels 0 … 3
        dunning_run(api, key_date)
    big = customer()
    issued(big, date(2026, 10, 5), "10000.00")  # 11,900.00, due 2026-10-19: one day overdue

    account = api.get(f"/v1/accounts/{party}?as_of=2026-10-20", headers=HEADERS).json()
    assert [
        (i["number"], i["open_amount"], i["dunning_level"], i["days_overdue"]) for i in account["items"]
    ] == [
        (first.number, "4760.00", 3, 64),
        (second.number, "2380.00", 3, 64),
    ]
    assert not any(i["in_collection"] or i["in_payment_plan"] or i["disputed"] for i in account["items"])
    charges = open_charges(party)
    assert (charges["flat_rate"], charges["fee"]) == (Decimal("40.00"), Decimal("7.50"))  # €40 once, 3 × 2.50
    assert Decimal(account["charges_total"]) == sum(charges.values()) > Decimal("47.50")
    assert account["credit_total"] == "50.00"
    assert Decimal(account["balance"]) == Decimal("7140.00") + sum(charges.values()) - Decimal("50.00")
    # (1,190.00 × 90 + 595.00 × 0) / 1,785.00 = 60.0 days, weighted by amount (a simple mean: 45)
    assert account["behaviour"] == {"paid_items": 2, "average_days_late": "60.0", "reminders": 4}
    assert account["personal_visit"] == {
        "raised": True,
        "reasons": ["4 reminders in the last 365 days (from 3)"],
    }
    assert account["order_block"]["reasons"] == [
        f"item {first.number} reached dunning level 3 (from 3)",
        f"item {second.number} reached dunning level 3 (from 3)",
        "payments arrive 60.0 days late on average (from 60)",
    ]
    a_year_later = api.get(f"/v1/accounts/{party}?as_of=2027-10-01", headers=HEADERS).json()
    assert a_year_later["behaviour"]["reminders"] == 2  # the letters of 2026-10-02 and 2026-10-16

    blocked = api.get("/v1/accounts?flag=order_block&as_of=2026-10-20", headers=HEADERS).json()
    assert str(party) in [row["party_id"] for row in blocked]
    assert str(big) not in [row["party_id"] for row in blocked]
    assert all(
        set(row) == {"party_id", "customer_number", "balance", "reasons"} for row in blocked
    )  # no name
    listed = api.get("/v1/accounts?flag=personal_visit&as_of=2026-10-20", headers=HEADERS).json()
    visits = {row["party_id"]: row for row in listed}
    assert {str(party), str(big)} <= set(visits)
    assert visits[str(big)]["reasons"] == ["balance 11900.00 reaches 10000.00"]
    assert api.get(f"/v1/accounts/{uuid.uuid4()}", headers=HEADERS).status_code == 404
    assert api.get("/v1/accounts?flag=vip", headers=HEADERS).status_code == 422

    sent = api.post(f"/v1/accounts/{party}/statements", json={"as_of": "2026-10-20"}, headers=HEADERS)
    assert sent.status_code == 201, sent.text
    assert sent.json()["number"].startswith("KA-2026-")
    body = request_of(sent.json()["document_id"])
    statement = AccountStatementRequest.model_validate(body)
    assert statement.data.opening_balance == Decimal("0.00")
    balances = statement.data.balances()
    assert balances.closing == Decimal(account["balance"])  # computed by the document from the entries
    assert [e.kind for e in statement.data.entries][:2] == ["invoice", "invoice"]
    assert [e.kind for e in statement.data.entries][-1] == "credit"
    # from the oldest entry (the credit received on 2026-06-10) to the statement's day
    assert (statement.data.period.start, statement.data.period.end) == (date(2026, 6, 10), date(2026, 10, 20))

    runs = api.post("/v1/account-statements/runs", json={"as_of": "2026-10-21"}, headers=HEADERS)
    assert runs.status_code == 201, runs.text
    run = runs.json()
    assert EXPANDED[-1] == uuid.UUID(run["batch_id"])
    with runtime().db.session() as session:
        documents = list(
            session.scalars(select(Document).where(Document.batch_id == uuid.UUID(run["batch_id"])))
        )
        assert len(documents) == run["statements"] >= 2
        assert {document.type for document in documents} == {"account_statement"}
        numbers = {document.customer_ref for document in documents}
        references = set(session.scalars(select(Party.reference).where(Party.id.in_([party, big]))))
        assert references <= numbers
    again = api.post("/v1/account-statements/runs", json={"as_of": "2026-10-21"}, headers=HEADERS)
    assert again.status_code == 200
    assert (again.json()["repeated"], again.json()["batch_id"], again.json()["id"]) == (
        True,
        run["batch_id"],
        run["id"],
    )
    with runtime().db.session() as session:
        runs_recorded = session.scalar(
            select(func.count()).where(
                CoreEvent.entity == "statement_run", CoreEvent.entity_id == uuid.UUID(run["id"])
            )
        )
        assert runs_recorded == 1


def test_a_plan_of_three_instalments_sums_exactly_and_payments_mark_them_paid_until_it_is_completed(
    api: TestClient,
) -> None:
    party = customer("consumer")
    large = issued(party, date(2026, 6, 1), "1000.00")  # 1,190.00 due 2026-06-15
    small = issued(party, date(2026, 6, 1), "500.00")  # 595.00
    response = agree(
        api,
        party,
        [small, large],
        down_payment="100.00",
        instalments=3,
        first_due_date="2026-07-01",
        issue_date="2026-06-20",
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["number"].startswith("RV-2026-")
    assert (plan["status"], plan["total"], plan["down_payment"], plan["paid_at_start"]) == (
        "active",
        "1785.00",
        "100.00",
        "0.00",
    )
    # 1,685.00 / 3 = 561.666…: two of 561.67, the last takes the rest
    assert [(i["sequence"], i["due_date"], i["amount"]) for i in plan["instalments"]] == [
        (0, "2026-06-20", "100.00"),
        (1, "2026-07-01", "561.67"),
        (2, "2026-08-01", "561.67"),
        (3, "2026-09-01", "561.66"),
    ]
    assert sum(Decimal(i["amount"]) for i in plan["instalments"]) == Decimal(plan["total"])
    document = PaymentPlanRequest.model_validate(request_of(plan["document_id"]))
    assert [str(i.amount) for i in document.data.schedule().installments] == ["561.67", "561.67", "561.66"]
    assert invoice_of(api, large)["payment_plan_id"] == plan["id"]

    pay(api, large, "661.67", "2026-06-24")
    first_review = review(api, "2026-06-26")
    assert (first_review["instalments_paid"], first_review["failed"]) == (2, [])
    assert [i["status"] for i in plan_of(api, plan["id"])["instalments"]] == ["paid", "paid", "open", "open"]
    dunned = dunning_run(api, "2026-06-25")
    reasons = {s["invoice_number"]: s["reason"] for s in dunned["skipped"]}
    assert reasons[large.number] == reasons[small.number] == "in a payment plan"

    pay(api, large, "528.33", "2026-07-30")
    pay(api, small, "33.34", "2026-07-30")
    review(api, "2026-08-10")
    assert [i["status"] for i in plan_of(api, plan["id"])["instalments"]] == ["paid", "paid", "paid", "open"]
    pay(api, small, "561.66", "2026-08-28")
    done = review(api, "2026-09-03")
    assert done["completed"] == [plan["number"]]
    finished = plan_of(api, plan["id"])
    assert (finished["status"], finished["closed_on"], finished["paid_since_agreement"]) == (
        "completed",
        "2026-09-03",
        "1785.00",
    )
    assert [i["status"] for i in finished["instalments"]] == ["paid"] * 4
    assert invoice_of(api, small)["payment_plan_id"] is None
    actions = [
        e["action"] for e in api.get(f"/v1/payment-plans/{plan['id']}/history", headers=HEADERS).json()
    ]
    assert (actions[0], actions[-1]) == ("agreed", "completed")


def test_two_missed_instalments_fail_the_plan_and_the_next_dunning_run_raises_the_items_again(
    api: TestClient,
) -> None:
    party = customer()
    invoice = issued(party, date(2026, 5, 4), "4000.00")  # 4,760.00 due 2026-05-18
    assert dunning_run(api, "2026-05-26")["letters"] >= 1
    assert invoice_of(api, invoice)["dunning_level"] == 0
    response = agree(
        api,
        party,
        [invoice],
        down_payment="760.00",
        instalments=4,
        first_due_date="2026-06-15",
        issue_date="2026-06-01",
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert [i["amount"] for i in plan["instalments"]] == [
        "760.00",
        "1000.00",
        "1000.00",
        "1000.00",
        "1000.00",
    ]

    pay(api, invoice, "760.00", "2026-06-02")
    review(api, "2026-06-03")
    review(api, "2026-06-20")  # due 2026-06-15 plus 5 days of grace: not missed yet
    assert [i["status"] for i in plan_of(api, plan["id"])["instalments"]][:2] == ["paid", "open"]
    one_missed = review(api, "2026-06-21")
    assert (one_missed["instalments_missed"], one_missed["failed"]) == (1, [])
    assert plan_of(api, plan["id"])["status"] == "active"

    failing = review(api, "2026-07-21")
    assert failing["failed"] == [plan["number"]]
    failed = plan_of(api, plan["id"])
    assert (failed["status"], failed["closed_on"]) == ("failed", "2026-07-21")
    assert [i["status"] for i in failed["instalments"]] == ["paid", "missed", "missed", "open", "open"]
    assert [item["invoice_id"] for item in failed["items"]] == [str(invoice.id)]
    view = invoice_of(api, invoice)
    assert (view["payment_plan_id"], view["open_amount"]) == (None, "4000.00")
    history = api.get(f"/v1/invoices/{invoice.id}/history", headers=HEADERS).json()
    assert history[-1]["action"] == "payment plan failed"
    assert "2 instalments missed" in history[-1]["reason"]

    letter = next(
        letter
        for letter in dunning_run(api, "2026-07-22")["proposal"]
        if any(item["invoice_id"] == str(invoice.id) for item in letter["items"])
    )
    assert (letter["level"], letter["items"][0]["open_amount"]) == (1, "4000.00")
    assert review(api, "2026-07-23")["reviewed"] == 0  # a failed plan is not reviewed again


def test_invalid_plans_are_422_with_the_field_and_refused_items_409_with_the_reason(api: TestClient) -> None:
    party, stranger = customer(), customer()
    plain = issued(party, date(2026, 5, 4), "1000.00")
    disputed = issued(party, date(2026, 5, 4), "1000.00")
    foreign = issued(stranger, date(2026, 5, 4), "1000.00")
    dispute = {"disputed": True, "reason": "Leistung bestritten"}
    assert api.put(f"/v1/invoices/{disputed.id}/dunning", json=dispute, headers=HEADERS).status_code == 200
    terms = {"instalments": 2, "first_due_date": "2026-06-15", "issue_date": "2026-05-25"}

    def fields(response: Any, status: int) -> list[str]:
        assert response.status_code == status, response.text
        return [error["field"] for error in response.json()["errors"]]

    assert fields(agree(api, party, [plain], **{**terms, "instalments": 0}), 422) == ["instalments"]
    assert fields(agree(api, party, [plain], **{**terms, "down_payment": "-5.00"}), 422) == ["down_payment"]
    assert fields(agree(api, party, [plain], **{**terms, "first_due_date": "2026-05-24"}), 422) == [
        "first_due_date"
    ]
    assert fields(agree(api, party, [plain], **{**terms, "down_payment": "1190.00"}), 422) == ["down_payment"]
    assert fields(agree(api, party, [plain, plain], **terms), 422) == ["invoice_ids[1]"]

    refused = agree(api, party, [plain, disputed], **terms)
    assert fields(refused, 409) == ["invoice_ids[1]"]
    assert refused.json()["errors"][0]["message"] == "the claim is disputed"
    other = agree(api, party, [plain, foreign], **terms)
    assert fields(other, 409) == ["invoice_ids[1]"]
    assert other.json()["errors"][0]["message"] == "the invoice belongs to another customer"
    assert invoice_of(api, plain)["payment_plan_id"] is None  # nothing of a refused plan is kept

    plan = agree(api, party, [plain], **terms).json()
    twice = agree(api, party, [plain], **terms)
    assert fields(twice, 409) == ["invoice_ids[0]"]
    assert twice.json()["errors"][0]["message"] == f"the invoice is already in payment plan {plan['number']}"

    cancel = {"reason": "Kunde zahlt doch in einer Summe", "as_of": "2026-06-01"}
    cancelled = api.post(f"/v1/payment-plans/{plan['id']}/cancel", json=cancel, headers=HEADERS)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert invoice_of(api, plain)["payment_plan_id"] is None
    assert api.post(f"/v1/payment-plans/{plan['id']}/cancel", json=cancel, headers=HEADERS).status_code == 409
    assert api.get(f"/v1/payment-plans/{uuid.uuid4()}", headers=HEADERS).status_code == 404


def test_the_review_is_scheduled_daily_before_the_dunning_run(api: TestClient) -> None:
    rt = runtime()
    names = [job.name for job in schedule(rt.settings)]
    assert "payment plan review" in names
    outcome = receivables.payment_plan_review(rt)  # today: every plan here is closed
    assert (outcome.as_of, outcome.failed) == (rt.settings.business_day(), [])
