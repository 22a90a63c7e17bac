"""Sending a confirmation at most once per order, durably, and recording the pub/sub path beside it."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from system_under_test.ids import notification_id_for
from system_under_test.streams import LIVE_COMPLETED_CHANNEL, NOTIFICATIONS_STREAM, now_ms

__all__ = ["LIVE_SEEN_SET", "Outbox", "listen_live"]

INDEX_HASH = "notifications:index"
LIVE_SEEN_SET = "notifications:live_seen"

_SEND_ONCE = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then return {prev, 0} end
local id = redis.call('XADD', KEYS[2], '*', 'notification_id', ARGV[2], 'order_id', ARGV[1],
                      'customer_id', ARGV[3], 'amount_cents', ARGV[4], 'ts', ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], id)
return {id, 1}
"""

log = logging.getLogger("notification-service")


class Outbox:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._send = client.register_script(_SEND_ONCE)

    async def send_confirmation(
        self, order_id: str, customer_id: str, amount_cents: int
    ) -> tuple[str, bool]:
        """Send (= append to notifications:sent) unless already sent; return (id, whether new)."""
        notification_id = notification_id_for(order_id)
        _, created = await self._send(
            keys=[INDEX_HASH, NOTIFICATIONS_STREAM],
            args=[order_id, notification_id, customer_id, amount_cents, now_ms()],
        )
        return notification_id, bool(created)

    async def stats(self) -> dict[str, int]:
        sent, live_seen = await asyncio.gather(
            self._client.hlen(INDEX_HASH), self._client.scard(LIVE_SEEN_SET)
        )
        return {"sent": int(sent), "live_seen": int(live_seen)}


async def listen_live(client: aioredis.Redis) -> None:
    """Record every order id that arrives over pub/sub; whatever is published while this
    process is down never arrives (that is the point)."""
    while True:
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(LIVE_COMPLETED_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await client.sadd(LIVE_SEEN_SET, message["data"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "pub/sub listener lost its connection; resubscribing",
                extra={"fields": {"error": str(exc)}},
            )
            await asyncio.sleep(1)
