"""The projection against a real redis-server: a batch is applied and acknowledged together or
not at all, a restart re-reads its own pending entries, a dead consumer's entries are reclaimed,
redelivery changes nothing, and the live read model equals the rebuild and model.rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from harness.settings import free_port
from system_under_test.projection.consumer import GROUP, Projection, ensure_group
from system_under_test.projection.model import rebuild
from system_under_test.projection.readmodel import COUNT_SETS, INFLIGHT, ReadModel
from system_under_test.projection.rebuild import compare, rebuild_into
from system_under_test.streams import EVENTS_STREAM, EventAppender, StreamEntries, connect

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 15
    while True:
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                break
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start:\n{(workdir / 'redis.log').read_text()}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url, retries=0)
    await client.flushdb()
    yield client
    await client.config_set("maxmemory", "0")
    await client.aclose()


async def _append_orders(client: aioredis.Redis, orders: int, cancelled_every: int = 4) -> int:
    """Orders as the saga appends them, interleaved: completed ones, every `cancelled_every`th
    declined and cancelled; return how many entries."""
    appender = EventAppender(client)
    plans: list[list[tuple[str, dict[str, Any]]]] = []
    for i in range(orders):
        placed = {"customer_id": f"c-{i}", "amount_cents": 100 + i, "currency": "EUR"}
        if i % cancelled_every == 0:
            tail = [("PaymentDeclined", {"reason": "card"}), ("OrderCancelled", {"reason": "x"})]
        else:
            tail = [("PaymentCaptured", {"payment_id": f"p-{i}"}), ("OrderCompleted", {})]
            tail.append(("NotificationSent", {"notification_id": f"n-{i}"}))
        plans.append([("OrderPlaced", placed), ("InventoryReserved", {"items": "[]"}), *tail])
    appended = 0
    for step in range(max(len(p) for p in plans)):
        for i, plan in enumerate(plans):
            if step < len(plan):
                await appender.append(plan[step][0], f"ord-{i:04d}", plan[step][1])
                appended += 1
    return appended


async def _snapshot(client: aioredis.Redis) -> dict[str, Any]:
    """The whole read model: every view, the count sets and the in-flight set."""
    keys = sorted([k async for k in client.scan_iter(match="readmodel:order:*")])
    return {
        "views": {k: await client.hgetall(k) for k in keys},
        "sets": {name: sorted(await client.smembers(key)) for name, key in COUNT_SETS.items()},
        "inflight": await client.zrange(INFLIGHT, 0, -1, withscores=True),
    }


async def _expected_views(client: aioredis.Redis) -> dict[str, dict[str, str]]:
    views = rebuild(cast(StreamEntries, await client.xrange(EVENTS_STREAM)))
    return {f"readmodel:order:{order_id}": view for order_id, view in views.items()}


async def _pending(client: aioredis.Redis) -> int:
    return int((await client.xpending(EVENTS_STREAM, GROUP))["pending"])


@contextlib.asynccontextmanager
async def _running(projection: Projection) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(projection.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def _until(check: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_read_model_equals_model_rebuild_and_the_sets_agree(
    client: aioredis.Redis,
) -> None:
    events = await _append_orders(client, 40)
    projection = Projection(client, "c1")
    async with _running(projection):
        await _until(lambda: _caught_up(projection, events))
    assert await _pending(client) == 0
    model = await _snapshot(client)
    assert model["views"] == await _expected_views(client)
    orders = [f"ord-{i:04d}" for i in range(40)]
    assert model["sets"]["placed"] == orders
    assert model["sets"]["cancelled"] == orders[::4]
    assert model["sets"]["completed"] == [o for o in orders if o not in orders[::4]]
    assert model["inflight"] == []


async def _caught_up(projection: Projection, events: int) -> bool:
    return projection.applied >= events


async def test_in_flight_orders_are_tracked_until_they_end(client: aioredis.Redis) -> None:
    appender = EventAppender(client)
    await appender.append("OrderPlaced", "ord-a", {"amount_cents": 5, "currency": "EUR"})
    await appender.append("OrderPlaced", "ord-b", {"amount_cents": 6, "currency": "EUR"})
    model = ReadModel(client)
    await model.apply(cast(StreamEntries, await client.xrange(EVENTS_STREAM)))
    assert [o for o, _ in await client.zrange(INFLIGHT, 0, -1, withscores=True)] == [
        "ord-a",
        "ord-b",
    ]
    await appender.append("OrderCompleted", "ord-a", {})
    await model.apply(cast(StreamEntries, await client.xrange(EVENTS_STREAM)))
    assert await client.zrange(INFLIGHT, 0, -1) == ["ord-b"]
    assert await model.counts() == {
        "placed": 2,
        "completed": 1,
        "cancelled": 0,
        "inflight": 1,
        "oldest_inflight_ms": int((await model.get("ord-b"))["placed_ms"]),
    }


async def test_a_batch_redis_refuses_is_neither_applied_nor_acknowledged(
    client: aioredis.Redis,
) -> None:
    """Under OOM the batch's MULTI/EXEC is refused whole, its XACK too: the entries stay
    pending and are applied once Redis takes writes again."""
    events = await _append_orders(client, 12)
    await ensure_group(client)
    await client.xreadgroup(GROUP, "c1", {EVENTS_STREAM: ">"}, count=events)
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", "1")
    projection = Projection(client, "c1")
    with pytest.raises(redis.exceptions.RedisError):
        await projection.drain_own_pending()
    assert await _pending(client) == events
    assert [k async for k in client.scan_iter(match="readmodel:*")] == []
    await client.config_set("maxmemory", "0")
    await asyncio.wait_for(projection.drain_own_pending(), timeout=10)
    assert projection.applied == events
    assert await _pending(client) == 0
    assert (await _snapshot(client))["views"] == await _expected_views(client)


async def test_a_restarted_consumer_applies_its_own_pending_entries_first(
    client: aioredis.Redis,
) -> None:
    """Delivered, then the consumer died before applying: the same name picks them up."""
    events = await _append_orders(client, 8)
    await ensure_group(client)
    await client.xreadgroup(GROUP, "c1", {EVENTS_STREAM: ">"}, count=events)
    assert await _pending(client) == events
    projection = Projection(client, "c1")
    await asyncio.wait_for(projection.drain_own_pending(), timeout=10)
    assert projection.applied == events
    assert await _pending(client) == 0
    assert (await _snapshot(client))["views"] == await _expected_views(client)


async def test_a_dead_consumers_entries_are_reclaimed_and_applied(client: aioredis.Redis) -> None:
    events = await _append_orders(client, 8)
    await ensure_group(client)
    await client.xreadgroup(GROUP, "gone", {EVENTS_STREAM: ">"}, count=events // 2)
    projection = Projection(client, "c2", reclaim_idle_ms=100)
    await projection.drain_own_pending()
    assert projection.applied == 0
    await asyncio.sleep(0.2)
    await projection.reclaim()
    assert projection.applied == events // 2
    async with _running(projection):
        await _until(lambda: _caught_up(projection, events))
    assert await _pending(client) == 0
    assert (await _snapshot(client))["views"] == await _expected_views(client)


async def test_redelivered_and_out_of_order_entries_change_nothing(
    client: aioredis.Redis,
) -> None:
    """The newer half first (as after a reclaim), then everything again: the same read model as
    one pass in stream order, and a replayed batch writes no view."""
    await _append_orders(client, 10)
    entries = cast(StreamEntries, await client.xrange(EVENTS_STREAM))
    model = ReadModel(client)
    half = len(entries) // 2
    await model.apply(entries[half:])
    await model.apply(entries[:half])
    once = await _snapshot(client)
    assert once["views"] == await _expected_views(client)
    assert await model.apply(entries) == 0
    assert await model.apply(entries[half:]) == 0
    assert await _snapshot(client) == once


async def test_the_rebuild_equals_the_live_read_model(client: aioredis.Redis) -> None:
    events = await _append_orders(client, 30)
    projection = Projection(client, "c1")
    async with _running(projection):
        await _until(lambda: _caught_up(projection, events))
    replayed, orders = await rebuild_into(client, "rebuild:order:")
    assert replayed == events
    assert await compare(client, "rebuild:order:", orders) == []
    live, rebuilt = ReadModel(client), ReadModel(client, "rebuild:order:")
    for order_id in orders:
        assert await rebuilt.get(order_id) == await live.get(order_id)
