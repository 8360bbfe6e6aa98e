"""Agents' commissions: earned with an invoice, payable once it is paid (or issued, by setting),
paid out by a commission run's self-billed statement, less advances and discounting fees."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import history, journal, numbers
from postroom.core.billing.models import Advance, Commission, CommissionStatement, Invoice, Order, Party
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.billing.parties import recipient
from postroom.core.billing.states import CommissionStatus
from postroom.core.models import utcnow
from postroom.documents.types.commission_statement import CommissionStatementData
from postroom.money import ZERO, decimal_text, percent_of
from postroom.settings import Settings

ENTITY = "commission"


class CommissionStateError(Exception):
    """The commission or advance does not allow the step."""


def earn(
    session: Session, order: Order, invoice: Invoice, settings: Settings, *, actor: str
) -> list[Commission]:
    """One pending commission per agent of the order on the invoice's net courtage."""
    earned = []
    for agent in order.agents:
        rate = Decimal(agent["share"])
        commission = Commission(
            id=uuid.uuid4(),
            order_id=order.id,
            invoice_id=invoice.id,
            agent_id=uuid.UUID(agent["agent_id"]),
            status=CommissionStatus.PENDING,
            base_amount=invoice.net_total,
            rate=rate,
            amount=percent_of(invoice.net_total, rate),
        )
        session.add(commission)
        session.flush()
        history.record(
            session,
            ENTITY,
            commission.id,
            "earned",
            actor=actor,
            after=CommissionStatus.PENDING,
            invoice=invoice.number,
            amount=commission.amount,
        )
        earned.append(commission)
    if settings.commission_payable_on == "invoice_issued":
        make_payable(session, earned, actor=actor, reason="payable when the invoice is issued")
    return earned


def on_invoice(session: Session, invoice_id: uuid.UUID) -> list[Commission]:
    """The commissions earned on one invoice, locked."""
    query = select(Commission).where(Commission.invoice_id == invoice_id).with_for_update()
    return list(session.scalars(query))


def make_payable(session: Session, commissions: Iterable[Commission], *, actor: str, reason: str) -> None:
    """Pending commissions become payable."""
    for commission in commissions:
        if commission.status is CommissionStatus.PENDING:
            commission.payable_at = utcnow()
            history.move(
                session, ENTITY, commission, CommissionStatus.PAYABLE, "payable", actor=actor, reason=reason
            )


def void(session: Session, invoice_id: uuid.UUID, *, actor: str, reason: str) -> None:
    """The invoice was cancelled: its commissions not yet paid out lapse."""
    for commission in on_invoice(session, invoice_id):
        if commission.status in (CommissionStatus.PENDING, CommissionStatus.PAYABLE):
            history.move(
                session,
                ENTITY,
                commission,
                CommissionStatus.CANCELLED,
                "cancelled",
                actor=actor,
                reason=reason,
            )


def discount(session: Session, commission: Commission, settings: Settings, *, actor: str) -> None:
    """Pay a pending commission early, minus the discounting fee on the next statement."""
    if commission.status is not CommissionStatus.PENDING:
        raise CommissionStateError(f"commission {commission.id} is {commission.status}, not pending")
    commission.discount_rate = settings.commission_discount_rate
    make_payable(
        session, [commission], actor=actor, reason=f"discounted at {settings.commission_discount_rate} %"
    )


def book_advance(
    session: Session,
    agent_id: uuid.UUID,
    *,
    kind: str,
    amount: Decimal,
    reference: str,
    order_id: uuid.UUID | None,
    settings: Settings,
    actor: str,
    reason: str | None,
) -> Advance:
    """Record money paid to an agent ahead of commissions; it is offset against later statements."""
    existing = session.scalars(select(Advance).where(Advance.reference == reference)).first()
    if existing is not None:
        if (existing.agent_id, existing.amount, existing.kind) != (agent_id, amount, kind):
            raise CommissionStateError(f"advance {reference} exists with other figures")
        return existing
    advance = Advance(
        id=uuid.uuid4(),
        agent_id=agent_id,
        kind=kind,
        reference=reference,
        order_id=order_id,
        amount=amount,
        outstanding=amount,
    )
    session.add(advance)
    session.flush()
    journal.book_advance(session, advance, settings.business_day(), settings)
    history.record(
        session, "advance", advance.id, "booked", actor=actor, reason=reason, amount=amount, kind=kind
    )
    return advance


def run(
    session: Session, settings: Settings, *, period_start: date, period_end: date, today: date, actor: str
) -> tuple[list[CommissionStatement], Outbox]:
    """Pay out every payable commission not yet on a statement: one statement per agent (a further
    one for each additional discounted commission, since a statement discounts one)."""
    payable = session.scalars(
        select(Commission)
        .where(Commission.status == CommissionStatus.PAYABLE, Commission.statement_id.is_(None))
        .order_by(Commission.agent_id, Commission.created_at)
        .with_for_update()
    ).all()
    by_agent: dict[uuid.UUID, list[Commission]] = defaultdict(list)
    for commission in payable:
        by_agent[commission.agent_id].append(commission)
    statements, outbox = [], Outbox()
    for agent_id, commissions in by_agent.items():
        for group in _statement_groups(commissions):
            statement = _statement(
                session, settings, agent_id, group, period_start, period_end, today, actor, outbox
            )
            statements.append(statement)
    return statements, outbox


def _statement_groups(commissions: list[Commission]) -> list[list[Commission]]:
    plain = [c for c in commissions if c.discount_rate is None]
    discounted = [c for c in commissions if c.discount_rate is not None]
    if not discounted:
        return [plain]
    return [plain + discounted[:1], *([c] for c in discounted[1:])]


def _statement(
    session: Session,
    settings: Settings,
    agent_id: uuid.UUID,
    commissions: list[Commission],
    period_start: date,
    period_end: date,
    today: date,
    actor: str,
    outbox: Outbox,
) -> CommissionStatement:
    agent = session.get_one(Party, agent_id)
    lines, discounted = [], None
    for commission in commissions:
        invoice = session.get_one(Invoice, commission.invoice_id)
        order = session.get_one(Order, commission.order_id)
        reference = f"{order.upstream_id}/{invoice.number}"
        line: dict[str, Any] = {
            "order_reference": reference,
            "description": f"Provisionsanteil {decimal_text(commission.rate)} % aus {invoice.number}",
            "base_amount": str(commission.base_amount),
            "rate": decimal_text(commission.rate),
        }
        if not agent.small_business:
            line["tax_rate"] = decimal_text(order.tax_rate)
        lines.append(line)
        if commission.discount_rate is not None:
            discounted = (reference, commission.discount_rate)
    number = numbers.next_number(session, settings.commission_statement_prefix, today.year)
    data: dict[str, Any] = {
        "number": number,
        "issue_date": today.isoformat(),
        "period": {"start": period_start.isoformat(), "end": min(period_end, today).isoformat()},
        "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
        "agent_small_business": agent.small_business,
        "commissions": lines,
        "payout_date": today.isoformat(),
    }
    if discounted is not None:
        reference, rate = discounted
        data["discounting"] = {
            "description": f"Diskontierung vorzeitige Auszahlung {reference} ({decimal_text(rate)} %)",
            "rate": decimal_text(rate),
            "applies_to": reference,
        }
    before_offsets = CommissionStatementData.model_validate(data).figures()
    offsets = _offset_advances(session, agent_id, before_offsets.payout)
    if offsets:
        data["advances_offset"] = [
            {
                "reference": advance.reference,
                "description": f"Verrechnung {_KIND[advance.kind]} {advance.reference}",
                "amount": str(amount),
            }
            for advance, amount in offsets
        ]
    figures = CommissionStatementData.model_validate(data).figures()
    statement = CommissionStatement(
        id=uuid.uuid4(),
        run_key=f"{period_start}/{period_end}",
        agent_id=agent_id,
        number=number,
        period_start=period_start,
        period_end=period_end,
        gross_total=figures.totals.gross,
        discount=figures.discount,
        advances_offset=figures.advances,
        offsets=[{"advance_id": str(advance.id), "amount": str(amount)} for advance, amount in offsets],
        payout=figures.payout,
    )
    session.add(statement)
    session.flush()
    body = {
        "type": "commission_statement",
        "locale": "de",
        "recipient": recipient(agent).model_dump(mode="json", exclude_none=True),
        "channels": ["email", "archive"] if agent.email else ["print", "archive"],
        "data": data,
    }
    statement.document_id = submit(session, outbox, body, key=f"core:{statement.id}", api_key_id=actor).id
    journal.book_commission_statement(session, statement, figures.totals, today, settings)
    for advance, amount in offsets:
        advance.outstanding -= amount
    for commission in commissions:
        commission.statement_id = statement.id
        commission.paid_out_at = utcnow()
        history.move(
            session, ENTITY, commission, CommissionStatus.PAID_OUT, "paid out", actor=actor, statement=number
        )
    return statement


_KIND = {"advance": "Vorschuss", "training_credit": "Einarbeitungskredit"}


def _offset_advances(
    session: Session, agent_id: uuid.UUID, available: Decimal
) -> list[tuple[Advance, Decimal]]:
    """Outstanding advances, oldest first, offset up to what the statement pays out."""
    advances = session.scalars(
        select(Advance)
        .where(Advance.agent_id == agent_id, Advance.outstanding > 0)
        .order_by(Advance.booked_at, Advance.reference)
        .with_for_update()
    ).all()
    offsets = []
    for advance in advances:
        amount = min(advance.outstanding, available)
        if amount <= ZERO:
            break
        offsets.append((advance, amount))
        available -= amount
    return offsets
