"""Deterministic sagas: no workflow task hit non-determinism during the run, and every history of
the run replays on the code.

Why two checks. A workflow whose code changed under it without `workflow.patched` does not
fail: its workflow task fails with a `NondeterminismError`, is retried every ~10 s forever, and
the saga stays Running (Temporal records the first failure in its history; the dev server sets
`TemporalReportedProblems` only when configured to). `no_nondeterminism` reads those failures
from the histories of the run and names each order whose saga hit one, with the failure's
message. `replays_deterministically` answers the question before a deploy: does every history
of the run (yesterday's, from a run folder) replay on this code, or on `--replay-against`?

The one place the verifier meets the system's code: replaying needs the workflow code. It is
imported only by a child process (harness/verify/replay_child.py), never here; every other rule
is the verifier's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.verify.histories import scan_failures
from harness.verify.history import History
from harness.verify.replay import code_to_replay, replay_histories
from harness.verify.results import InvariantResult, from_violations, invariant, records_for

__all__ = ["NONDETERMINISM", "is_nondeterminism", "no_nondeterminism", "replays_deterministically"]

SAGA = "OrderSaga"  # a run of this type is named by its order (workflow id = order id)
NONDETERMINISM = "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR"
_NDE_CODE = "[TMPRL1100]"  # sdk-core's code of a non-determinism error, in the message


def is_nondeterminism(failure: dict[str, Any]) -> bool:
    return failure.get("cause") == NONDETERMINISM or _NDE_CODE in str(failure.get("message"))


def _epoch(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("nan")


def _row(
    record: Mapping[str, Any], why: str, sort: float, severity: float, **extra: Any
) -> dict[str, Any]:
    saga = record.get("workflow_type") == SAGA
    return {
        "order_id": record.get("workflow_id") if saga else None,
        "workflow_id": record.get("workflow_id"),
        "run_id": record.get("run_id"),
        "workflow_type": record.get("workflow_type"),
        "status": record.get("status"),
        "why": why,
        "sort": sort,
        "severity": severity,
        **extra,
    }


def _context(h: History) -> Any:
    if h.temporal is None:
        return None
    return lambda oids: {
        k: {"workflow_runs": v} for k, v in records_for(h, "temporal", oids).items()
    }


@invariant("no_nondeterminism", "No saga hit non-determinism")
def no_nondeterminism(h: History) -> InvariantResult:
    """No workflow task of any run failed with non-determinism (cause
    WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR): each run that did is named (its order,
    for an OrderSaga), with the failure's message, worker identity and time; a run still Running
    is stuck on it (the worst). Other workflow task failures are counted, not violations."""
    h.require("histories")
    assert h.histories is not None
    run_ids, failing = scan_failures(h.histories)
    rows: list[dict[str, Any]] = []
    other = 0
    for record, failures in failing:
        nde = [f for f in failures if is_nondeterminism(f)]
        other += len(failures) - len(nde)
        if not nde:
            continue
        first = nde[0]
        stuck = record.get("status") == "RUNNING"
        why = (
            f"workflow task failed with non-determinism {len(nde)}x"
            f"{' and the saga is stuck Running' if stuck else ''} (worker {first['identity']}): "
            f"{first['message']}"
        )
        sort, severity = _epoch(first["time"]), 2.0 if stuck else 1.0
        rows.append(_row(record, why, sort, severity, workflow_task_failures=nde))
    unknown = []
    without = _without_history(h, set(run_ids))
    if without:
        unknown.append(
            f"{len(without)} OrderSaga run(s) of temporal.jsonl have no history "
            f"(e.g. {', '.join(without[:3])})"
        )
    return from_violations(
        h,
        _frame(rows),
        checked=len(run_ids),
        counts={
            "runs": len(run_ids),
            "runs_with_failed_tasks": len(failing),
            "other_task_failures": other,
            "runs_without_history": len(without),
        },
        unknown=unknown,
        notes=[f"{other} workflow task(s) failed for another cause than non-determinism"]
        if other
        else [],
        context=_context(h),
    )


def _without_history(h: History, runs_with: set[str]) -> list[str]:
    """Runs temporal.jsonl lists that have no history (the export missed them)."""
    if h.temporal is None:
        return []
    listed = {str(r.get("run_id")) for r in h.raw.get("temporal", ()) if r.get("run_id")}
    return sorted(listed - runs_with)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["why", "sort", "severity"])


@invariant("replays_deterministically", "Every history replays on the code")
def replays_deterministically(
    h: History, replay_against: str | Path | None = None
) -> InvariantResult:
    """Every workflow history of the run replays with Temporal's Replayer against the current
    code (or `replay_against`: a folder or a git ref), in a child process; each history that
    does not is named (its order, for an OrderSaga) with the replay's error. A history of a
    workflow type the code does not have fails too (that code could not run it)."""
    h.require("histories")
    assert h.histories is not None
    with code_to_replay(replay_against) as code:
        answer = replay_histories(h.histories, code)
    rows = [
        _row(
            f,
            f"does not replay on {answer['code']}: {f['error_type']}: {f['message']}",
            float(f["index"]),
            2.0 if f["error_type"] == "NondeterminismError" else 1.0,
            error_type=f["error_type"],
        )
        for f in answer["failures"]
    ]
    replayed = int(answer["replayed"])
    result = from_violations(
        h,
        _frame(rows),
        checked=int(answer["histories"]),
        counts={"histories": int(answer["histories"]), "replayed": replayed},
        metrics={"code": answer["code"], "workflow_types": answer["workflow_types"]},
        context=_context(h),
    )
    if not answer["histories"] and h.temporal is not None and len(h.temporal):
        result.status = "unknown"
        result.error = f"no history to replay although Temporal lists {len(h.temporal)} runs"
    return result
