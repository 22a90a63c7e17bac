"""The system's Redis keys as the harness knows them: the event contract of docs/events.md.

Written out here by the harness, not imported from `system_under_test`: the harness states its
own expectations of the system, so a wrong name or rule in the system is caught, not shared.
"""

from __future__ import annotations

__all__ = [
    "EVENTS",
    "INVENTORY_HASH",
    "INVENTORY_LEDGER",
    "NOTIFICATIONS",
    "NOTIFICATIONS_INDEX",
    "NOTIFICATIONS_LIVE_SEEN",
    "PAYMENTS_LEDGER",
    "PROJECTION_GROUP",
    "READMODEL_CANCELLED",
    "READMODEL_COMPLETED",
    "READMODEL_INFLIGHT",
    "READMODEL_ORDERS",
    "READMODEL_PLACED",
    "SERVICE_LEDGERS",
    "dedupe",
]

EVENTS = "orders:events"  # the saga's event log, the source of truth
PAYMENTS_LEDGER = "payments:ledger"  # written by payment-service as it moves money
INVENTORY_LEDGER = "inventory:ledger"  # written by inventory-service as it moves stock
NOTIFICATIONS = "notifications:sent"  # written by notification-service as it sends
READMODEL_INFLIGHT = "readmodel:inflight"  # the projection's orders not yet terminal
READMODEL_PLACED = "readmodel:placed"  # the projection's placed orders (a set)
READMODEL_COMPLETED = "readmodel:completed"  # and its completed ones
READMODEL_CANCELLED = "readmodel:cancelled"  # and its cancelled ones
READMODEL_ORDERS = "readmodel:order:*"  # the order pages (hashes), as a SCAN pattern
NOTIFICATIONS_INDEX = "notifications:index"  # order id → its notification (the outbox's dedupe)
NOTIFICATIONS_LIVE_SEEN = "notifications:live_seen"  # orders the live fan-out delivered
INVENTORY_HASH = "inventory:{}"  # seed, available, reserved, sold: per SKU quantities
PROJECTION_GROUP = "projection"  # the projection's consumer group on EVENTS


def dedupe(order_id: str) -> str:
    """The hash of the events appended for an order (type → stream id): the append's dedupe."""
    return f"orders:dedupe:{order_id}"


# service → (its own ledger stream, entry kind → the event the saga appends once it is told).
# An entry without its event is a request the service performed and the saga has not heard of.
SERVICE_LEDGERS: dict[str, tuple[str, dict[str, str]]] = {
    "payment-service": (
        PAYMENTS_LEDGER,
        {"capture": "PaymentCaptured", "refund": "PaymentRefunded", "decline": "PaymentDeclined"},
    ),
    "inventory-service": (
        INVENTORY_LEDGER,
        {
            "reserve": "InventoryReserved",
            "commit": "InventoryCommitted",
            "release": "InventoryReleased",
        },
    ),
    "notification-service": (NOTIFICATIONS, {"": "NotificationSent"}),
}
