"""The rolling deploy of a changed saga, for real: the local platform replaces each saga worker in
turn with one running saga version 2 (a new pid, ready, polling Temporal as `saga-v2`), orders in
flight across the switch finish on the other version without a failed workflow task, the
rollback to version 1 does the same, and the experiment `rolling-deploy` passes under load with
its evidence in faults.jsonl."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.chaos.deploy import VERSION_ENV
from harness.chaos.faults import read_faults
from harness.chaos.runner import run_experiment_file
from harness.chaos.saga_workers import version_of
from tests.integration.chaos.load import BackgroundLoad, check_orders

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _versions(stack) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Per saga-worker replica, the version its process says it runs (GET /version)."""
    out = {}
    for prog in stack.platform._programs():
        if prog.service == "saga-worker":
            answer = httpx.get(f"http://127.0.0.1:{prog.health_port}/version", timeout=5).json()
            out[prog.name] = answer["saga_version"]
    return out


def test_the_platform_deploys_one_replica_at_a_time_and_remembers(stack) -> None:  # type: ignore[no-untyped-def]
    platform = stack.platform
    before = {r.name: r.pid for r in platform.status() if r.service == "saga-worker"}
    assert _versions(stack) == dict.fromkeys(before, 1)
    try:
        replaced = platform.deploy("saga-worker", {VERSION_ENV: "2"}, wait_s=120)
        assert [e.name for e in replaced] == sorted(before)
        for e in replaced:
            assert e.landed and e.old_uid == str(before[e.name]) and e.new_uid != e.old_uid
            assert e.ready_at and e.ready_at >= e.stopped_at
        # one at a time: each replica was ready before the next one stopped
        assert replaced[0].ready_at <= replaced[1].stopped_at  # type: ignore[operator]
        assert _versions(stack) == dict.fromkeys(before, 2)
        assert platform.deployed_env("saga-worker")[VERSION_ENV] == "2"  # other tests deploy too
        assert platform.deploy("saga-worker", {VERSION_ENV: "2"}) == []  # nothing to replace
        # a replica that crashes comes back on the deployed version
        platform.kill("saga-worker", 1, "KILL", wait_s=60)
        assert _versions(stack) == dict.fromkeys(before, 2)
    finally:
        back = platform.deploy("saga-worker", {VERSION_ENV: "1"}, wait_s=120)
    assert all(e.landed for e in back)
    assert _versions(stack) == dict.fromkeys(before, 1)


def test_rolling_deploy_and_rollback_under_load(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = chaos_run["sagaquake_run_dir"]
    load = BackgroundLoad(stack.endpoints, run_dir, rate=6)
    load.start()
    try:
        time.sleep(2)
        journal = run_experiment_file(
            "rolling-deploy", run_dir, "local", {"deploy_settle_s": 20, "settle_timeout_s": 120}
        )
    finally:
        load.stop()
    assert journal["status"] == "completed", (journal["status"], journal.get("sagaquake"))
    assert journal["deviated"] is False
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
    windows = [w for w in read_faults(run_dir) if w["experiment"] == "rolling-deploy"]
    assert [(w["action"], w["evidence"]["version"], w["landed"]) for w in windows] == [
        ("rolling_deploy", 2, True),
        ("rolling_deploy", 1, True),
    ]
    for window in windows:
        evidence = window["evidence"]
        version = evidence["version"]
        assert evidence["in_flight_before"]["in_flight"] is True
        replicas = evidence["replicas"]
        assert len(replicas) == 2 and all(r["new_pid"] != r["old_pid"] for r in replicas)
        for replica in replicas:
            poller = evidence["polling"][replica["name"]]
            assert poller["identity"].startswith(f"{replica['new_pid']}@"), poller
            assert version_of(poller["identity"]) == version
        assert [s["at"] for s in evidence["in_flight_at_switch"]] == [
            r["stopped_at"] for r in replicas
        ]
        assert evidence["workflow_task_failures"] == 0, evidence["failure_examples"]
        assert evidence["nondeterminism"] == 0
        print(
            f"deploy to v{version}: in flight at each switch "
            f"{[s['in_flight'] for s in evidence['in_flight_at_switch']]}, "
            f"{evidence['sagas_across']} across, ran on {evidence['ran_on']}"
        )
    assert stack.platform.deployed_env("saga-worker")[VERSION_ENV] == "1"
    assert check_orders(stack.endpoints, run_dir)["orders"] >= 10
