"""Deterministic identifiers, so a client (and the verifier) can name the order of any request."""

from __future__ import annotations

import uuid

__all__ = ["notification_id_for", "order_id_for", "payment_id_for", "refund_id_for"]


def order_id_for(idempotency_key: str) -> str:
    """The order id the order-service gives the request carrying this idempotency key."""
    return "ord-" + uuid.uuid5(uuid.NAMESPACE_URL, "sagaquake:" + idempotency_key).hex[:24]


def _suffix(order_id: str) -> str:
    return order_id.removeprefix("ord-")


def payment_id_for(order_id: str) -> str:
    return "pay-" + _suffix(order_id)


def refund_id_for(order_id: str) -> str:
    return "ref-" + _suffix(order_id)


def notification_id_for(order_id: str) -> str:
    return "ntf-" + _suffix(order_id)
