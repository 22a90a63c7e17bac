"""Reading and writing the read model in Redis. Every write is idempotent (HSET of the computed
view, set and sorted-set membership), so a batch retried after a crash changes nothing twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis

from system_under_test.projection.model import TERMINAL_STATUSES, apply_event

__all__ = ["COUNT_SETS", "INFLIGHT", "ReadModel"]

INFLIGHT = "readmodel:inflight"
# Order ids by lifecycle: counts are their sizes (SCARD), which stays right under replays.
COUNT_SETS = {
    "placed": "readmodel:placed",
    "completed": "readmodel:completed",
    "cancelled": "readmodel:cancelled",
}


class ReadModel:
    def __init__(self, client: aioredis.Redis, prefix: str = "readmodel:order:") -> None:
        self._client = client
        self.prefix = prefix

    def key(self, order_id: str) -> str:
        return self.prefix + order_id

    async def get(self, order_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(self.key(order_id)))

    async def apply(
        self, entries: Iterable[tuple[str, Mapping[str, str]]], *, track: bool = True
    ) -> int:
        """Apply a batch of (stream id, fields) in stream order; return how many changed a view."""
        entries = list(entries)
        order_ids = list(dict.fromkeys(f.get("order_id", "") for _, f in entries))
        async with self._client.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.hgetall(self.key(order_id))
            current = dict(zip(order_ids, await pipe.execute(), strict=True))
        changed: dict[str, dict[str, str]] = {}
        for stream_id, fields in entries:
            order_id = fields.get("order_id", "")
            new = apply_event(changed.get(order_id) or current[order_id], stream_id, fields)
            if new is not None:
                changed[order_id] = new
        if not changed:
            return 0
        async with self._client.pipeline(transaction=True) as pipe:
            for order_id, view in changed.items():
                pipe.hset(self.key(order_id), mapping=cast(Any, view))
                if track:
                    self._track(pipe, order_id, view)
            await pipe.execute()
        return len(changed)

    @staticmethod
    def _track(pipe: aioredis.client.Pipeline, order_id: str, view: Mapping[str, str]) -> None:
        pipe.sadd(COUNT_SETS["placed"], order_id)
        status = view.get("status", "")
        if status in TERMINAL_STATUSES:
            pipe.sadd(COUNT_SETS[status], order_id)
            pipe.zrem(INFLIGHT, order_id)
        elif view.get("placed_ms"):
            pipe.zadd(INFLIGHT, {order_id: int(view["placed_ms"])}, nx=True)

    async def counts(self) -> dict[str, int]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in COUNT_SETS.values():
                pipe.scard(key)
            pipe.zcard(INFLIGHT)
            pipe.zrange(INFLIGHT, 0, 0, withscores=True)
            *sizes, inflight, oldest = await pipe.execute()
        result = dict(zip(COUNT_SETS, (int(s) for s in sizes), strict=True))
        result["inflight"] = int(inflight)
        result["oldest_inflight_ms"] = int(oldest[0][1]) if oldest else 0
        return result
