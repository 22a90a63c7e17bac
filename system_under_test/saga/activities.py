"""The saga's activities: each calls one service (idempotently) and appends the resulting event.

A retried activity repeats both halves safely: services dedupe by idempotency key or order id,
and the append is at-most-once per (order, event type). Technical failures (time-outs, refused
connections, 5xx, Redis out of memory) raise plain errors that Temporal retries with backoff;
business outcomes raise non-retryable ApplicationErrors the workflow compensates for.

The services are called with aiohttp: httpx cost the worker 4 to 25 times its CPU per request,
from 1 to 100 requests in flight (benchmarks/bench_http.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import orjson
import redis.exceptions
from temporalio import activity
from temporalio.exceptions import ApplicationError

from system_under_test.ids import payment_id_for
from system_under_test.saga.models import CUSTOMER_CANCELLED, CancelInput, OrderInput
from system_under_test.streams import LIVE_COMPLETED_CHANNEL, EventAppender, dedupe_key

__all__ = ["TRANSIENT_FAILURES", "Answer", "SagaActivities", "ServiceUnavailable", "http_session"]


class ServiceUnavailable(Exception):
    """A dependency answered with a technical failure: retried by Temporal."""


# What an outage of a dependency looks like from an activity: retried, and logged in one line.
# A time-out is ambiguous (the service may have done the work): the retry carries the same
# Idempotency-Key. aiohttp raises its socket time-outs as ClientConnectionError, a time-out
# waiting for a free connection as a bare TimeoutError.
TRANSIENT_FAILURES: tuple[type[BaseException], ...] = (
    ServiceUnavailable,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
    redis.exceptions.RedisError,
)


def http_session(timeout_s: float, pool_size: int) -> aiohttp.ClientSession:
    """The worker's client: `pool_size` keep-alive connections, and `timeout_s` for each phase
    of a call (getting a connection, each read), as httpx's single time-out meant before."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool_size, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(
            total=None, connect=timeout_s, sock_connect=timeout_s, sock_read=timeout_s
        ),
    )


@dataclass(frozen=True)
class Answer:
    """A service's answer, read whole so that its connection is back in the pool at once."""

    url: str
    status_code: int
    text: str

    def json(self) -> Any:
        return orjson.loads(self.text)


def _items_json(order: OrderInput) -> str:
    return orjson.dumps([asdict(i) for i in order.items]).decode()


def _business(message: str, failure_type: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details or None, type=failure_type, non_retryable=True)


class SagaActivities:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        appender: EventAppender,
        redis: Any,
        payment_url: str,
        inventory_url: str,
        notification_url: str,
        fraud_limit_cents: int = 1_000_000,
    ) -> None:
        self._http = http
        self._fraud_limit_cents = fraud_limit_cents
        self._append = appender.append
        self._redis = redis
        self._payment = payment_url.rstrip("/")
        self._inventory = inventory_url.rstrip("/")
        self._notification = notification_url.rstrip("/")

    def all(self) -> list[Any]:
        return [
            self.place_order,
            self.reserve_inventory,
            self.screen_order,
            self.capture_payment,
            self.commit_inventory,
            self.complete_order,
            self.send_confirmation,
            self.refund_payment,
            self.release_inventory,
            self.release_for_cancel,
            self.cancel_order,
        ]

    async def _post(self, url: str, body: dict[str, Any], key: str | None = None) -> Answer:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        async with self._http.post(url, data=orjson.dumps(body), headers=headers) as reply:
            raw = await reply.read()
        response = Answer(url, reply.status, raw.decode("utf-8", "replace"))
        if response.status_code >= 500 or response.status_code == 429:
            raise ServiceUnavailable(
                f"{url} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    @staticmethod
    def _unexpected(response: Answer) -> ApplicationError:
        return _business(
            f"{response.url} answered {response.status_code}: {response.text[:200]}",
            "UnexpectedResponse",
        )

    @activity.defn
    async def place_order(self, order: OrderInput) -> None:
        await self._append(
            "OrderPlaced",
            order.order_id,
            {
                "customer_id": order.customer_id,
                "amount_cents": order.amount_cents,
                "currency": order.currency,
                "items": _items_json(order),
                "idempotency_key": order.idempotency_key,
            },
        )

    @activity.defn
    async def reserve_inventory(self, order: OrderInput) -> None:
        response = await self._post(
            f"{self._inventory}/reservations",
            {"order_id": order.order_id, "items": [asdict(i) for i in order.items]},
        )
        if response.status_code == 409:
            body = response.json()
            failure = "UnknownSku" if body.get("reason") == "unknown_sku" else "OutOfStock"
            raise _business(
                f"{body.get('reason')}: {body.get('sku')}", failure, sku=body.get("sku")
            )
        if response.status_code != 201:
            raise self._unexpected(response)
        await self._append("InventoryReserved", order.order_id, {"items": _items_json(order)})

    @activity.defn
    async def screen_order(self, order: OrderInput) -> int:
        """Version 2's fraud check: the order's risk in basis points of the fraud limit (its
        amount against SAGAQUAKE_FRAUD_LIMIT_CENTS); at the limit the order is refused. Pure and
        stable per order, so a retried or replayed check always agrees."""
        risk = order.amount_cents * 10_000 // max(self._fraud_limit_cents, 1)
        if risk >= 10_000:
            raise _business(
                f"fraud suspected: {order.amount_cents} cents reaches the limit of "
                f"{self._fraud_limit_cents}",
                "FraudSuspected",
                risk=risk,
            )
        return int(risk)

    @activity.defn
    async def capture_payment(self, order: OrderInput) -> str:
        response = await self._post(
            f"{self._payment}/charges",
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "amount_cents": order.amount_cents,
                "currency": order.currency,
            },
            key=f"{order.order_id}:charge",
        )
        body = response.json() if response.status_code in (201, 402) else {}
        if response.status_code == 402:
            await self._append(
                "PaymentDeclined", order.order_id, {"reason": body.get("reason", "declined")}
            )
            raise _business(f"payment declined: {body.get('reason')}", "PaymentDeclined")
        if response.status_code != 201:
            raise self._unexpected(response)
        await self._append(
            "PaymentCaptured",
            order.order_id,
            {
                "payment_id": body["payment_id"],
                "amount_cents": order.amount_cents,
                "currency": order.currency,
            },
        )
        return str(body["payment_id"])

    @activity.defn
    async def commit_inventory(self, order: OrderInput) -> None:
        response = await self._post(f"{self._inventory}/reservations/{order.order_id}/commit", {})
        if response.status_code in (404, 409):
            raise _business(f"reservation lost: {response.text[:200]}", "ReservationLost")
        if response.status_code != 200:
            raise self._unexpected(response)
        await self._append("InventoryCommitted", order.order_id, {"items": _items_json(order)})

    @activity.defn
    async def complete_order(self, order: OrderInput) -> None:
        _, created = await self._append(
            "OrderCompleted", order.order_id, {"amount_cents": order.amount_cents}
        )
        if created:  # live fan-out: fire and forget, as pub/sub is
            await self._redis.publish(LIVE_COMPLETED_CHANNEL, order.order_id)

    @activity.defn
    async def send_confirmation(self, order: OrderInput) -> None:
        response = await self._post(
            f"{self._notification}/confirmations",
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "amount_cents": order.amount_cents,
            },
        )
        if response.status_code not in (200, 201):
            raise self._unexpected(response)
        await self._append(
            "NotificationSent",
            order.order_id,
            {"notification_id": response.json()["notification_id"]},
        )

    @activity.defn
    async def refund_payment(self, order: OrderInput) -> None:
        response = await self._post(
            f"{self._payment}/refunds",
            {
                "order_id": order.order_id,
                "payment_id": payment_id_for(order.order_id),
            },
            key=f"{order.order_id}:refund",
        )
        if response.status_code == 404:
            return  # nothing was captured: nothing to refund
        if response.status_code != 201:
            raise self._unexpected(response)
        body = response.json()
        await self._append(
            "PaymentRefunded",
            order.order_id,
            {
                "payment_id": payment_id_for(order.order_id),
                "refund_id": body["refund_id"],
                "amount_cents": body["amount_cents"],
            },
        )

    @activity.defn
    async def release_inventory(self, order: OrderInput) -> None:
        response = await self._post(f"{self._inventory}/reservations/{order.order_id}/release", {})
        if response.status_code == 404:
            return  # nothing was reserved
        if response.status_code != 200:
            raise self._unexpected(response)
        await self._append("InventoryReleased", order.order_id, {"items": _items_json(order)})

    @activity.defn
    async def release_for_cancel(self, order: OrderInput) -> bool:
        """A customer's cancel asks the stock first, the one arbiter between the cancel and the
        shipment: released (or never reserved) is True, already committed (the order ships:
        too late to cancel) is False."""
        response = await self._post(f"{self._inventory}/reservations/{order.order_id}/release", {})
        if response.status_code == 404:
            return True  # nothing was reserved
        if response.status_code == 409 and response.json().get("state") == "committed":
            return False
        if response.status_code != 200:
            raise self._unexpected(response)
        await self._append("InventoryReleased", order.order_id, {"items": _items_json(order)})
        return True

    @activity.defn
    async def cancel_order(self, cancel: CancelInput) -> None:
        """OrderCancelled, with the reason the stream (the source of truth) gives. A customer's
        cancel honoured by a saga whose history lost the charge's decline (the workflow task
        that ran the charge timed out after the provider answered, and the cancel came before
        the replay: found by the chaos harness on an overloaded machine) is recorded as what
        came first, the decline, not as the customer's cancel."""
        order_id, reason = cancel.order.order_id, cancel.reason
        if reason == CUSTOMER_CANCELLED and await self._redis.hexists(
            dedupe_key(order_id), "PaymentDeclined"
        ):
            reason = "payment_declined"
        await self._append("OrderCancelled", order_id, {"reason": reason})
