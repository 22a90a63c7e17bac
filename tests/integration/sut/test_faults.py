"""The saga under faults on the real stack: a payment outage, killed payment replicas, a Redis
that refuses writes, a killed projection. Nothing may be lost, charged twice or left half-done."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from typing import NamedTuple

import pytest
import redis.exceptions
from temporalio.api.enums.v1 import RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from harness.chaos.observe import group_backlog
from system_under_test.config import settings
from system_under_test.projection.rebuild import compare, rebuild_into
from system_under_test.streams import connect
from tests.integration.orders import HAPPY, client, key_where, order_body, place, wait_terminal

pytestmark = pytest.mark.integration


class TaskQueueConfigView(NamedTuple):
    requests_per_second: float
    source: int


def captures(stack, order_ids: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(order_ids, 0)
    for _, f in client(stack.endpoints).xrange("payments:ledger"):
        if f["order_id"] in counts and f["kind"] == "capture":
            counts[f["order_id"]] += 1
    return counts


def test_orders_wait_out_a_payment_outage_and_complete_charged_once(stack) -> None:
    stack.platform.stop("payment-service")
    try:
        ids = [
            place(stack.endpoints, order_body("SKU-0021"), key_where(False)).json()["order_id"]
            for _ in range(8)
        ]
        r = client(stack.endpoints)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(r.hexists(f"orders:dedupe:{o}", "InventoryReserved") for o in ids):
                break
            time.sleep(0.2)
        for order_id in ids:  # paused at the payment step, not failed
            seen = r.hkeys(f"orders:dedupe:{order_id}")
            assert (
                "InventoryReserved" in seen
                and "PaymentCaptured" not in seen
                and "OrderCancelled" not in seen
            )
    finally:
        stack.platform.start("payment-service")
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 90) == HAPPY
    assert set(captures(stack, ids).values()) == {1}


def _pending_activity_types(stack, order_id: str) -> list[str]:
    async def run() -> list[str]:
        temporal = await Client.connect(stack.endpoints.temporal_address)
        described = await temporal.get_workflow_handle(order_id).describe()
        return [a.activity_type.name for a in described.raw_description.pending_activities]

    return asyncio.run(run())


def test_sagas_waiting_for_payment_hold_no_worker_slot_so_new_orders_are_placed(stack) -> None:
    """Three workflow-task slots per worker, and four times as many orders as slots while payment
    is down: every order is still placed and reserved during the outage (a saga waits for the
    charge as a regular activity in the server, not in a slot), then charged once."""
    stack.platform.deploy("saga-worker", {"SAGAQUAKE_WORKER_CONCURRENCY": "3"}, wait_s=120)
    stack.platform.stop("payment-service")
    try:
        ids = [
            place(stack.endpoints, order_body("SKU-0024"), key_where(False)).json()["order_id"]
            for _ in range(24)  # two workers: 6 slots
        ]
        r = client(stack.endpoints)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            reserved = [o for o in ids if r.hexists(f"orders:dedupe:{o}", "InventoryReserved")]
            if len(reserved) == len(ids):
                break
            time.sleep(0.5)
        assert len(reserved) == len(ids), f"{len(ids) - len(reserved)} orders not reserved"
        assert _pending_activity_types(stack, ids[0]) == ["capture_payment"]
    finally:
        stack.platform.start("payment-service")
        stack.platform.deploy("saga-worker", {"SAGAQUAKE_WORKER_CONCURRENCY": "100"}, wait_s=120)
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 120) == HAPPY
    assert set(captures(stack, ids).values()) == {1}


def test_the_task_queue_paces_waiting_steps_at_the_workers_setting(stack) -> None:
    """Only the steps that wait are regular activities, and the workers ask the server to hand
    them out at SAGAQUAKE_WAITING_STEPS_PER_S across the task queue (the default here): a
    payment-service coming back meets a steady rate, not every waiting saga at once."""

    async def describe() -> TaskQueueConfigView:
        temporal = await Client.connect(stack.endpoints.temporal_address)
        got = await temporal.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=temporal.namespace,
                task_queue=TaskQueue(name=settings().task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_config=True,
            )
        )
        limit = got.effective_rate_limit
        return TaskQueueConfigView(limit.requests_per_second, limit.rate_limit_source)

    view = asyncio.run(describe())
    assert view == TaskQueueConfigView(
        settings().waiting_steps_per_s, RateLimitSource.RATE_LIMIT_SOURCE_WORKER
    ), view


def test_orders_wait_out_a_hung_payment_and_each_is_charged_once(stack) -> None:
    """A hung payment-service (SIGSTOP) takes the charges into its socket and answers none: each
    call times out, an ambiguous fault, and its retries carry the same Idempotency-Key, so the
    service, once woken, charges each order once whatever it had queued."""
    stack.platform.pause("payment-service")
    try:
        ids = [
            place(stack.endpoints, order_body("SKU-0023"), key_where(False)).json()["order_id"]
            for _ in range(4)
        ]
        r = client(stack.endpoints)
        deadline = time.monotonic() + 20
        while not all(r.hexists(f"orders:dedupe:{o}", "InventoryReserved") for o in ids):
            assert time.monotonic() < deadline, "the orders were never reserved"
            time.sleep(0.2)
        # each charge's local attempt is cut at the saga's LOCAL_BUDGET (as long as the HTTP
        # time-out), then its first attempt as a regular activity times out on its own
        time.sleep(2 * settings().http_timeout_s + 2)
        for order_id in ids:
            assert not r.hexists(f"orders:dedupe:{order_id}", "PaymentCaptured")
    finally:
        stack.platform.resume("payment-service")
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 90) == HAPPY
    assert set(captures(stack, ids).values()) == {1}
    # the charges did time out, and each time-out (the HTTP client's, or the saga's cut of a local
    # attempt, logged as the activity's cancel) was logged as an outage: one line, no traceback
    failed = [
        json.loads(line)
        for log in stack.platform.logs_dir.glob("saga-worker*.log")
        for line in log.read_text().splitlines()
        if line.startswith("{") and "'capture_payment'" in line and any(o in line for o in ids)
    ]
    assert any("Timeout" in f.get("error", "") for f in failed), failed
    assert not any("exc" in f for f in failed), failed


def test_payment_replicas_killed_mid_request_charge_each_order_once(stack) -> None:
    ids: list[str] = []

    def steady_orders() -> None:
        for _ in range(40):
            answer = place(stack.endpoints, order_body("SKU-0022"), key_where(False))
            ids.append(answer.json()["order_id"])
            time.sleep(0.05)

    sender = threading.Thread(target=steady_orders)
    sender.start()
    evidence = []
    for _ in range(3):
        time.sleep(0.6)
        evidence += stack.platform.kill("payment-service", count=2, signal="KILL")
    sender.join()
    assert all(e.landed for e in evidence), evidence
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 120) == HAPPY
    assert set(captures(stack, ids).values()) == {1}


def test_orders_accepted_while_redis_refuses_writes_complete_afterwards(stack) -> None:
    r = client(stack.endpoints)
    original = r.config_get("maxmemory")["maxmemory"]
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", max(used // 2, 1024 * 1024))
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.xadd("probe:oom", {"x": "1"})
        ids = []
        for _ in range(5):
            answer = place(stack.endpoints, order_body("SKU-0023"), key_where(False))
            assert answer.status_code == 202, answer.text  # Temporal, not Redis, accepts orders
            ids.append(answer.json()["order_id"])
        time.sleep(3)
        assert not any(r.exists(f"orders:dedupe:{o}") for o in ids), (
            "an event was written while Redis refused writes"
        )
    finally:
        r.config_set("maxmemory", original)
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 120) == HAPPY
    assert set(captures(stack, ids).values()) == {1}


def _projection_caught_up(stack, timeout_s: float = 60) -> None:
    r = client(stack.endpoints)
    deadline = time.monotonic() + timeout_s
    while (backlog := group_backlog(r)) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backlog == 0, f"projection did not catch up: {backlog} entries left"


def _rebuild_diffs(stack) -> list[str]:
    async def run() -> list[str]:
        redis = connect(stack.endpoints.redis_url)
        _, orders = await rebuild_into(redis, "test-rebuild:order:")
        diffs = await compare(redis, "test-rebuild:order:", orders)
        await redis.aclose()
        return diffs

    return asyncio.run(run())


def test_projection_killed_mid_stream_skips_no_event(stack) -> None:
    ids: list[str] = []

    def steady_orders() -> None:
        for _ in range(60):
            ids.append(place(stack.endpoints, order_body("SKU-0024")).json()["order_id"])
            time.sleep(0.03)

    sender = threading.Thread(target=steady_orders)
    sender.start()
    for _ in range(3):
        time.sleep(0.7)
        assert all(e.landed for e in stack.platform.kill("projection", signal="KILL"))
    sender.join()
    for order_id in ids:
        wait_terminal(stack.endpoints, order_id, 120)
    _projection_caught_up(stack)
    assert _rebuild_diffs(stack) == []
    r = client(stack.endpoints)
    for order_id in ids:
        assert r.hget(f"readmodel:order:{order_id}", "status") in ("completed", "cancelled")


def test_projection_misses_nothing_across_a_redis_stall_longer_than_its_timeout(stack) -> None:
    """Redis frozen past the clients' 5 s socket time-out: the projection's blocked
    `XREADGROUP >` times out, and Redis serves it (delivering entries) when it wakes. A client
    that retried the read would skip those entries and apply them later, out of order: a view
    that never sees its OrderPlaced."""
    ids: list[str] = []
    stop = threading.Event()

    def steady_orders() -> None:
        while not stop.is_set():
            ids.append(place(stack.endpoints, order_body("SKU-0026")).json()["order_id"])
            time.sleep(0.05)

    sender = threading.Thread(target=steady_orders)
    sender.start()
    try:
        for _ in range(3):
            time.sleep(1.5)
            stack.platform.pause("redis")
            time.sleep(6.5)
            stack.platform.resume("redis")
    finally:
        stack.platform.resume("redis")
        stop.set()
        sender.join()
    for order_id in ids:
        wait_terminal(stack.endpoints, order_id, 120)
    _projection_caught_up(stack)
    assert _rebuild_diffs(stack) == []


def test_rebuild_command_equals_the_live_read_model(stack) -> None:
    order_id = place(stack.endpoints, order_body("SKU-0025")).json()["order_id"]
    wait_terminal(stack.endpoints, order_id)
    _projection_caught_up(stack)
    env = {**os.environ, "SAGAQUAKE_REDIS_URL": stack.endpoints.redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "system_under_test.projection.rebuild", "--compare"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilt read model equals the live one" in done.stdout
