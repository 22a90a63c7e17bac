"""Actions, rollbacks and probes on the real stack, for what the experiment runs do not cover:
Redis filled with real bytes, a policy that would evict, restoring twice, a worker kill with
nothing in flight, and the probes' view of a healthy stack (the canary order included)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.chaos import actions, probes, rollbacks
from harness.chaos.faults import FaultNotLanded, read_faults
from harness.chaos.observe import temporal_view
from harness.chaos.redis_memory import FILL_PREFIX
from harness.chaos.state import read_state
from harness.load.ledger import FIELDS
from harness.platforms.base import SERVICES
from harness.runs import read_jsonl
from tests.integration.chaos.load import check_orders

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_filling_redis_with_real_bytes_proves_oom_and_removes_every_filler(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    window = actions.exhaust_redis_memory(
        duration_s=0.5, mode="fill", fill_mb=2, configuration=chaos_run
    )
    evidence = window["evidence"]
    assert window["landed"] is True and evidence["refused_write"].startswith("OutOfMemoryError")
    assert evidence["filler_keys"] > 0 and evidence["filler_bytes"] > 1024 * 1024
    assert evidence["restored"]["fillers_removed"] == evidence["filler_keys"]
    assert not stack.platform.redis("KEYS", f"{FILL_PREFIX}*")
    assert read_faults(chaos_run["sagaquake_run_dir"]) == [window]


def test_a_policy_that_would_evict_keys_is_refused_before_anything_changes(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    before = stack.platform.redis("CONFIG", "GET", "maxmemory")["maxmemory"]
    stack.platform.redis("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(FaultNotLanded, match=r"policy is 'allkeys-lru': a lower limit would evict keys"):  # fmt: skip
            actions.exhaust_redis_memory(duration_s=1, configuration=chaos_run)
        assert stack.platform.redis("CONFIG", "GET", "maxmemory")["maxmemory"] == before
    finally:
        stack.platform.redis("CONFIG", "SET", "maxmemory-policy", "noeviction")
    (window,) = read_faults(chaos_run["sagaquake_run_dir"])
    assert window["landed"] is False and "would evict keys" in window["evidence"]["error"]


def test_a_lowered_limit_stays_until_restored_and_restoring_twice_is_fine(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    lowered = actions.lower_redis_maxmemory(fraction=0.5, configuration=chaos_run)
    try:
        assert lowered["landed"] is True and lowered["ended_at"] is None
        assert probes.redis_memory(configuration=chaos_run)["writes_refused"] is True
        assert read_faults(run_dir) == []  # the fault is still on: its window is open
        assert (
            read_state(run_dir)["redis_maxmemory"]["original"]
            == lowered["evidence"]["original_maxmemory"]
        )
    finally:
        first = rollbacks.restore_redis_maxmemory(configuration=chaos_run)
    assert first["restored"] is True and first["windows_closed"] == 1
    second = rollbacks.restore_redis_maxmemory(configuration=chaos_run)
    assert second["restored"] is False and second["reason"] == "nothing to restore"
    (window,) = read_faults(run_dir)
    assert window["action"] == "lower_redis_maxmemory"
    assert window["evidence"]["closed_by"] == "restore_redis_maxmemory"
    assert probes.redis_memory(configuration=chaos_run)["writes_refused"] is False


def test_killing_a_worker_with_nothing_in_flight_is_not_a_landed_fault(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while temporal_view(stack.endpoints)["running_workflows"] or stack.platform.redis(
        "ZCARD", "readmodel:inflight"
    ):
        if time.monotonic() > deadline:
            pytest.skip("the shared stack never went idle")
        time.sleep(0.5)
    restarts = probes.process_restarts(["saga-worker"], configuration=chaos_run)
    with pytest.raises(FaultNotLanded, match=r"no order was in flight within 1 s"):
        actions.kill_saga_workers(wait_inflight_s=1, configuration=chaos_run)
    assert probes.process_restarts(["saga-worker"], configuration=chaos_run) == restarts
    (window,) = read_faults(chaos_run["sagaquake_run_dir"])
    assert window["landed"] is False and window["evidence"].get("killed") is None


def test_probes_see_a_healthy_stack_and_the_canary_is_recorded_like_a_client(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    canary = probes.order_api_accepting(configuration=chaos_run)
    assert canary["accepting"] is True and canary["status"] == 202
    (line,) = read_jsonl(run_dir / "history" / "ledger" / "client-chaos-probe.jsonl").records
    assert tuple(line) == FIELDS
    assert line["order_id"] == canary["order_id"] and line["outcome"] == "ok"
    assert check_orders(stack.endpoints, run_dir)["orders"] == 1  # the canary finishes too
    assert probes.order_api_accepting(canary=False, configuration=chaos_run)["readyz"] == 200
    assert probes.acceptance_rate(60, configuration=chaos_run)["ok"] == 1
    assert probes.unsettled_orders(configuration=chaos_run)["unsettled"] == 0
    assert probes.wait_until_settled(10, configuration=chaos_run)["settled"] is True
    ready = probes.services_ready(configuration=chaos_run)
    assert ready["ready"] is True and ready["replicas"] >= len(SERVICES)
    memory = probes.redis_memory(configuration=chaos_run)
    assert memory["writes_refused"] is False and memory["policy"] == "noeviction"
    assert probes.workflow_backlog(configuration=chaos_run)["activity_pollers"] >= 1
    assert set(probes.inflight_orders(configuration=chaos_run)) == {
        "inflight", "oldest_age_s", "oldest_order",
    }  # fmt: skip
    restarts = probes.process_restarts(configuration=chaos_run)
    assert "redis" in restarts["by_replica"] and restarts["total"] >= 0
    assert probes.confirmation_paths(configuration=chaos_run)["completed_during_outage"] == 0
