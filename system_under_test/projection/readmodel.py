"""Reading and writing the read model in Redis. Every write is idempotent (HSET of the fields of
the computed view that changed, set and sorted-set membership), so a batch retried after a crash
changes nothing twice.

The cost is per Redis command on the client (packing, parsing), so a batch costs a fixed number
of commands plus one HSET per changed view: one script reads every view the batch touches, and
one MULTI/EXEC writes the views and moves the batch's order ids between the tracking sets."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from system_under_test.projection.model import TERMINAL_STATUSES, apply_event

__all__ = ["COUNT_SETS", "INFLIGHT", "ReadModel"]

# Read-only (it works while Redis refuses writes): the views of KEYS, each as HGETALL gives it.
_READ_VIEWS = """
local views = {}
for i, key in ipairs(KEYS) do views[i] = redis.call('HGETALL', key) end
return views
"""

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

    @functools.cached_property
    def _read_views(self) -> AsyncScript:
        return self._client.register_script(_READ_VIEWS)

    def key(self, order_id: str) -> str:
        return self.prefix + order_id

    async def get(self, order_id: str) -> dict[str, str]:
        return cast(dict[str, str], await self._client.hgetall(self.key(order_id)))

    async def apply(
        self,
        entries: Iterable[tuple[str, Mapping[str, str]]],
        *,
        track: bool = True,
        also: Callable[[aioredis.client.Pipeline], object] | None = None,
    ) -> int:
        """Apply a batch of (stream id, fields) in stream order; return how many changed a view.

        Two round trips per batch: one script reads the views the batch touches, one MULTI/EXEC
        writes what changed. `also` queues more commands into that MULTI/EXEC (the consumer's
        XACK), so they take effect exactly when the batch's writes do."""
        entries = list(entries)
        order_ids = list(dict.fromkeys(f.get("order_id", "") for _, f in entries))
        flat_views = await self._read_views(keys=[self.key(o) for o in order_ids])
        current = {
            order_id: dict(zip(flat[::2], flat[1::2], strict=True))
            for order_id, flat in zip(order_ids, flat_views, strict=True)
        }
        changed: dict[str, dict[str, str]] = {}
        for stream_id, fields in entries:
            order_id = fields.get("order_id", "")
            new = apply_event(changed.get(order_id) or current[order_id], stream_id, fields)
            if new is not None:
                changed[order_id] = new
        if not changed and also is None:
            return 0
        async with self._client.pipeline(transaction=True) as pipe:
            for order_id, view in changed.items():
                before = current[order_id]
                # Only the fields that changed: the view in Redis becomes `view` all the same.
                diff = {k: v for k, v in view.items() if before.get(k) != v}
                if diff:
                    pipe.hset(self.key(order_id), mapping=cast(Any, diff))
            if track:
                self._track(pipe, current, changed)
            if also is not None:
                also(pipe)
            await pipe.execute()
        return len(changed)

    @staticmethod
    def _track(
        pipe: aioredis.client.Pipeline,
        before: Mapping[str, Mapping[str, str]],
        changed: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Queue the count sets' and the in-flight set's changes, one command per set: only what
        a view's change moves, since each view's own write shares the MULTI/EXEC, so what the
        view showed `before` was tracked when it was written."""
        placed = [order_id for order_id in changed if not before[order_id]]
        ended: dict[str, list[str]] = {status: [] for status in TERMINAL_STATUSES}
        started: dict[str, int] = {}
        for order_id, view in changed.items():
            was, status = before[order_id], view.get("status", "")
            if status in TERMINAL_STATUSES:
                if status != was.get("status"):
                    ended[status].append(order_id)
            elif view.get("placed_ms") and view["placed_ms"] != was.get("placed_ms"):
                started[order_id] = int(view["placed_ms"])
        if placed:
            pipe.sadd(COUNT_SETS["placed"], *placed)
        for status, order_ids in ended.items():
            if order_ids:
                pipe.sadd(COUNT_SETS[status], *order_ids)
        if finished := [o for order_ids in ended.values() for o in order_ids]:
            pipe.zrem(INFLIGHT, *finished)
        if started:
            pipe.zadd(INFLIGHT, cast(Any, started), nx=True)

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
