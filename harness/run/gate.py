"""The gate: a suite's thresholds (k6 style, `metric: "< 30"`) checked against a run's metrics.

Metrics come from the verdict (violations per invariant, time to terminal, recovery) and the
client ledger (availability, achieved rate). A metric that could not be measured fails its
threshold: a gate never passes on missing data.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError

__all__ = ["METRICS", "Threshold", "ThresholdResult", "evaluate", "metrics_from", "parse_threshold"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_CONDITION = re.compile(r"^\s*(==|!=|<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")

# metric → what it measures (shown in errors and the docs)
METRICS = {
    "lost_orders": "orders a client was told were accepted that are missing or never finished",
    "phantom_orders": "orders in the system no client asked for (or that were refused)",
    "double_charges": "orders whose money is wrong: two captures, a missing refund, a wrong amount",
    "inventory_violations": "SKUs whose stock does not add up, or went negative",
    "illegal_histories": "orders whose events break the saga's state machine, or duplicate event ids",
    "confirmation_violations": "completed orders without exactly one confirmation",
    "temporal_disagreements": "orders where Temporal and the streams disagree, or left running",
    "read_model_mismatches": "orders whose read model differs from a rebuild from the stream",
    "unknown_invariants": "invariants the verifier could not check",
    "p50_time_to_terminal_s": "median seconds from a client's first request to its order's end",
    "p90_time_to_terminal_s": "90th percentile of the same",
    "p99_time_to_terminal_s": "99th percentile of the same",
    "max_time_to_terminal_s": "slowest order",
    "recovery_time_s": "worst recovery after a fault (seconds until its backlog drained)",
    "availability": "fraction of orders whose client was finally told 'accepted'",
    "achieved_rate_ratio": "achieved orders per second / the profile's target",
    "orders_completed": "orders that completed",
}
_VIOLATIONS = {
    "lost_orders": "no_lost_order",
    "phantom_orders": "no_phantom_order",
    "double_charges": "exactly_once_money",
    "inventory_violations": "inventory_conservation",
    "illegal_histories": "legal_history",
    "confirmation_violations": "exactly_one_confirmation",
    "temporal_disagreements": "temporal_agrees",
    "read_model_mismatches": "read_model_consistent",
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    limit: float

    @property
    def spec(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    value: float | None
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "name": t.metric,
            "op": t.op,
            "limit": t.limit,
            "value": self.value,
            "ok": self.ok,
            "spec": t.spec,
        }


def parse_threshold(metric: str, condition: Any, where: str) -> Threshold:
    if metric not in METRICS:
        raise ConfigError(f"{where}: unknown metric {metric!r}; known: {', '.join(METRICS)}")
    match = _CONDITION.match(str(condition))
    if not match:
        raise ConfigError(f"{where}: expected a condition like '< 30' or '== 0', got {condition!r}")
    return Threshold(metric, match.group(1), float(match.group(2)))


def metrics_from(
    verdict: Mapping[str, Any], load: Mapping[str, Any] | None
) -> dict[str, float | None]:
    """Every gate metric, from verdict.json's content and the load summary (None = not measured)."""
    by_name = {inv["name"]: inv for inv in verdict.get("invariants", [])}
    values: dict[str, float | None] = {}
    for metric, invariant in _VIOLATIONS.items():
        inv = by_name.get(invariant)
        ok = inv is not None and inv.get("status") in ("pass", "fail")
        values[metric] = float(inv.get("counts", {}).get("violations", 0)) if ok and inv else None
    values["unknown_invariants"] = float(
        sum(1 for inv in by_name.values() if inv.get("status") == "unknown")
    )
    ttt = (verdict.get("metrics") or {}).get("time_to_terminal_s") or {}
    for stat in ("p50", "p90", "p99", "max"):
        values[f"{stat}_time_to_terminal_s"] = ttt.get(stat)
    recovery = (verdict.get("metrics") or {}).get("recovery")
    if recovery is None:
        values["recovery_time_s"] = None
    elif any(r.get("recovery_time_s") is None for r in recovery):
        values["recovery_time_s"] = float("inf")  # a fault it never recovered from
    else:
        values["recovery_time_s"] = max(
            (float(r["recovery_time_s"]) for r in recovery), default=0.0
        )
    load = load or {}
    finals, orders = load.get("final_outcomes") or {}, load.get("orders") or 0
    values["availability"] = (finals.get("ok", 0) / orders) if orders else None
    target = (load.get("plan") or {}).get("target_rate")
    achieved = load.get("achieved_rate")
    values["achieved_rate_ratio"] = achieved / target if achieved is not None and target else None
    completed = (verdict.get("counts") or {}).get("orders_completed")
    values["orders_completed"] = float(completed) if completed is not None else None
    return values


def evaluate(
    thresholds: list[Threshold], metrics: Mapping[str, float | None]
) -> list[ThresholdResult]:
    results = []
    for t in thresholds:
        value = metrics.get(t.metric)
        ok = value is not None and _OPS[t.op](value, t.limit)
        results.append(ThresholdResult(t, value, ok))
    return results
