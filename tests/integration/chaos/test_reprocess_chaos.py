"""`reprocess-under-chaos` for real, under load on the session's stack: a correction of every
order completed so far runs while a saga worker is killed and Redis crashes; the faults land
while it runs, the chain of runs completes, and the verifier proves from a snapshot that each
targeted order was corrected exactly once in money and events, and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.chaos.faults import read_faults
from harness.chaos.runner import run_experiment_file
from harness.reprocess import read_requests
from harness.verify import export_snapshot, verify_run
from tests.integration.chaos.load import BackgroundLoad
from tests.integration.reprocessing import adopt_other_requests

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

FAST = {
    "sagaquake_compress": 100,
    "batch_size": 2,
    "batches_per_run": 4,
    "kill_every_s": 100,  # 1 s here
    "settle_timeout_s": 120,
    "reprocess_timeout_s": 300,
}


def test_reprocess_under_chaos_corrects_every_order_once(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    load = BackgroundLoad(stack.endpoints, run_dir, rate=4)
    load.start()
    try:
        time.sleep(12)  # some orders complete first: the reprocess has work when the faults come
        journal = run_experiment_file("reprocess-under-chaos", run_dir, "local", FAST)
    finally:
        load.stop()
    assert journal["status"] == "completed", (journal["status"], journal.get("sagaquake"))
    assert journal["deviated"] is False
    output = next(
        r["output"]
        for r in journal["run"]
        if r["activity"]["provider"]["func"] == "reprocess_under_faults"
    )
    assert [f["action"] for f in output["faults"]] == ["kill_saga_workers", "restart_service"]
    assert all(f["landed"] and f["reprocess_running"] for f in output["faults"])
    reprocess = output["reprocess"]
    assert reprocess["last_status"] == "COMPLETED", reprocess
    assert reprocess["runs"] >= 2 and reprocess["result"]["totals"]["corrected"] > 0
    windows = [w for w in read_faults(run_dir) if w["experiment"] == "reprocess-under-chaos"]
    assert {(w["action"], w["target"], w["landed"]) for w in windows} == {
        ("kill_saga_workers", "saga-worker", True),
        ("restart_service", "redis", True),
    }
    assert windows[-1]["evidence"]["events_lost"] == 0
    (request,) = read_requests(run_dir)
    e = stack.endpoints
    adopt_other_requests(run_dir, e.temporal_address, request["workflow_id"])
    assert export_snapshot(run_dir, e.redis_url, e.temporal_address)["errors"] == {}
    results = {r.name: r for r in verify_run(run_dir).invariants}
    # the stack is shared: every check that does not need the whole client side must hold
    for name in (
        "reprocessed_exactly_once",
        "exactly_once_money",
        "legal_history",
        "no_lost_order",
    ):
        assert results[name].status == "pass", (name, results[name].error, results[name].first)
    counts = results["reprocessed_exactly_once"].counts
    assert counts["targeted"] >= reprocess["result"]["totals"]["corrected"] > 0
    print(
        f"reprocess under chaos: {reprocess['runs']} runs, totals {reprocess['result']['totals']}"
    )
