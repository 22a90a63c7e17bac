"""Redis keys of the system and the idempotent append to its event streams (see docs/events.md)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

__all__ = [
    "EVENTS_STREAM",
    "INVENTORY_LEDGER",
    "LIVE_COMPLETED_CHANNEL",
    "NOTIFICATIONS_STREAM",
    "PAYMENTS_LEDGER",
    "EventAppender",
    "StreamEntries",
    "connect",
    "dedupe_key",
    "now_ms",
]

EVENTS_STREAM = "orders:events"
PAYMENTS_LEDGER = "payments:ledger"
INVENTORY_LEDGER = "inventory:ledger"
NOTIFICATIONS_STREAM = "notifications:sent"
LIVE_COMPLETED_CHANNEL = "orders:completed:live"

_APPEND_ONCE = """
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen then return {seen, 0} end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[2], ARGV[1], id)
return {id, 1}
"""


# (stream id, fields) pairs as XRANGE / XREAD give them with decode_responses=True
# (redis-py's own annotations are looser than what it returns).
StreamEntries = list[tuple[str, dict[str, str]]]


def dedupe_key(order_id: str) -> str:
    return f"orders:dedupe:{order_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


def connect(url: str, retries: int = 3) -> aioredis.Redis:
    """A client for a service: text replies, bounded time-outs so a hung Redis becomes an error,
    and `retries` retries on a dropped connection (a pooled connection is stale after a Redis
    restart). Retrying is safe for every write of the system, which is idempotent, but not for
    a consumer group's `XREADGROUP >`: an attempt whose reply was lost has already delivered
    its entries, and the retry skips past them (the projection therefore asks for 0)."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=3,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


class EventAppender:
    """Appends an order event at most once, whatever the number of retries."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_APPEND_ONCE)

    async def append(
        self, event_type: str, order_id: str, fields: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Append `event_type` for `order_id`; return (stream id, whether it was new)."""
        entry: dict[str, str] = {
            "type": event_type,
            "order_id": order_id,
            "event_id": f"{order_id}:{event_type}",
            "ts": str(now_ms()),
        }
        entry.update({k: str(v) for k, v in fields.items()})
        flat = [item for pair in entry.items() for item in pair]
        stream_id, created = await self._script(
            keys=[EVENTS_STREAM, dedupe_key(order_id)], args=[event_type, *flat]
        )
        return str(stream_id), bool(created)
