"""A resilience score per fault and per experiment: one number to compare nights by.

score = 100 * (availability + recovery) / 2, where

- availability is the share of the fault's *impact window* (from the fault's start to its
  end plus the verifier's recovery time, at least ``MIN_WINDOW_S`` long) during which
  orders kept completing at ≥ ``AVAILABLE_FRACTION`` of the pre-fault rate, measured on a
  ``SMOOTH_S``-second moving average. A burst of catch-up completions after a stall does
  not hide the stall, as a plain "completions / expected" ratio would.
- recovery is 1 for an instant recovery, ½ at the recovery budget and 0 at twice the
  budget. The budget is the limit of the suite's recovery threshold (a threshold whose name
  contains "recovery") or ``DEFAULT_RECOVERY_BUDGET_S``.

A fault that did not land scores nothing (``None``): it tested nothing. Without a recovery
time the score is availability alone, and says so. An experiment scores its worst fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.report.data import Fault, RunData

__all__ = [
    "AVAILABLE_FRACTION",
    "BASELINE_S",
    "DEFAULT_RECOVERY_BUDGET_S",
    "MIN_WINDOW_S",
    "SMOOTH_S",
    "Score",
    "experiment_scores",
    "fault_scores",
    "recovery_budget",
]

BASELINE_S = 60  # the pre-fault rate is the completion rate over this many seconds before it
MIN_BASELINE_S = 10  # fewer seconds of pre-fault load than this: no baseline, no score
MIN_WINDOW_S = 10  # a 0.4 s kill is judged on at least this many seconds after it starts
SMOOTH_S = 3
AVAILABLE_FRACTION = 0.5
DEFAULT_RECOVERY_BUDGET_S = 60.0


@dataclass(frozen=True)
class Score:
    score: int | None  # 0-100, None when it cannot be computed (see note)
    availability: float | None  # 0-1
    recovery: float | None  # 0-1
    baseline_per_s: float | None
    window: tuple[float, float] | None  # the impact window, seconds since the run's start
    note: str = ""


def recovery_budget(data: RunData) -> float:
    """The suite's recovery threshold limit, or the default budget."""
    for t in data.thresholds:
        limit = t.get("limit")
        if "recovery" in str(t.get("name", "")) and isinstance(limit, int | float) and limit > 0:
            return float(limit)
    return DEFAULT_RECOVERY_BUDGET_S


def _load_start(data: RunData) -> float:
    offered = data.rates.get("offered")
    if offered is not None and offered.sum() > 0:
        return float(offered.gt(0).idxmax())
    completed = data.rates["completed"]
    return float(completed.gt(0).idxmax()) if completed.sum() > 0 else 0.0


def _score(data: RunData, fault: Fault, budget: float) -> Score:
    if fault.landed is False:
        return Score(None, None, None, None, None, "the fault did not land: nothing was tested")
    completed = data.rates["completed"].fillna(0) if len(data.rates) else None
    if completed is None or completed.sum() == 0:
        return Score(None, None, None, None, None, "no completions recorded (no events stream)")
    start = max(_load_start(data), fault.started_at - BASELINE_S)
    lo, hi = math.floor(start), math.floor(fault.started_at)
    if hi - lo < MIN_BASELINE_S:
        return Score(
            None, None, None, None, None, "too little load before the fault for a baseline"
        )
    baseline = float(completed.iloc[lo:hi].mean())
    if baseline <= 0:
        return Score(None, None, None, 0.0, None, "no orders completed before the fault")
    extra = fault.recovery_time_s if fault.recovery_time_s is not None else 0.0
    end = max(fault.ended_at + extra, fault.started_at + MIN_WINDOW_S)
    smooth = completed.rolling(SMOOTH_S, center=True, min_periods=1).mean()
    window = smooth.iloc[math.floor(fault.started_at) : math.ceil(end)]
    availability = float((window >= AVAILABLE_FRACTION * baseline).mean()) if len(window) else 0.0
    if fault.recovery_time_s is None:
        return Score(
            round(100 * availability),
            availability,
            None,
            baseline,
            (fault.started_at, end),
            "no recovery time in verdict.json: availability only",
        )
    recovery = max(0.0, 1.0 - fault.recovery_time_s / (2 * budget))
    return Score(
        round(100 * (availability + recovery) / 2),
        availability,
        recovery,
        baseline,
        (fault.started_at, end),
    )


def fault_scores(data: RunData) -> dict[int, Score]:
    """The score of every fault window, by its index in faults.jsonl."""
    budget = recovery_budget(data)
    return {f.index: _score(data, f, budget) for f in data.faults}


def experiment_scores(data: RunData) -> dict[str, Score]:
    """The worst score of each experiment's faults, by experiment name."""
    per_fault = fault_scores(data)
    out: dict[str, Score] = {}
    for fault in data.faults:
        score = per_fault[fault.index]
        best = out.get(fault.experiment)
        if best is None or (
            score.score is not None and (best.score is None or score.score < best.score)
        ):
            out[fault.experiment] = score
    return out
