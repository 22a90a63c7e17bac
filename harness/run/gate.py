"""The gate: a suite's thresholds (k6 style, `metric: "< 30"`) checked against a run's metrics,
and the run's result, `gate.json`.

Metrics come from the verdict (violations per invariant, time to terminal, recovery) and the
client ledger (availability, achieved rate). A metric that could not be measured fails its
threshold: a gate never passes on missing data.

Why a file of its own: `verdict.json` is the verifier's alone (the same whether `sagaquake
verify` or `sagaquake run` wrote it); what the run adds (the suite's thresholds, experiments that
did not complete, an interrupted run) is the gate's, and its exit code is `gate.json`'s.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.runs import GATE_FILE, RunFolder, read_json, write_json
from harness.verify.verdict import EXIT_CODES

__all__ = [
    "GATE_FILE",
    "METRICS",
    "GateResult",
    "Threshold",
    "ThresholdResult",
    "decide",
    "evaluate",
    "metrics_from",
    "parse_threshold",
    "read_gate",
    "write_gate",
]

_STATUS = {0: "pass", 1: "fail", 2: "unknown"}

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


@dataclass
class GateResult:
    """gate.json (docs/run-folder.md): what `sagaquake run` decided of a run."""

    status: str  # pass | fail | unknown
    exit_code: int  # 0 | 1 | 2
    verdict: str  # the verifier's status (verdict.json), pass | fail | unknown
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    failed_experiments: list[str] = field(default_factory=list)
    incomplete: bool = False
    problem: str | None = None
    suite: str = ""
    decided_at: float = 0.0

    @property
    def failed_thresholds(self) -> list[dict[str, Any]]:
        return [t for t in self.thresholds if not t.get("ok")]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def decide(
    verdict_status: str,
    results: Sequence[ThresholdResult],
    failed_experiments: Sequence[str] = (),
    incomplete: bool = False,
    problem: str | None = None,
    suite: str = "",
) -> GateResult:
    """The gate: the verdict's own answer, made a failure by a missed threshold or an
    experiment that did not complete, and unknown when the run was incomplete (an incomplete
    run proves nothing, but a violation found in it is still a failure)."""
    code = EXIT_CODES[verdict_status]  # what `sagaquake verify` exits with
    if code == 0 and (any(not r.ok for r in results) or failed_experiments):
        code = 1
    if code == 0 and incomplete:
        code = 2
    return GateResult(
        status=_STATUS[code],
        exit_code=code,
        verdict=verdict_status,
        thresholds=[r.as_dict() for r in results],
        failed_experiments=list(failed_experiments),
        incomplete=incomplete,
        problem=problem,
        suite=suite,
        decided_at=time.time(),
    )


def write_gate(run_dir: Path, gate: GateResult) -> Path:
    return write_json(RunFolder(run_dir).gate, gate.to_dict())


def read_gate(run_dir: Path) -> GateResult | None:
    """The run's gate.json, or None when no gate was decided (a run folder `sagaquake verify`
    alone checked)."""
    data = read_json(RunFolder(run_dir).gate)
    return GateResult.from_dict(data) if data is not None else None
