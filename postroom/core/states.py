"""Lifecycles of documents and deliveries. States only move forward."""

from __future__ import annotations

from enum import StrEnum


class DocumentStatus(StrEnum):
    """Where a document is on its way from request to confirmed hand-off."""

    QUEUED = "queued"
    RENDERING = "rendering"
    RENDERED = "rendered"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """One channel's hand-off of one document (DESIGN §5)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class IllegalTransition(RuntimeError):
    """A state change that would move backwards or skip the lifecycle."""


_DOCUMENT_NEXT: dict[DocumentStatus, frozenset[DocumentStatus]] = {
    DocumentStatus.QUEUED: frozenset({DocumentStatus.RENDERING, DocumentStatus.FAILED}),
    DocumentStatus.RENDERING: frozenset({DocumentStatus.RENDERED, DocumentStatus.FAILED}),
    DocumentStatus.RENDERED: frozenset({DocumentStatus.DELIVERING, DocumentStatus.FAILED}),
    DocumentStatus.DELIVERING: frozenset({DocumentStatus.DELIVERED, DocumentStatus.FAILED}),
    DocumentStatus.DELIVERED: frozenset(),
    DocumentStatus.FAILED: frozenset(),
}

_DELIVERY_NEXT: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.PENDING: frozenset({DeliveryStatus.SENDING, DeliveryStatus.FAILED}),
    DeliveryStatus.SENDING: frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED}),
    DeliveryStatus.SENT: frozenset({DeliveryStatus.CONFIRMED, DeliveryStatus.FAILED}),
    DeliveryStatus.CONFIRMED: frozenset(),
    DeliveryStatus.FAILED: frozenset(),
}

FINAL_DOCUMENT_STATES = frozenset({DocumentStatus.DELIVERED, DocumentStatus.FAILED})
FINAL_DELIVERY_STATES = frozenset({DeliveryStatus.CONFIRMED, DeliveryStatus.FAILED})


def check_document_transition(current: DocumentStatus, target: DocumentStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is a forward step."""
    if target not in _DOCUMENT_NEXT[current]:
        raise IllegalTransition(f"document cannot move from {current} to {target}")


def check_delivery_transition(current: DeliveryStatus, target: DeliveryStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is a forward step."""
    if target not in _DELIVERY_NEXT[current]:
        raise IllegalTransition(f"delivery cannot move from {current} to {target}")
