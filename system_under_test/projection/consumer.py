"""The projection: a consumer group on orders:events that keeps the read model.

Crash-safe: the consumer has a stable name per replica, so after a restart it first re-reads
its own pending entries (XREADGROUP from 0) and only then new ones (>); entries left pending by
a consumer that never came back are reclaimed with XAUTOCLAIM. Views remember the last stream id
they applied, so a redelivered entry is a no-op. A batch's XACK is queued in the same MULTI/EXEC
as its read-model writes: the batch is applied and acknowledged together or not at all.

Batched, because the cost is per round trip, not per event: at the saga's rate entries arrive a
few at a time, so after a batch shorter than BATCH the consumer waits LINGER_S (SAGAQUAKE_PROJECTION_LINGER_S) before reading
again, and the next read takes what arrived meanwhile (the read model lags by at most that).
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import redis.asyncio as aioredis
import redis.exceptions

from system_under_test.projection.readmodel import ReadModel
from system_under_test.streams import EVENTS_STREAM, StreamEntries

__all__ = ["GROUP", "Projection", "ensure_group"]

GROUP = "projection"
BATCH = 500
RECLAIM_IDLE_MS = 60_000  # the default of SAGAQUAKE_RECLAIM_IDLE_S
LINGER_S = 0.1  # the default of SAGAQUAKE_PROJECTION_LINGER_S

log = logging.getLogger("projection")


async def ensure_group(client: aioredis.Redis) -> None:
    try:
        await client.xgroup_create(EVENTS_STREAM, GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Projection:
    def __init__(
        self,
        client: aioredis.Redis,
        consumer: str,
        reclaim_idle_ms: int = RECLAIM_IDLE_MS,
        linger_s: float = LINGER_S,
    ) -> None:
        self._client = client
        self._consumer = consumer
        self._reclaim_idle_ms = reclaim_idle_ms
        self._linger_s = linger_s
        self.model = ReadModel(client)
        self.applied = 0

    async def _read(self, start: str, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        reply = await self._client.xreadgroup(
            GROUP, self._consumer, {EVENTS_STREAM: start}, count=BATCH, block=block_ms
        )
        streams = cast(list[tuple[str, StreamEntries]], reply or [])
        return [(sid, fields) for _, entries in streams for sid, fields in entries if fields]

    async def _apply_and_ack(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        if not entries:
            return
        ids = [sid for sid, _ in entries]
        await self.model.apply(entries, also=lambda pipe: pipe.xack(EVENTS_STREAM, GROUP, *ids))
        self.applied += len(entries)

    async def drain_own_pending(self) -> None:
        while entries := await self._read("0", None):
            await self._apply_and_ack(entries)

    async def reclaim(self) -> None:
        """Take over entries another consumer left pending for too long."""
        cursor = "0-0"
        while True:
            cursor, claimed, *_ = await self._client.xautoclaim(
                EVENTS_STREAM,
                GROUP,
                self._consumer,
                self._reclaim_idle_ms,
                start_id=cursor,
                count=BATCH,
            )
            await self._apply_and_ack([(sid, f) for sid, f in claimed if f])
            if cursor in ("0-0", b"0-0"):
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; on a Redis error, wait and resume from the pending list."""
        last_reclaim = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await ensure_group(self._client)
                await self.drain_own_pending()
                while not stop.is_set():
                    if loop.time() - last_reclaim > self._reclaim_idle_ms / 1000:
                        await self.reclaim()
                        last_reclaim = loop.time()
                    entries = await self._read(">", 1000)
                    await self._apply_and_ack(entries)
                    if 0 < len(entries) < BATCH:  # more are on their way: let them gather
                        await asyncio.sleep(self._linger_s)
            except redis.exceptions.RedisError as exc:
                log.warning(
                    "redis error; resuming from pending", extra={"fields": {"error": str(exc)}}
                )
                await asyncio.sleep(1)
