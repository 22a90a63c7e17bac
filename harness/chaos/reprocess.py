"""Reprocessing under chaos: a correction of every order of the run (ReprocessOrders, in batches,
continuing as new) while saga workers are killed and Redis restarts.

The faults are the clean ones of harness/chaos/actions.py (each writes its own fault window with
its proof: a new pid, a new Redis run_id and no event lost); what this adds is the workload they
hit. A worker killed mid-batch leaves its local activity to be redone by another worker after
the workflow task times out; a Redis restart fails the batch's scripts until it is back. The
correction must still apply exactly once per order and the chain of runs must complete, which the
verifier's `reprocessed_exactly_once` proves from the request recorded in the run folder.

Proof that the faults hit the reprocess: each one is injected only while Temporal says the
reprocess's chain is still running (`reprocess_running` in its evidence, with how many runs it
had); when the reprocess finished before the first fault, the action raises `FaultNotLanded`.
"""

from __future__ import annotations

import time
from typing import Any

from harness.chaos import actions
from harness.chaos.context import chaos_context, number
from harness.chaos.faults import FaultNotLanded
from harness.reprocess import read_requests, reprocess_status, request_reprocess, wait_reprocess

__all__ = ["reprocess_requests_done", "reprocess_under_faults"]


def reprocess_under_faults(
    percent_bp: int = 500,
    batch_size: int = 50,
    batches_per_run: int = 10,
    kill_count: int = 2,
    kill_rounds: int = 1,
    kill_every_s: float = 60,
    redis_restart: bool = True,
    wait_s: float = 120,
    timeout_s: float = 600,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start a correction of every order completed so far (`percent_bp` basis points refunded,
    `batch_size` orders a batch, continuing as new every `batches_per_run` batches), then, while
    it runs, kill `kill_count` saga workers at once, `kill_rounds` times, then crash Redis
    (`redis_restart`), the faults `kill_every_s` (production seconds) apart, each waiting up to
    `wait_s` for its replicas; then wait up to `timeout_s` (wall-clock) for the reprocess's
    chain to close."""
    ctx = chaos_context(configuration)
    endpoints = ctx.platform.endpoints()
    count = int(number(kill_count, "kill_count", minimum=1))
    rounds = int(number(kill_rounds, "kill_rounds", minimum=0))
    every = ctx.wall_s(kill_every_s, "kill_every_s")
    request = request_reprocess(
        endpoints,
        ctx.run_dir,
        correction_id=f"{ctx.experiment}-{int(time.time() * 1000)}",
        percent_bp=int(number(percent_bp, "percent_bp", minimum=1)),
        batch_size=int(number(batch_size, "batch_size", minimum=1)),
        batches_per_run=int(number(batches_per_run, "batches_per_run", minimum=1)),
    )
    faults: list[dict[str, Any]] = []
    restart = str(redis_restart).strip().lower() in ("true", "1", "yes", "on")
    # Workers first, `kill_count` at once (2: every replica): the reprocess's workflow task dies
    # with them and waits for its time-out, so it is still running when Redis crashes next
    plan = ["kill"] * rounds + (["redis"] if restart else [])
    for i, fault in enumerate(plan):
        before = reprocess_status(endpoints, request.workflow_id)
        if not before["running"]:
            break
        at = time.time()
        if fault == "kill":
            window = actions.kill_saga_workers(
                count=count, require_inflight=False, wait_s=wait_s, configuration=configuration
            )
        else:
            window = actions.restart_redis(crash=True, wait_s=wait_s, configuration=configuration)
        faults.append(
            {
                "action": window["action"],
                "target": window["target"],
                "at": round(at, 3),
                "landed": window["landed"],
                "reprocess_running": True,
                "runs_before": before["runs"],
            }
        )
        if i < len(plan) - 1 and every > 0:
            time.sleep(every)
    final = wait_reprocess(
        endpoints, request.workflow_id, number(timeout_s, "timeout_s", minimum=0)
    )
    evidence = {
        "request": request.as_dict(),
        "faults": faults,
        "reprocess": {k: v for k, v in final.items() if k != "chain"},
        "chain": final.get("chain"),
    }
    if not faults and plan:
        raise FaultNotLanded(
            f"the reprocess {request.workflow_id} finished before any fault hit it "
            f"({final.get('runs')} run(s)); give it more orders or a smaller batch_size"
        )
    return evidence


def reprocess_requests_done(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probe: of the reprocesses requested in this run folder, how many are still running
    and how many did not end COMPLETED."""
    ctx = chaos_context(configuration)
    endpoints = ctx.platform.endpoints()
    requests = read_requests(ctx.run_dir)
    states = [reprocess_status(endpoints, str(r["workflow_id"])) for r in requests]
    return {
        "requests": len(requests),
        "running": sum(1 for s in states if s["running"]),
        "not_completed": sum(
            1 for s in states if not s["running"] and s["last_status"] != "COMPLETED"
        ),
        "runs": sum(int(s["runs"]) for s in states),
    }
