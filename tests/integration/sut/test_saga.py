"""The saga against the real stack: happy path, compensations, idempotent retries, bad input."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
import redis
from temporalio.client import Client

from system_under_test.ids import order_id_for
from tests.integration.orders import (
    HAPPY,
    client,
    events_of,
    key_where,
    order_body,
    place,
    wait_terminal,
)
from tests.integration.test_snapshot import redis_url  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def payments_of(stack, order_id: str) -> list[dict[str, str]]:
    return [
        f for _, f in client(stack.endpoints).xrange("payments:ledger") if f["order_id"] == order_id
    ]


def test_happy_order_completes_once_charged_and_notified(stack) -> None:
    key = key_where(declined=False)
    answer = place(stack.endpoints, order_body("SKU-0007", 2, 5000), key)
    assert answer.status_code == 202, answer.text
    order_id = answer.json()["order_id"]
    assert order_id == order_id_for(key)
    assert wait_terminal(stack.endpoints, order_id) == HAPPY
    assert [p["kind"] for p in payments_of(stack, order_id)] == ["capture"]
    r = client(stack.endpoints)
    assert r.hget("notifications:index", order_id)
    view = httpx.get(f"{stack.endpoints.order_api}/orders/{order_id}").json()
    assert view["order_id"] == order_id


def test_declined_payment_releases_stock_and_cancels(stack) -> None:
    r = client(stack.endpoints)
    before = int(r.hget("inventory:available", "SKU-0011"))
    order_id = place(stack.endpoints, order_body("SKU-0011", 3), key_where(declined=True)).json()[
        "order_id"
    ]
    assert wait_terminal(stack.endpoints, order_id) == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentDeclined",
        "InventoryReleased",
        "OrderCancelled",
    ]
    cancelled = events_of(stack.endpoints, order_id)[-1][1]
    assert cancelled["reason"] == "payment_declined"
    assert [p["kind"] for p in payments_of(stack, order_id)] == ["decline"]
    assert int(r.hget("inventory:available", "SKU-0011")) == before
    assert r.hget(f"inventory:reservation:{order_id}", "state") == "released"


def test_out_of_stock_and_unknown_sku_cancel_without_touching_money(stack) -> None:
    # SKU-0200 is one of the scarce SKUs (25 units): 26 cannot be reserved.
    short = place(stack.endpoints, order_body("SKU-0200", 26)).json()["order_id"]
    unknown = place(stack.endpoints, order_body("NO-SUCH-SKU", 1)).json()["order_id"]
    for order_id, reason in ((short, "out_of_stock"), (unknown, "unknown_sku")):
        assert wait_terminal(stack.endpoints, order_id) == ["OrderPlaced", "OrderCancelled"]
        assert events_of(stack.endpoints, order_id)[-1][1]["reason"] == reason
        assert payments_of(stack, order_id) == []


def test_the_same_request_retried_concurrently_starts_one_saga_and_charges_once(stack) -> None:
    key = key_where(declined=False)
    body = order_body("SKU-0003", 1, 1234)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=15) as http:
            return await asyncio.gather(
                *[
                    http.post(
                        f"{stack.endpoints.order_api}/orders",
                        json=body,
                        headers={"Idempotency-Key": key},
                    )
                    for _ in range(12)
                ]
            )

    answers = asyncio.run(burst())
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert sum(not a.json()["duplicate"] for a in answers) == 1
    order_id = order_id_for(key)
    assert wait_terminal(stack.endpoints, order_id) == HAPPY
    # retried after it finished: still the same order, still one saga
    late = place(stack.endpoints, body, key)
    assert late.status_code == 202 and late.json() == {
        "order_id": order_id,
        "status": "accepted",
        "duplicate": True,
    }
    assert [p["kind"] for p in payments_of(stack, order_id)] == ["capture"]

    async def runs() -> list[str]:
        temporal = await Client.connect(stack.endpoints.temporal_address)
        return [w.run_id async for w in temporal.list_workflows(f"WorkflowId = '{order_id}'")]

    assert len(asyncio.run(runs())) == 1


def test_same_key_with_a_different_body_is_a_conflict(stack) -> None:
    key = str(uuid.uuid4())
    assert place(stack.endpoints, order_body(amount_cents=100), key).status_code == 202
    conflict = place(stack.endpoints, order_body(amount_cents=200), key)
    assert conflict.status_code == 409
    assert "different body" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**order_body(), "items": []}, "items"),
        ({**order_body(), "items": [{"sku": "SKU-0001", "qty": 0}]}, "qty"),
        ({**order_body(), "amount_cents": -5}, "amount_cents"),
        ({**order_body(), "currency": "XYZ"}, "currency"),
        ({k: v for k, v in order_body().items() if k != "customer_id"}, "customer_id"),
        ({**order_body(), "coupon": "FREE"}, "coupon"),
    ],
)
def test_invalid_orders_get_422_naming_the_field_and_write_nothing(stack, body, field) -> None:
    key = str(uuid.uuid4())
    answer = place(stack.endpoints, body, key)
    assert answer.status_code == 422
    assert any(field in map(str, err["loc"]) for err in answer.json()["detail"]), answer.json()
    assert not client(stack.endpoints).exists(f"orders:dedupe:{order_id_for(key)}")

    async def exists() -> bool:
        temporal = await Client.connect(stack.endpoints.temporal_address)
        return bool(
            [w async for w in temporal.list_workflows(f"WorkflowId = '{order_id_for(key)}'")]
        )

    assert not asyncio.run(exists())


def test_missing_or_bad_idempotency_key_is_422(stack) -> None:
    no_key = httpx.post(f"{stack.endpoints.order_api}/orders", json=order_body())
    assert no_key.status_code == 422 and "Idempotency-Key" in no_key.text
    long_key = place(stack.endpoints, order_body(), "k" * 500)
    assert long_key.status_code == 422
    not_json = httpx.post(
        f"{stack.endpoints.order_api}/orders",
        content=b"{nope",
        headers={"Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


def test_reservation_lost_after_capture_is_refunded_then_cancelled(stack) -> None:
    """The refund compensation: payment captured, then the reservation is gone (as when a
    reservation-expiry job released it), so commit fails and the saga refunds and cancels."""
    from tests.integration.orders import lose_reservation_after_capture

    order_id = lose_reservation_after_capture(stack.platform)
    assert wait_terminal(stack.endpoints, order_id, 90) == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentCaptured",
        "PaymentRefunded",
        "InventoryReleased",
        "OrderCancelled",
    ]
    assert events_of(stack.endpoints, order_id)[-1][1]["reason"] == "ReservationLost"
    assert [p["kind"] for p in payments_of(stack, order_id)] == ["capture", "refund"]


def cancel(stack, order_id: str) -> httpx.Response:
    return httpx.post(f"{stack.endpoints.order_api}/orders/{order_id}/cancel", timeout=15)


def test_a_customer_cancel_while_payment_is_down_is_honoured_after_the_charge_with_a_refund(
    stack,
) -> None:
    """An impatient customer cancels an order held at the payment step; the charge goes through
    when payment is back, and the saga, seeing the cancel before the commit, refunds all of it."""
    r = client(stack.endpoints)
    stack.platform.stop("payment-service")
    try:
        order_id = place(stack.endpoints, order_body("SKU-0027"), key_where(False)).json()[
            "order_id"
        ]
        for _ in range(200):
            if r.hexists(f"orders:dedupe:{order_id}", "InventoryReserved"):
                break
            time.sleep(0.1)
        answer = cancel(stack, order_id)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"order_id": order_id, "status": "cancel requested"}
        assert cancel(stack, order_id).status_code == 202  # a second cancel is a no-op
        time.sleep(12)  # past a workflow-task heartbeat: the saga has the signal
    finally:
        stack.platform.start("payment-service")
    assert wait_terminal(stack.endpoints, order_id, 90) == [  # the stock is asked first
        "OrderPlaced",
        "InventoryReserved",
        "PaymentCaptured",
        "InventoryReleased",
        "PaymentRefunded",
        "OrderCancelled",
    ]
    assert events_of(stack.endpoints, order_id)[-1][1]["reason"] == "customer_cancelled"
    capture, refund = payments_of(stack, order_id)
    assert (capture["kind"], refund["kind"]) == ("capture", "refund")
    assert refund["amount_cents"] == capture["amount_cents"] == "2599"


def test_a_cancel_too_late_or_for_no_order_is_refused(stack) -> None:
    order_id = place(stack.endpoints, order_body("SKU-0028"), key_where(False)).json()["order_id"]
    assert wait_terminal(stack.endpoints, order_id) == HAPPY
    late = cancel(stack, order_id)
    assert late.status_code == 409 and "already finished (completed)" in late.text, late.text
    assert wait_terminal(stack.endpoints, order_id) == HAPPY  # nothing changed
    nobody = cancel(stack, order_id_for(str(uuid.uuid4())))
    assert nobody.status_code == 404, nobody.text
    assert cancel(stack, "not an id!").status_code in (404, 422)


def test_a_customer_cancel_after_a_decline_the_saga_lost_is_recorded_as_the_decline(
    redis_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    """A workflow task that ran the charge can time out after the provider declined (an
    overloaded worker); replayed after the customer's cancel came, the saga honours the cancel
    without knowing of the decline. The stream has the decline first, so the order is cancelled
    for it; a cancel with no decline in the stream stays the customer's."""
    import redis.asyncio as aioredis

    from system_under_test.saga.activities import SagaActivities, http_session
    from system_under_test.saga.models import CancelInput, LineItem, OrderInput
    from system_under_test.streams import EventAppender

    declined, plain = f"ord-test-{uuid.uuid4().hex[:12]}", f"ord-test-{uuid.uuid4().hex[:12]}"

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        appender = EventAppender(r)
        await appender.append("PaymentDeclined", declined, {"reason": "card_declined"})
        async with http_session(5, 4) as http:
            saga = SagaActivities(http, appender, r, "http://unused", "http://unused", "http://x")
            for order_id in (declined, plain):
                order = OrderInput(order_id, "cus-1", [LineItem("SKU-0001", 1)], 100, "EUR")
                await saga.cancel_order(CancelInput(order, "customer_cancelled"))
        await r.aclose()

    asyncio.run(go())
    cancelled = redis.Redis.from_url(redis_url, decode_responses=True).xrange("orders:events")
    reasons = {f["order_id"]: f["reason"] for _, f in cancelled if f["type"] == "OrderCancelled"}
    assert reasons == {declined: "payment_declined", plain: "customer_cancelled"}
