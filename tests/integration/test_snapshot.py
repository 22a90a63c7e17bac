"""export_snapshot and load_live against a real redis-server and a real Temporal dev server.

A crafted history is written the way the system writes it (XADD at its stream ids, HSET of
the inventory and read-model hashes, one real OrderSaga workflow per order); the verdict read
back from the exported files must equal the verdict read live, for a clean history and for one
with a phantom order.

The servers are started by local fixtures in this file (to be replaced by the platform's
fixtures); each is killed by its pid at teardown.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest
import redis
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from harness.settings import free_port
from harness.verify import LiveSource, export_snapshot, load_snapshot, verify_run
from harness.verify.snapshot import load_events_from_redis
from harness.verify.verdict import Verdict
from tests.unit.verify.builders import EVENTS, HistoryBuilder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TEMPORAL = shutil.which("temporal") or str(Path(__file__).parents[2] / ".venv" / "bin" / "temporal")
CLIENT_SIDE_ONLY = (
    "orders:events",
    "payments:ledger",
    "inventory:ledger",
    "notifications:sent",
    "temporal",
    "inventory",
    "readmodel",
)


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _wait(
    ready: object, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    _stop(proc)
    pytest.fail(f"{what} was not ready after {timeout:.0f} s:\n{_tail(log)}")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = workdir / "redis.log"
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"

    def ready() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    _wait(ready, proc, log, "redis-server", 15)
    yield url
    _stop(proc)


@pytest.fixture(scope="module")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("temporal")
    port = free_port()
    log = workdir / "temporal.log"
    cmd = [TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    cmd += ["--port", str(port), "--http-port", str(free_port())]
    cmd += ["--metrics-port", str(free_port()), "--ui-port", str(free_port())]
    cmd += ["--db-filename", str(workdir / "t.db"), "--log-level", "warn"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"

    def ready() -> bool:
        health = [TEMPORAL, "operator", "cluster", "health", "--address", address]
        done = subprocess.run(health, capture_output=True, text=True, timeout=10, check=False)
        return "SERVING" in done.stdout

    _wait(ready, proc, log, "temporal server start-dev", 60)
    yield address
    _stop(proc)


@workflow.defn(name="OrderSaga")
class _OrderSaga:
    """Stands in for the real saga: Temporal only has to hold one run per order."""

    @workflow.run
    async def run(self, order_id: str) -> str:
        return order_id


STAND_IN = """
from temporalio import workflow


@workflow.defn(name="OrderSaga", sandboxed=False)
class OrderSaga:
    @workflow.run
    async def run(self, order_id: str) -> str:
        return order_id
"""


def _stand_in_code(root: Path) -> str:
    """A folder whose system_under_test has the stand-in saga: the code its histories replay on."""
    saga = root / "system_under_test" / "saga"
    saga.mkdir(parents=True)
    (root / "system_under_test" / "__init__.py").write_text("")
    (saga / "__init__.py").write_text("")
    (saga / "workflows.py").write_text(STAND_IN)
    return str(root)


def _write_to_redis(r: redis.Redis, b: HistoryBuilder) -> None:
    """What the services would have written: entries at their stream ids, and the hashes."""
    for stream, entries in b.streams.items():
        for stream_id, fields in entries:
            r.xadd(stream, fields, id=stream_id)
    for name, values in b.stock.items():
        if values:
            r.hset(f"inventory:{name}", mapping=values)
    for row in b.readmodel():
        r.hset(f"readmodel:order:{row['order_id']}", mapping=row)


async def _run_sagas(address: str, order_ids: list[str]) -> None:
    client = await Client.connect(address)
    queue = f"verify-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[_OrderSaga],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        for oid in order_ids:
            await client.execute_workflow(_OrderSaga.run, oid, id=oid, task_queue=queue)


async def _visible(address: str, count: int, timeout: float = 15.0) -> None:
    """Wait until Temporal's visibility lists every run (it lags the executions slightly)."""
    client = await Client.connect(address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [w async for w in client.list_workflows("WorkflowType='OrderSaga'")]
        if len(seen) >= count and all(w.status and w.status.name == "COMPLETED" for w in seen):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"Temporal lists {len(seen)} OrderSaga runs, expected {count}")


def _same(a: Verdict, b: Verdict) -> None:
    assert [r.to_dict() for r in a.invariants] == [r.to_dict() for r in b.invariants]
    assert a.ok == b.ok
    assert a.counts == b.counts


async def test_the_snapshot_and_the_live_stack_give_the_same_verdict(
    redis_url: str, temporal_address: str, tmp_path: Path
) -> None:
    b = HistoryBuilder()
    b.completed(items=[{"sku": "SKU-0001", "qty": 2}])
    b.completed(key="key-ünïcødé ✓")
    b.declined()
    b.refunded()
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 5}])
    b.refused(status=422)
    b.end_load()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    _write_to_redis(r, b)
    order_ids = [run["workflow_id"] for run in b.temporal]
    await _run_sagas(temporal_address, order_ids)
    await _visible(temporal_address, len(order_ids))

    run_dir = b.write(tmp_path / "run", omit=CLIENT_SIDE_ONLY)
    summary = await asyncio.to_thread(export_snapshot, run_dir, redis_url, temporal_address)
    assert summary["errors"] == {}
    assert summary["counts"]["orders:events"] == len(b.streams[EVENTS])
    hist = run_dir / "history"
    lines = (hist / "temporal.jsonl").read_bytes().splitlines()
    runs = [orjson.loads(line) for line in lines]
    assert sorted(x["workflow_id"] for x in runs) == sorted(order_ids)
    assert {x["status"] for x in runs} == {"COMPLETED"}
    first = orjson.loads((hist / "streams" / "orders.events.jsonl").read_bytes().splitlines()[0])
    assert first == {"id": b.streams[EVENTS][0][0], "fields": b.streams[EVENTS][0][1]}
    inventory = orjson.loads((hist / "inventory.json").read_bytes())
    assert inventory["sold"]["SKU-0001"] == b.stock["sold"]["SKU-0001"]

    assert summary["counts"]["histories"] == len(order_ids)
    # the stand-in's histories do not replay on the real saga, and the verifier says so
    real = await asyncio.to_thread(verify_run, run_dir)
    replay = real.result("replays_deterministically")
    assert replay.status == "fail" and replay.counts["violations"] == len(order_ids)
    code = _stand_in_code(tmp_path / "stand-in")
    from_files = await asyncio.to_thread(verify_run, run_dir, replay_against=code)
    live = await asyncio.to_thread(
        verify_run, run_dir, live=LiveSource(redis_url, temporal_address), replay_against=code
    )
    assert from_files.ok is True, [(x.name, x.status, x.error) for x in from_files.invariants]
    assert (from_files.source, live.source) == ("snapshot", "live")
    _same(from_files, live)
    drained = await asyncio.to_thread(load_events_from_redis, redis_url)
    snap = load_snapshot(run_dir)  # its stream ids and event ids are held apart, as bytes
    assert snap.events is not None and set(snap.texts["events"]) == {"id", "event_id"}
    whole = snap.events.assign(
        **{k: pd.Series(snap.text("events", k), dtype=object) for k in ("id", "event_id")}
    )
    assert drained.equals(whole[list(drained.columns)])

    # A phantom appears: both readings must name it, the same way.
    ghost = b.completed(ask=False)
    r.flushdb()
    _write_to_redis(r, b)
    await _run_sagas(temporal_address, [ghost.order_id])
    await _visible(temporal_address, len(order_ids) + 1)
    run_dir = b.write(tmp_path / "run2", omit=CLIENT_SIDE_ONLY)
    await asyncio.to_thread(export_snapshot, run_dir, redis_url, temporal_address)
    from_files = await asyncio.to_thread(verify_run, run_dir, replay_against=code)
    live = await asyncio.to_thread(
        verify_run, run_dir, live=LiveSource(redis_url, temporal_address), replay_against=code
    )
    phantom = from_files.result("no_phantom_order")
    assert phantom.status == "fail"
    assert phantom.first["order_id"] == ghost.order_id
    assert phantom.first["why"].startswith("no client asked for it; found in orders:events")
    _same(from_files, live)
