"""Orders: accepted from upstream systems (idempotent by their order id), checked, corrected by
clerks, then released into one invoice per billed party, or rejected with a follow-up."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.core.billing import commissions, followups, history, invoices, numbers
from postroom.core.billing.models import Invoice, Order, Party
from postroom.core.billing.order_checks import check_order, due_after_commissioning_party
from postroom.core.billing.order_request import OrderRequest
from postroom.core.billing.outbox import Outbox, issuer, submit
from postroom.core.billing.parties import save_contact, save_party
from postroom.core.billing.states import OrderStatus
from postroom.core.documents import IdempotencyConflict
from postroom.core.models import utcnow
from postroom.settings import Settings

ENTITY = "order"


class OrderStateError(Exception):
    """The order is not in a state that allows the step; ``findings`` say why, where known."""

    def __init__(self, message: str, findings: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


@dataclass(frozen=True, slots=True)
class Accepted:
    """An order and whether this call created it."""

    order: Order
    created: bool


def fingerprint(request: OrderRequest) -> str:
    """SHA-256 of the order in canonical JSON."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept(session: Session, request: OrderRequest, *, api_key_id: str) -> Accepted:
    """Record and check a new order, or return the one with this upstream id."""
    digest = fingerprint(request)
    existing = session.scalars(
        select(Order).where(Order.api_key_id == api_key_id, Order.upstream_id == request.order_id)
    ).first()
    if existing is not None:
        if existing.request_sha256 != digest:
            raise IdempotencyConflict(f"order {request.order_id} was submitted before with other content")
        return Accepted(existing, created=False)
    order = Order(
        id=uuid.uuid4(), api_key_id=api_key_id, upstream_id=request.order_id, status=OrderStatus.READY
    )
    _apply(session, order, request)
    session.add(order)
    session.flush()
    history.record(
        session,
        ENTITY,
        order.id,
        "received",
        actor=api_key_id,
        after=order.status,
        findings=len(order.findings),
    )
    _check(session, order, request, actor=api_key_id, initial=True)
    return Accepted(order, created=True)


def correct(session: Session, order: Order, request: OrderRequest, *, actor: str, reason: str | None) -> None:
    """A clerk's corrected version of the order replaces it; the checks run again."""
    if order.status not in (OrderStatus.NEEDS_REVIEW, OrderStatus.READY):
        raise OrderStateError(f"order {order.upstream_id} is {order.status} and can no longer be corrected")
    if request.order_id != order.upstream_id:
        raise OrderStateError("a correction must keep the order_id")
    _apply(session, order, request)
    history.record(session, ENTITY, order.id, "corrected", actor=actor, reason=reason)
    _check(session, order, request, actor=actor, initial=False)


def _apply(session: Session, order: Order, request: OrderRequest) -> None:
    seller = save_party(session, request.seller, request.seller.kind, order.seller_id)
    buyer = (
        save_party(session, request.buyer, request.buyer.kind, order.buyer_id)
        if request.buyer is not None
        else None
    )
    agents = [save_party(session, agent, "agent", None) for agent in request.agents]
    contact = save_contact(session, str(request.contacts.submitter_email), order.contact_id)
    session.flush()
    order.request_sha256 = fingerprint(request)
    order.property_kind = request.property.kind
    order.object_id = request.property.object_id
    order.object_description = request.property.description
    order.price, order.currency, order.tax_rate = request.price, request.currency, request.tax_rate
    order.contract_date = request.contract_date
    order.seller_id, order.buyer_id, order.contact_id = seller.id, buyer.id if buyer else None, contact.id
    order.shares = [
        {
            "role": role,
            "rate": str(share.rate),
            "amount": str(share.amount),
            "commissioned": role in request.commissioned_by,
        }
        for role, share in request.shares().items()
    ]
    order.due_after = due_after_commissioning_party(request)
    order.agents = [
        {"agent_id": str(party.id), "share": str(agent.share)}
        for party, agent in zip(agents, request.agents, strict=True)
    ]
    order.agency_email = str(request.contacts.agency_email) if request.contacts.agency_email else None


def _check(session: Session, order: Order, request: OrderRequest, *, actor: str, initial: bool) -> None:
    findings = [
        finding.as_dict() for finding in check_order(request, duplicate_of=_duplicate_of(session, order))
    ]
    order.findings = findings
    target = OrderStatus.NEEDS_REVIEW if findings else OrderStatus.READY
    if target is not order.status:
        history.move(
            session, ENTITY, order, target, "checked", actor=actor, findings=[f["code"] for f in findings]
        )
    elif not initial:
        history.record(
            session, ENTITY, order.id, "checked", actor=actor, findings=[f["code"] for f in findings]
        )


def _duplicate_of(session: Session, order: Order) -> str | None:
    """An earlier, not rejected order on the same object with the same seller and buyer."""
    seller, buyer = (
        session.get_one(Party, order.seller_id),
        session.get(Party, order.buyer_id) if order.buyer_id else None,
    )
    others = session.scalars(
        select(Order).where(
            Order.object_id == order.object_id, Order.id != order.id, Order.status != OrderStatus.REJECTED
        )
    ).all()
    for other in others:
        other_seller = session.get_one(Party, other.seller_id)
        other_buyer = session.get(Party, other.buyer_id) if other.buyer_id else None
        if _same(seller, other_seller) and _same(buyer, other_buyer):
            return other.upstream_id
    return None


def _same(one: Party | None, other: Party | None) -> bool:
    if one is None or other is None:
        return one is other
    if one.id == other.id:
        return True
    if one.reference and other.reference:
        return one.reference == other.reference
    return (one.name or "").casefold() == (other.name or "").casefold() and one.postcode == other.postcode


def release(
    session: Session, order: Order, settings: Settings, *, today: date, actor: str
) -> tuple[list[Invoice], Outbox]:
    """Bill a ready order: one invoice per billed party, issued at once, and the agents' commissions."""
    if order.status is not OrderStatus.READY:
        raise OrderStateError(f"order {order.upstream_id} is {order.status}, not ready", order.findings)
    issuer(settings)
    outbox, billed = Outbox(), []
    for share in order.shares:
        party_id = order.seller_id if share["role"] == "seller" else order.buyer_id
        assert party_id is not None
        party = session.get_one(Party, party_id)
        line = invoices.courtage_line(order, Decimal(share["rate"]), Decimal(share["amount"]))
        invoice = invoices.new_invoice(
            session,
            kind="invoice",
            party_id=party_id,
            lines=[line],
            currency=order.currency,
            channels=invoices.channels_for(party),
            order_id=order.id,
            role=share["role"],
            delivery_date=order.contract_date,
            actor=actor,
        )
        outbox.extend(invoices.issue(session, invoice, settings, today=today, actor=actor))
        commissions.earn(session, order, invoice, settings, actor=actor)
        billed.append(invoice)
    if order.due_after is not None:
        first = next(i for i in billed if i.role == order.due_after)
        for invoice in billed:
            if invoice is not first:
                invoice.due_after_id = first.id
    order.released_at = utcnow()
    history.move(
        session,
        ENTITY,
        order,
        OrderStatus.RELEASED,
        "released",
        actor=actor,
        invoices=[i.number for i in billed],
    )
    return billed, outbox


def reject(
    session: Session, order: Order, settings: Settings, *, reason: str, today: date, actor: str
) -> Outbox:
    """Reject the order: tell the submitter and the agency by e-mail, and schedule a follow-up."""
    if order.status not in (OrderStatus.NEEDS_REVIEW, OrderStatus.READY):
        raise OrderStateError(f"order {order.upstream_id} is {order.status} and cannot be rejected")
    history.move(session, ENTITY, order, OrderStatus.REJECTED, "rejected", actor=actor, reason=reason)
    due = today + timedelta(days=settings.followup_wait_days)
    subject = f"Auftrag {order.upstream_id} abgelehnt"
    task = followups.schedule(
        session,
        case_kind="order",
        case_id=order.id,
        subject=subject,
        due_date=due,
        options=followups.ORDER_REJECTED_OPTIONS,
        assignee_group=settings.followup_group,
        actor=actor,
    )
    outbox = Outbox()
    contact = session.get(Party, order.contact_id) if order.contact_id else None
    addresses = [("Einreicher", contact.email if contact else None), ("Maklerbüro", order.agency_email)]
    for who, email in addresses:
        if email is None:
            continue
        body = {
            "type": "followup_notice",
            "locale": "de",
            "recipient": {
                "name": f"{who} des Auftrags {order.upstream_id}",
                "email": email,
                "kind": "internal",
            },
            "channels": ["email"],
            "data": {
                "number": numbers.next_number(session, settings.followup_prefix, today.year),
                "issue_date": today.isoformat(),
                "seller": issuer(settings).model_dump(mode="json", exclude_none=True),
                "due_date": due.isoformat(),
                "subject": subject,
                "assignee_group": settings.followup_group,
                "context": {"order_reference": order.upstream_id},
                "options": task.options,
                "note": reason,
            },
        }
        submit(session, outbox, body, key=f"core:{task.id}:{who}", api_key_id=actor)
    return outbox
