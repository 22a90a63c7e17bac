"""Helpers for tests that place real orders on a running stack and wait for their sagas."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import redis

from harness.platforms.base import Endpoints
from system_under_test.ids import order_id_for
from system_under_test.payment.ledger import declines

__all__ = [
    "HAPPY",
    "events_of",
    "key_where",
    "order_body",
    "place",
    "wait_terminal",
]

# The events of an order that completes, in stream order.
HAPPY = [
    "OrderPlaced", "InventoryReserved", "PaymentCaptured", "InventoryCommitted", "OrderCompleted", "NotificationSent",
]  # fmt: skip


def order_body(sku: str = "SKU-0042", qty: int = 1, amount_cents: int = 2599) -> dict[str, Any]:
    return {
        "customer_id": "cus-test",
        "items": [{"sku": sku, "qty": qty}],
        "amount_cents": amount_cents,
        "currency": "EUR",
    }


def key_where(declined: bool, rate: float = 0.03) -> str:
    """An idempotency key whose order the payment-service declines (or not), by its stable draw."""
    while True:
        key = str(uuid.uuid4())
        if declines(order_id_for(key), rate) == declined:
            return key


def place(
    endpoints: Endpoints,
    body: dict[str, Any] | None = None,
    key: str | None = None,
    timeout_s: float = 15,
) -> httpx.Response:
    return httpx.post(
        f"{endpoints.order_api}/orders",
        json=order_body() if body is None else body,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        timeout=timeout_s,
    )


def client(endpoints: Endpoints) -> redis.Redis:
    return redis.Redis.from_url(endpoints.redis_url, decode_responses=True)


def events_of(endpoints: Endpoints, order_id: str) -> list[tuple[str, dict[str, str]]]:
    """The order's events in stream order (looked up through its dedupe hash)."""
    r = client(endpoints)
    ids = sorted(r.hvals(f"orders:dedupe:{order_id}"), key=lambda s: tuple(map(int, s.split("-"))))
    found = []
    for sid in ids:
        entries = r.xrange("orders:events", min=sid, max=sid)
        found += entries
    return found


def wait_terminal(endpoints: Endpoints, order_id: str, timeout_s: float = 60) -> list[str]:
    """Wait until the order is cancelled, or completed and notified; return its event types."""
    r = client(endpoints)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = r.hkeys(f"orders:dedupe:{order_id}")
        if "OrderCancelled" in seen or "NotificationSent" in seen:
            return [f["type"] for _, f in events_of(endpoints, order_id)]
        time.sleep(0.1)
    raise AssertionError(
        f"order {order_id} not terminal after {timeout_s} s; events so far: {seen}"
    )


def lose_reservation_after_capture(platform) -> str:  # type: ignore[no-untyped-def]
    """Drive one order into the refund path for real: hold it before payment, take the inventory
    service away, let the capture happen, release the reservation behind the saga's back (what an
    expiry job does), and bring inventory back so the commit finds it gone. Returns the order id."""
    import asyncio

    from system_under_test.inventory.stock import Stock
    from system_under_test.streams import connect

    endpoints = platform.endpoints()
    r = client(endpoints)
    platform.stop("payment-service")
    try:
        order_id = place(endpoints, order_body("SKU-0031"), key_where(False)).json()["order_id"]
        _wait_for(lambda: r.hexists(f"orders:dedupe:{order_id}", "InventoryReserved"))
        platform.stop("inventory-service")
    finally:
        platform.start("payment-service")
    try:
        _wait_for(lambda: r.hexists(f"orders:dedupe:{order_id}", "PaymentCaptured"))

        async def expire() -> None:
            redis_client = connect(endpoints.redis_url)
            await Stock(redis_client).release(order_id)
            await redis_client.aclose()

        asyncio.run(expire())
    finally:
        platform.start("inventory-service")
    return order_id


def _wait_for(condition, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.1)
