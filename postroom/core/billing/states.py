"""Lifecycles of orders, invoices and commissions (DESIGN §4). Every move is checked here."""

from __future__ import annotations

from enum import StrEnum

from postroom.core.states import IllegalTransition


class OrderStatus(StrEnum):
    """Where a courtage order stands: checked, then released into invoices or rejected."""

    NEEDS_REVIEW = "needs_review"
    READY = "ready"
    RELEASED = "released"
    REJECTED = "rejected"


class InvoiceStatus(StrEnum):
    """The lifecycle of one invoice (or credit note) towards one billed party."""

    DRAFT = "draft"
    ISSUED = "issued"
    SENT = "sent"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERDUE = "overdue"
    IN_COLLECTION = "in_collection"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


class CommissionStatus(StrEnum):
    """An agent's share of a courtage: earned, due, paid out (or void with its invoice)."""

    PENDING = "pending"
    PAYABLE = "payable"
    PAID_OUT = "paid_out"
    CANCELLED = "cancelled"


_O, _I, _C = OrderStatus, InvoiceStatus, CommissionStatus
_OPEN = frozenset({_I.ISSUED, _I.SENT, _I.PARTIALLY_PAID, _I.OVERDUE, _I.IN_COLLECTION})
"""Invoices that are owed: payments may still arrive on them."""

_NEXT: dict[StrEnum, frozenset[StrEnum]] = {
    _O.NEEDS_REVIEW: frozenset({_O.READY, _O.REJECTED}),
    _O.READY: frozenset({_O.NEEDS_REVIEW, _O.RELEASED, _O.REJECTED}),
    _O.RELEASED: frozenset(),
    _O.REJECTED: frozenset(),
    _I.DRAFT: frozenset({_I.ISSUED}),
    _I.ISSUED: frozenset({_I.SENT, _I.PARTIALLY_PAID, _I.PAID, _I.OVERDUE, _I.CANCELLED}),
    _I.SENT: frozenset({_I.PARTIALLY_PAID, _I.PAID, _I.OVERDUE, _I.CANCELLED}),
    _I.PARTIALLY_PAID: frozenset({_I.PAID, _I.OVERDUE, _I.CANCELLED, _I.IN_COLLECTION, _I.WRITTEN_OFF}),
    _I.OVERDUE: frozenset({_I.PARTIALLY_PAID, _I.PAID, _I.IN_COLLECTION, _I.WRITTEN_OFF, _I.CANCELLED}),
    _I.IN_COLLECTION: frozenset({_I.PARTIALLY_PAID, _I.PAID, _I.WRITTEN_OFF}),
    # A returned direct debit reopens a paid invoice.
    _I.PAID: frozenset({_I.PARTIALLY_PAID, _I.SENT, _I.ISSUED}),
    _I.WRITTEN_OFF: frozenset(),
    _I.CANCELLED: frozenset(),
    _C.PENDING: frozenset({_C.PAYABLE, _C.CANCELLED}),
    _C.PAYABLE: frozenset({_C.PAID_OUT, _C.CANCELLED}),
    _C.PAID_OUT: frozenset(),
    _C.CANCELLED: frozenset(),
}

OPEN_INVOICE_STATES = _OPEN
SETTLED_INVOICE_STATES = frozenset({_I.PAID, _I.WRITTEN_OFF, _I.CANCELLED})


def check_transition(current: StrEnum, target: StrEnum) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is a step of its lifecycle."""
    if target not in _NEXT[current]:
        raise IllegalTransition(f"{type(current).__name__} cannot move from {current} to {target}")
