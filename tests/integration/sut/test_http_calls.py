"""The saga's calls to a service over real HTTP (aiohttp, set up as the worker sets it up): what
is sent, and what a 5xx, a 429, a hang, a refused connection and a business answer become.

A stand-in service on a free port answers as each test tells it and records what it received;
the events go to a real redis-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from temporalio.exceptions import ApplicationError

from harness.settings import free_port
from system_under_test.saga.activities import (
    TRANSIENT_FAILURES,
    SagaActivities,
    ServiceUnavailable,
    http_session,
)
from system_under_test.saga.models import LineItem, OrderInput
from system_under_test.streams import EventAppender
from tests.integration.test_snapshot import redis_url  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TIMEOUT_S = 0.5
Answer = tuple[int, Any] | None  # None: hang longer than the client waits


def _order() -> OrderInput:
    return OrderInput(
        f"ord-test-{uuid.uuid4().hex[:12]}", "cus-1", [LineItem("SKU-1", 2)], 1999, "EUR"
    )


def _with_saga(
    redis_url: str,  # noqa: F811
    answer: Answer,
    test: Callable[[SagaActivities, list[dict[str, Any]]], Awaitable[None]],
) -> None:
    """Run `test` with activities whose three services are one stand-in answering `answer`."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(
            {"path": request.path, "headers": dict(request.headers), "body": await request.read()}
        )
        if answer is None:
            await asyncio.sleep(10 * TIMEOUT_S)
            return web.Response(status=201)
        return web.json_response(answer[1], status=answer[0])

    async def go() -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            async with http_session(TIMEOUT_S, 4) as http:
                await test(SagaActivities(http, EventAppender(r), r, url, url, url), received)
        finally:
            await r.aclose()
            await runner.cleanup()

    asyncio.run(go())


def test_a_charge_sends_compact_json_and_its_idempotency_key(redis_url: str) -> None:  # noqa: F811
    order = _order()

    async def test(saga: SagaActivities, received: list[dict[str, Any]]) -> None:
        assert await saga.capture_payment(order) == "pay-1"
        (sent,) = received
        assert sent["path"] == "/charges"
        assert sent["headers"]["Content-Type"] == "application/json"
        assert sent["headers"]["Idempotency-Key"] == f"{order.order_id}:charge"
        assert sent["body"] == orjson.dumps(
            {
                "order_id": order.order_id,
                "customer_id": "cus-1",
                "amount_cents": 1999,
                "currency": "EUR",
            }
        )
        await saga.send_confirmation(order)  # no key: no header
        assert "Idempotency-Key" not in received[1]["headers"]

    _with_saga(redis_url, (201, {"payment_id": "pay-1", "notification_id": "n-1"}), test)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_or_429_is_a_retried_outage(redis_url: str, status: int) -> None:  # noqa: F811
    async def test(saga: SagaActivities, _: list[dict[str, Any]]) -> None:
        with pytest.raises(ServiceUnavailable, match=f"/reservations answered {status}: .*busy"):
            await saga.reserve_inventory(_order())

    _with_saga(redis_url, (status, {"detail": "busy"}), test)


def test_a_business_answer_is_not_retried(redis_url: str) -> None:  # noqa: F811
    async def test(saga: SagaActivities, _: list[dict[str, Any]]) -> None:
        with pytest.raises(ApplicationError) as refused:
            await saga.reserve_inventory(_order())
        assert refused.value.type == "OutOfStock" and refused.value.non_retryable
        assert refused.value.message == "out_of_stock: SKU-1"

    _with_saga(redis_url, (409, {"reason": "out_of_stock", "sku": "SKU-1"}), test)


def test_an_unexpected_answer_names_the_url_and_status(redis_url: str) -> None:  # noqa: F811
    async def test(saga: SagaActivities, _: list[dict[str, Any]]) -> None:
        with pytest.raises(ApplicationError, match=r"/charges answered 418: .*teapot") as refused:
            await saga.capture_payment(_order())
        assert refused.value.type == "UnexpectedResponse"

    _with_saga(redis_url, (418, {"detail": "teapot"}), test)


def test_a_hung_service_times_out_and_the_retry_carries_the_same_key(redis_url: str) -> None:  # noqa: F811
    order = _order()

    async def test(saga: SagaActivities, received: list[dict[str, Any]]) -> None:
        for _ in range(2):  # the call, then Temporal's retry of the activity
            started = time.monotonic()
            with pytest.raises(TRANSIENT_FAILURES):
                await saga.capture_payment(order)
            assert TIMEOUT_S <= time.monotonic() - started < 4 * TIMEOUT_S
        keys = [r["headers"]["Idempotency-Key"] for r in received]
        assert keys == [f"{order.order_id}:charge"] * 2

    _with_saga(redis_url, None, test)


def test_a_refused_connection_is_a_retried_outage(redis_url: str) -> None:  # noqa: F811
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        nobody = f"http://127.0.0.1:{free_port()}"
        async with http_session(TIMEOUT_S, 4) as http:
            saga = SagaActivities(http, EventAppender(r), r, nobody, nobody, nobody)
            with pytest.raises(TRANSIENT_FAILURES):
                await saga.capture_payment(_order())
        await r.aclose()

    asyncio.run(go())
