"""Every experiment of scenarios/chaos (clean and ambiguous faults) run for real against the
session's stack while a light load places orders: the hypothesis holds before and after, the fault landed with its proof in
faults.jsonl, every rollback ran, and every order a client was told was accepted finishes along
a legal path, captured at most once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.faults import read_faults
from harness.chaos.runner import list_experiments, run_experiment_file
from harness.platforms.local_faults import nft_unsupported
from tests.integration.chaos.load import BackgroundLoad, check_orders

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

FAST = {"sagaquake_compress": 100, "settle_timeout_s": 120}


def _kills(evidence: dict[str, Any], n: int) -> None:
    killed = evidence["killed"]
    assert len(killed) == n, killed
    for kill in killed:
        assert kill["new_pid"] and kill["new_pid"] != kill["old_pid"], kill
        assert kill["restart_rose"] and kill["restarts_after"] > kill["restarts_before"], kill


def _outage(evidence: dict[str, Any]) -> None:
    assert evidence["down"]["running_replicas"] == 0
    before = {r["uid"] for r in evidence["replicas_before"]}
    after = {r["uid"] for r in evidence["replicas_after"]}
    assert after and not before & after, evidence
    assert "inflight_orders" in evidence["held_back"]


def _method_output(journal: dict[str, Any], name: str) -> Any:
    return next(r["output"] for r in journal["run"] if r["activity"]["name"] == name)


def check_kill_payment(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    _kills(evidence, 2)
    assert {k["name"] for k in evidence["killed"]} <= {"payment-service_00", "payment-service_01"}
    assert evidence["every_s"] == 2 and evidence["every_s_production"] == 200


def check_payment_outage(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    _outage(evidence)
    assert "no answer from" in evidence["down"]["http"]
    assert evidence["duration_s"] == 4 and evidence["duration_s_production"] == 400


def check_notification_outage(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    _outage(evidence)
    paths = _method_output(journal, "pubsub-against-stream")
    assert paths["lost_by_stream"] == 0, paths
    assert paths["completed_during_outage"] > 0, paths
    assert paths["lost_by_pubsub"] > 0, f"pub/sub should have lost confirmations: {paths}"


def check_memory(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["refused_write"].startswith("OutOfMemoryError"), evidence
    assert evidence["maxmemory"] < evidence["used_memory"]
    assert evidence["restored"]["restored"] and evidence["restored"]["write_ok"]
    assert str(evidence["restored"]["maxmemory"]) == evidence["original_maxmemory"]
    assert evidence["oom_errors_during"] >= 1
    assert _method_output(journal, "redis-memory-after")["writes_refused"] is False


def check_kill_workers(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    _kills(evidence, 1)
    in_flight = evidence["killed"][0]["in_flight"]
    assert in_flight["in_flight"] is True, in_flight
    assert in_flight.get("running_workflows") or in_flight.get("readmodel_inflight"), in_flight


def check_restart(evidence: dict[str, Any], lost: str) -> None:
    (before,), (after,) = evidence["replicas_before"], evidence["replicas_after"]
    assert after["pid"] != before["pid"] and after["restarts"] > before["restarts"]
    assert evidence[lost] == 0, evidence


def check_temporal(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    check_restart(evidence, "workflows_lost")
    assert evidence["mode"] == "restart (SIGTERM)"
    assert evidence["after"]["workflows"] >= evidence["before"]["workflows"] > 0


def check_redis(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    check_restart(evidence, "events_lost")
    assert evidence["mode"] == "crash (SIGKILL)"
    assert evidence["after"]["run_id"] != evidence["before"]["run_id"]


def check_hang(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["mode"] == "hang" and all(p["paused"] for p in evidence["paused"])
    assert evidence["request"]["outcome"] == "no answer"
    assert evidence["resumed"] and evidence["during"]["accepted"] >= 1, evidence


def check_flap(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["cycles"] >= 3, evidence
    trips = evidence["round_trips"]
    assert trips["answered"] >= 3 and trips["p99_ms"] >= 100, trips


def check_partition(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["request"]["outcome"] == "connect timed out"
    assert evidence["dropped_packets"] >= 1 and evidence["healed"], evidence


def check_lost_replies(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["request"]["outcome"] == "no answer"
    assert evidence["dropped_packets"] >= 1 and evidence["healed"], evidence
    unheard = evidence["unheard"]
    if "ledger" in unheard:  # a service with a ledger of its own: work done, never heard of
        assert unheard["count"] >= 1 and unheard["examples"], unheard


def check_mid_request(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    (kill,) = evidence["kills"]
    held = kill["in_flight"]
    assert held.get("accept_queue") or held.get("unread_bytes") or held.get("pending_entries")
    assert kill["landed"] and kill["new_uid"] != kill["old_uid"], kill
    assert kill["mode"] == "held" and kill["ran_for_ms"] == 0, (
        kill
    )  # the first kill: before it reads


def check_consumer_lost(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    assert evidence["consumer"] == "projection_01" and evidence["replicas"] == 1, evidence
    assert evidence["in_flight"]["pending_entries"] >= 1, evidence
    assert evidence["frozen"] == ["projection_00", "projection_01"], evidence
    [reclaim] = [
        r for r in journal["run"] if r["activity"]["name"].endswith("are-reclaimed-and-applied")
    ]
    assert reclaim["output"]["projected"] is True, reclaim[
        "output"
    ]  # another consumer reclaimed them


def check_temporal_outage(evidence: dict[str, Any], journal: dict[str, Any]) -> None:
    _outage(evidence)


KILL_ONCE = {"kill_for_s": 0, "inflight_wait_s": 30}
CASES: dict[str, tuple[dict[str, Any], str, str, Callable[[dict, dict], None]]] = {
    "kill-payment-pods": (
        {"kill_every_s": 200, "kill_for_s": 300}, "kill_replicas", "payment-service",
        check_kill_payment,
    ),
    "payment-outage": (
        {"outage_s": 400, "safeguard_max_inflight_age_s": 6000}, "outage", "payment-service",
        check_payment_outage,
    ),
    "notification-outage": ({"outage_s": 300}, "outage", "notification-service",
                            check_notification_outage),
    "redis-memory-exhaustion": ({"hold_s": 300}, "exhaust_redis_memory", "redis", check_memory),
    "kill-saga-workers": ({"kill_for_s": 0}, "kill_saga_workers", "saga-worker",
                          check_kill_workers),
    "temporal-restart": ({}, "restart_service", "temporal", check_temporal),
    "redis-restart": ({}, "restart_service", "redis", check_redis),
    "payment-hang": ({"hang_s": 600}, "pause_service", "payment-service", check_hang),
    "slow-redis": ({"slow_for_s": 400, "stall_ms": 300, "period_ms": 600}, "pause_service",
                   "redis", check_flap),
    "redis-partition": ({"partition_s": 300}, "partition_service", "redis", check_partition),
    "temporal-partition": ({"partition_s": 300}, "partition_service", "temporal",
                           check_partition),
    "temporal-outage": ({"outage_s": 1000}, "outage", "temporal", check_temporal_outage),
    "payment-lost-replies": ({"lose_for_s": 600}, "lose_replies", "payment-service",
                             check_lost_replies),
    "inventory-lost-replies": ({"lose_for_s": 600}, "lose_replies", "inventory-service",
                               check_lost_replies),
    "notification-lost-replies": ({"lose_for_s": 600}, "lose_replies", "notification-service",
                                  check_lost_replies),
    "redis-lost-replies": ({"lose_for_s": 300}, "lose_replies", "redis", check_lost_replies),
    "kill-order-service-mid-request": (KILL_ONCE, "kill_mid_request", "order-service",
                                       check_mid_request),
    "kill-inventory-mid-request": (KILL_ONCE, "kill_mid_request", "inventory-service",
                                   check_mid_request),
    "kill-notification-mid-request": (KILL_ONCE, "kill_mid_request", "notification-service",
                                      check_mid_request),
    "kill-projection-mid-request": (KILL_ONCE, "kill_mid_request", "projection",
                                    check_mid_request),
    "projection-consumer-lost": ({"inflight_wait_s": 30}, "lose_consumer", "projection",
                                 check_consumer_lost),
}  # fmt: skip


# Experiments with several fault windows, run under load by a test of their own.
ELSEWHERE = {
    "rolling-deploy": "tests/integration/chaos/test_deploy.py",
    "reprocess-under-chaos": "tests/integration/chaos/test_reprocess_chaos.py",
    "versioned-deploy": "tests/integration/chaos/test_versioned_deploy.py",
}


def test_every_experiment_is_run_here() -> None:
    assert sorted([*CASES, *ELSEWHERE]) == list_experiments()


NEEDS_NFT = {n for n, (_, action, _, _) in CASES.items() if action in ("partition_service", "lose_replies")}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_experiment_under_load(name: str, stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    if name in NEEDS_NFT and nft_unsupported():
        pytest.skip(str(nft_unsupported()))
    config, action, target, check = CASES[name]
    run_dir = chaos_run["sagaquake_run_dir"]
    load = BackgroundLoad(stack.endpoints, run_dir, rate=4)
    load.start()
    started = time.monotonic()
    try:
        time.sleep(1)
        journal = run_experiment_file(name, run_dir, "local", {**FAST, **config})
    finally:
        load.stop()
    took = time.monotonic() - started
    assert journal["status"] == "completed", (journal["status"], journal.get("sagaquake"))
    assert journal["deviated"] is False
    for phase in ("before", "after"):
        state = journal["steady_states"][phase]
        assert state["steady_state_met"], [(p["activity"]["name"], p["output"]) for p in state["probes"]]  # fmt: skip
    assert journal["rollbacks"] and all(r["status"] == "succeeded" for r in journal["rollbacks"])
    (window,) = [w for w in read_faults(run_dir) if w["experiment"] == name]
    assert (window["action"], window["target"], window["landed"]) == (action, target, True)
    assert window["started_at"] < window["ended_at"]
    assert journal["sagaquake"]["faults"] == [window]
    check(window["evidence"], journal)
    orders = check_orders(stack.endpoints, run_dir)
    assert orders["orders"] >= 5, orders
    saved = json.loads(Path(run_dir, "chaos", f"{name}.journal.json").read_text())
    assert saved["status"] == "completed"
    print(f"{name}: {took:.1f} s, {orders}")
