"""The blue/green deploy of Worker Deployment Versioning, for real: the local platform runs new
saga workers beside the old and retires the old ones back to the service's size, and the
experiment `versioned-deploy` adopts versioning, deploys version 2 and back under load with every
saga finishing on the version that started it, and its rollback leaves the stack unversioned as it
found it."""

from __future__ import annotations

import time

import httpx
import pytest

from harness.chaos.blue_green import worker_deployment
from harness.chaos.deploy import DEPLOYMENT_ENV, VERSION_ENV
from harness.chaos.faults import read_faults
from harness.chaos.runner import run_experiment_file
from harness.chaos.saga_workers import version_of
from tests.integration.chaos.load import BackgroundLoad, check_orders

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def _workers(stack) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Per saga-worker replica, what its process says it runs (GET /version)."""
    out = {}
    for prog in stack.platform._programs():
        if prog.service == "saga-worker":
            url = f"http://127.0.0.1:{prog.health_port}/version"
            out[prog.name] = httpx.get(url, timeout=5).json()
    return out


def test_the_platform_runs_new_replicas_beside_the_old_and_can_abandon_them(stack) -> None:  # type: ignore[no-untyped-def]
    """Adding and abandoning; finishing a side-by-side deploy (the old replicas replaced in
    place, the added ones scaled away) runs four times in the experiment below."""
    platform = stack.platform
    before = {r.name: r.pid for r in platform.status() if r.service == "saga-worker"}
    assert platform.side_by_side("saga-worker") is None
    v2 = {VERSION_ENV: "2"}
    try:
        added = platform.add_replicas("saga-worker", v2, wait_s=120)
        assert [e.name for e in added] == [f"saga-worker_{n:02d}" for n in range(2, 4)]
        assert all(e.landed and e.old_uid == "" for e in added)
        running = _workers(stack)
        assert {n: w["saga_version"] for n, w in running.items()} == {
            **dict.fromkeys(before, 1),
            **{e.name: 2 for e in added},
        }
        assert platform.side_by_side("saga-worker") == {"size": 2, "env": v2}
        # abandoned: the old side's setting wins, the added replicas go, the old ones stay
        assert platform.retire_replicas("saga-worker", platform.deployed_env("saga-worker")) == []
    finally:
        platform.retire_replicas("saga-worker", platform.deployed_env("saga-worker"))
    now = {r.name: r.pid for r in platform.status() if r.service == "saga-worker"}
    assert now == before and platform.side_by_side("saga-worker") is None
    assert {n: w["saga_version"] for n, w in _workers(stack).items()} == dict.fromkeys(before, 1)


def test_versioned_deploy_and_back_under_load(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = chaos_run["sagaquake_run_dir"]
    load = BackgroundLoad(stack.endpoints, run_dir, rate=6)
    load.start()
    try:
        time.sleep(2)
        journal = run_experiment_file(
            "versioned-deploy", run_dir, "local", {"deploy_settle_s": 20, "settle_timeout_s": 120}
        )
    finally:
        load.stop()
    assert journal["status"] == "completed", (journal["status"], journal.get("sagaquake"))
    assert journal["deviated"] is False
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"])
    windows = [w for w in read_faults(run_dir) if w["experiment"] == "versioned-deploy"]
    assert [(w["action"], w["evidence"]["version"], w["landed"]) for w in windows] == [
        ("versioned_deploy", 2, True),
        ("versioned_deploy", 1, True),
    ]
    first, back = (w["evidence"] for w in windows)
    # the stack came up unversioned: the first deploy adopted versioning on version 1 first
    assert first["adopted"]["build_id"] == "saga-v1" and "drain" not in first["adopted"]
    assert first["adopted"]["switch"]["previous"] == "unversioned"
    assert "adopted" not in back
    for evidence, old, new in ((first, "saga-v1", "saga-v2"), (back, "saga-v2", "saga-v1")):
        step = evidence["deploy"]
        assert step["switch"]["previous"] == old and step["switch"]["to"] == new
        added = step["added"]
        assert len(added) == 2 and all(a["landed"] for a in added)
        for a in added:  # each new worker polled Temporal as the new version
            identity = step["polling"][a["name"]]["identity"]
            assert identity.startswith(f"{a['new_pid']}@") and version_of(identity) == a["version"]
        assert step["drain"]["drained_in_s"] >= 0
        assert len(step["retired"]) == 2  # the old replicas, replaced in place once drained
        assert evidence["current_version"] == new
        # pinned: every saga in flight across a switch ran on one version only
        assert evidence["crossed_versions"] == 0, evidence["crossed_examples"]
        assert evidence["workflow_task_failures"] == 0, evidence["failure_examples"]
        assert evidence["in_flight_before"]["in_flight"] is True
        print(
            f"versioned deploy to {new}: {step['drain']['pinned_at_switch']} sagas pinned to "
            f"{old} at the switch, drained in {step['drain']['drained_in_s']} s; "
            f"{evidence['sagas_across']} across, ran on {evidence['ran_on']}"
        )
    # the rollback left versioning: unversioned workers of version 1, no deploy in progress
    deployed = stack.platform.deployed_env("saga-worker")  # other tests deploy other settings too
    assert {VERSION_ENV: deployed[VERSION_ENV], DEPLOYMENT_ENV: deployed[DEPLOYMENT_ENV]} == {
        VERSION_ENV: "1",
        DEPLOYMENT_ENV: "",
    }
    workers = _workers(stack)
    assert len(workers) == 2 and all(w["deployment"] is None for w in workers.values())
    after = worker_deployment(configuration=chaos_run)
    assert after["current_version"] == "" and after["side_by_side"] is False
    assert after["pinned_running"] == {"saga-v1": 0, "saga-v2": 0}
    assert check_orders(stack.endpoints, run_dir)["orders"] >= 10
