"""``/v1/orders``: courtage orders from upstream systems, checked, corrected, released or rejected."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from postroom.api.auth import require
from postroom.api.core_calls import HistoryEntry, business_day, enqueue, history_view, runtime_of
from postroom.api.problems import ProblemError
from postroom.core.billing import orders
from postroom.core.billing.models import Invoice, Order
from postroom.core.billing.order_request import OrderRequest
from postroom.settings import ApiKey

router = APIRouter(prefix="/v1/orders", tags=["core"])


class OrderView(BaseModel):
    """An order's state, findings and invoices (ids and numbers, no personal data)."""

    id: uuid.UUID
    order_id: str
    status: str
    findings: list[dict[str, Any]]
    invoices: list[dict[str, Any]]
    created_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, order: Order, invoices: list[Invoice]) -> OrderView:
        """The view of ``order`` and its invoices."""
        return cls(
            id=order.id,
            order_id=order.upstream_id,
            status=order.status,
            findings=order.findings,
            invoices=[
                {"id": str(i.id), "number": i.number, "role": i.role, "kind": i.kind, "status": i.status}
                for i in invoices
            ],
            created_at=order.created_at,
            released_at=order.released_at,
        )


class Decision(BaseModel):
    """A clerk's reason for a step."""

    reason: str = Field(min_length=3, max_length=500)


def _view(request: Request, order_id: uuid.UUID) -> OrderView:
    rt = runtime_of(request)
    with rt.db.session() as session:
        order = _order(session, order_id)
        billed = (
            session.query(Invoice).filter(Invoice.order_id == order.id).order_by(Invoice.created_at).all()
        )
        return OrderView.of(order, list(billed))


def _order(session: Session, order_id: uuid.UUID, lock: bool = False) -> Order:
    order = session.get(Order, order_id, with_for_update=lock)
    if order is None:
        raise ProblemError(404, "Not found", f"no order {order_id}", slug="not-found")
    return order


@router.post("", status_code=201, response_model=OrderView)
def submit_order(
    request: Request,
    response: Response,
    body: OrderRequest,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> OrderView:
    """Accept an order (idempotent by ``order_id``) and run the checks: ``ready`` or ``needs_review``."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        accepted = orders.accept(session, body, api_key_id=key.id)
        order_id = accepted.order.id
    if not accepted.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/orders/{order_id}"
    return _view(request, order_id)


@router.get("/{order_id}", response_model=OrderView)
def get_order(
    request: Request, order_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> OrderView:
    """The order, its findings and its invoices."""
    return _view(request, order_id)


@router.put("/{order_id}", response_model=OrderView)
def correct_order(
    request: Request,
    order_id: uuid.UUID,
    body: OrderRequest,
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> OrderView:
    """A clerk's corrected order replaces the content; the checks run again."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        orders.correct(session, _order(session, order_id, lock=True), body, actor=key.id, reason=None)
    return _view(request, order_id)


@router.post("/{order_id}/release", response_model=OrderView)
def release_order(
    request: Request, order_id: uuid.UUID, key: Annotated[ApiKey, Depends(require("core:write"))]
) -> OrderView:
    """Release a ready order: one invoice per billed party, issued and sent through the hub."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        _, outbox = orders.release(
            session, _order(session, order_id, lock=True), rt.settings, today=business_day(rt), actor=key.id
        )
    enqueue(request, outbox)
    return _view(request, order_id)


@router.post("/{order_id}/reject", response_model=OrderView)
def reject_order(
    request: Request,
    order_id: uuid.UUID,
    decision: Annotated[Decision, Body()],
    key: Annotated[ApiKey, Depends(require("core:write"))],
) -> OrderView:
    """Reject the order: the submitter and the agency are told by e-mail and a follow-up is scheduled."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        outbox = orders.reject(
            session,
            _order(session, order_id, lock=True),
            rt.settings,
            reason=decision.reason,
            today=business_day(rt),
            actor=key.id,
        )
    enqueue(request, outbox)
    return _view(request, order_id)


@router.get("/{order_id}/history", response_model=list[HistoryEntry])
def order_history(
    request: Request, order_id: uuid.UUID, _: Annotated[ApiKey, Depends(require("core:read"))]
) -> list[HistoryEntry]:
    """Every transition of the order: who, when, why, from what to what."""
    rt = runtime_of(request)
    with rt.db.session() as session:
        _order(session, order_id)
        return history_view(session, "order", order_id)
