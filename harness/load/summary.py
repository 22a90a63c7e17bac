"""A run folder's load, read back: the client ledger counted against the plan.

Works on a folder alone (later, on another machine): the ledger files, `locust/load.json` (the
plan) and `locust/arrivals-<name>.json` (each Locust process's start, end and lag).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from harness.errors import ConfigError
from harness.load.curve import RateCurve
from harness.load.profile_loader import load_profile
from harness.runs import RunFolder, read_json, read_jsonl

__all__ = ["LoadSummary", "load_summary", "plan_curve"]

WINDOW_S = 10.0  # the window of the per-window rate error


@dataclass
class LoadSummary:
    """A run's client ledger, counted, next to what the plan asked for."""

    files: list[Path]
    attempts: int = 0
    orders: int = 0  # distinct idempotency keys
    outcomes: dict[str, int] = field(default_factory=dict)  # attempts by outcome
    final_outcomes: dict[str, int] = field(default_factory=dict)  # orders by outcome (ok wins)
    duplicates: int = 0  # (idempotency_key, attempt) pairs recorded more than once
    torn_lines: int = 0
    t0: float | None = None  # the schedule's start (from the arrival summaries), else first send
    window_s: float | None = None  # the planned duration, or less when the run was stopped early
    target_orders: float | None = None  # what the profile asked for in that window
    target_rate: float | None = None
    achieved_rate: float | None = None  # orders sent in the window / window
    rate_error: float | None = None  # (achieved - target) / target
    window_error_max: float | None = None  # worst error of a WINDOW_S-second window vs the curve
    rate: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))  # orders per second
    lag: dict[str, float] = field(default_factory=dict)
    plan: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = [str(p) for p in self.files]
        d["rate"] = {int(k): int(v) for k, v in self.rate.items()}
        return d


def plan_curve(plan: dict[str, Any]) -> RateCurve | None:
    """The rate curve of a plan (`locust/load.json`), or None when its profile file is gone."""
    try:
        return load_profile(plan["profile_path"]).curve(plan["compress"], plan["start_hour"])
    except (ConfigError, KeyError):
        return None  # the folder moved to a machine without the profile: totals from the plan


def load_summary(run_dir: Path, until: float | None = None) -> LoadSummary:
    """Count a run folder's client ledger: outcomes, orders, duplicates, the rate per second.

    `until` (epoch seconds) ends the compared window early, for a run stopped before its end.
    """
    folder = RunFolder(run_dir)
    files = folder.client_ledgers()
    summary = LoadSummary(files=files)
    seen: Counter[tuple[str, int]] = Counter()
    final: dict[str, str] = {}
    first_send: dict[str, float] = {}  # idempotency key -> when its first attempt left
    for path in files:
        read = read_jsonl(path)
        summary.torn_lines += read.unreadable
        for line in read.records:
            key = str(line.get("idempotency_key"))
            attempt = int(line.get("attempt") or 0)
            outcome = str(line.get("outcome"))
            seen[(key, attempt)] += 1
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            if final.get(key) != "ok":
                final[key] = outcome
            if attempt == 1 and key not in first_send:
                first_send[key] = float(line["sent_at"])
    summary.attempts = sum(seen.values())
    summary.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    summary.orders = len(final)
    summary.final_outcomes = dict(Counter(final.values()))
    first_sends = list(first_send.values())

    arrivals = [orjson.loads(p.read_bytes()) for p in folder.arrivals_files()]
    plan = summary.plan = read_json(folder.load_plan)
    t0s = [a["t0"] for a in arrivals if a.get("t0")]
    summary.t0 = min(t0s) if t0s else (min(first_sends) if first_sends else None)
    if arrivals:
        summary.lag = {
            "sent": sum(a["sent"] for a in arrivals),
            "lag_p99_s": max(a["lag_p99_s"] for a in arrivals),
            "lag_max_s": max(a["lag_max_s"] for a in arrivals),
            "late_100ms": sum(a["late_100ms"] for a in arrivals),
            "late_1s": sum(a["late_1s"] for a in arrivals),
        }
    if first_sends and summary.t0 is not None:
        seconds = (
            pd.Series(first_sends, dtype="float64").sub(summary.t0).floordiv(1).astype("int64")
        )
        summary.rate = seconds.value_counts().sort_index().rename("orders")
        summary.rate.index.name = "second"
    if plan is None or summary.t0 is None:
        return summary

    duration = float(plan["duration_s"])
    ends = [a["ended_at"] for a in arrivals if a.get("ended_at")]
    if until is None and ends:  # a run stopped early is compared over the time it ran
        until = max(ends)
    window = duration if until is None else max(0.0, min(duration, until - summary.t0))
    curve = plan_curve(plan)
    summary.window_s = window
    if window <= 0:
        return summary
    if curve is not None:
        summary.target_orders = curve.cumulative(window)
    else:
        summary.target_orders = float(plan["target_orders"]) * window / duration
    summary.target_rate = summary.target_orders / window
    end = summary.t0 + window
    sent = len(first_sends) if window >= duration else sum(1 for t in first_sends if t < end)
    summary.achieved_rate = sent / window
    if summary.target_rate:
        summary.rate_error = (summary.achieved_rate - summary.target_rate) / summary.target_rate
    if curve is not None:
        summary.window_error_max = _window_error(summary.rate, curve, window)
    return summary


def _window_error(rate: pd.Series, curve: RateCurve, window_s: float) -> float | None:
    """The worst relative error of the orders sent per WINDOW_S window against the curve."""
    worst = None
    for i in range(int(window_s // WINDOW_S)):
        a, b = i * WINDOW_S, (i + 1) * WINDOW_S
        expected = curve.cumulative(b) - curve.cumulative(a)
        if expected < 1:
            continue
        actual = int(rate[(rate.index >= a) & (rate.index < b)].sum())
        err = abs(actual - expected) / expected
        worst = err if worst is None else max(worst, err)
    return worst
