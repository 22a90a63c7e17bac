"""Timeliness: how long orders took to finish, and how long the system took to recover.

Why these two: the other invariants say whether every order ended well; these say whether it
ended in time (time to terminal, per order, as its client saw it) and how long each injected
fault kept hurting (recovery time). Limits come from the suite; without limits the metrics
are reported and the invariant passes once they could be computed.

Recovery time of a fault window [started_at, ended_at] (history/faults.jsonl) is the time from
`ended_at` until the last order that was in flight at any moment of the window reached its
terminal event: the backlog the fault touched has drained. It is 0 when that happened before
the fault ended (or nothing was in flight), and `null` ("did not recover") when an order it
touched never reached a terminal event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.numbers import NumberError, number
from harness.verify.facts import client_table, order_table, universe
from harness.verify.history import History, MissingPartError
from harness.verify.results import InvariantResult, from_violations, invariant

__all__ = [
    "PERCENTILES",
    "THRESHOLDS",
    "recovery_times",
    "time_to_terminal",
    "timeliness",
    "validate_thresholds",
]

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99}
# Limits a suite may set, each on one metric; a value must be <= its limit.
THRESHOLDS = {
    "p50_time_to_terminal_s": ("time_to_terminal_s", "p50"),
    "p90_time_to_terminal_s": ("time_to_terminal_s", "p90"),
    "p99_time_to_terminal_s": ("time_to_terminal_s", "p99"),
    "max_time_to_terminal_s": ("time_to_terminal_s", "max"),
    "max_recovery_time_s": ("recovery", "max"),
}


def validate_thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, float]:
    """The limits as floats; ConfigError naming the bad key or value otherwise."""
    out: dict[str, float] = {}
    for name, limit in (thresholds or {}).items():
        if name not in THRESHOLDS:
            known = ", ".join(THRESHOLDS)
            raise ConfigError(f"unknown threshold {name!r}: the verifier knows {known}")
        try:
            out[name] = number(limit, name, minimum=0, strict=True)
        except NumberError as exc:
            raise ConfigError(
                f"threshold {name!r} is {limit!r}: expected {exc.expected} (seconds)"
            ) from None
    return out


def time_to_terminal(h: History) -> pd.Series:
    """Seconds from a terminal order's first client request (its OrderPlaced when no client
    record names it) to its terminal event, per order id."""
    orders = order_table(h)
    start = _start_times(h)
    done = np.flatnonzero(orders["terminal_ts"].notna().to_numpy())
    seconds = orders["terminal_ts"].to_numpy(float)[done] / 1000.0 - start[done]
    return pd.Series(seconds, index=pd.Index(universe(h).ids[done], dtype=object))


def _start_times(h: History) -> np.ndarray:
    """Per order code: when its first request was sent, else when it was placed."""
    placed = order_table(h)["ts_OrderPlaced"].to_numpy(float) / 1000.0
    if h.ledger is None:
        return placed
    sent = client_table(h)["first_sent_at"].to_numpy(float)
    return np.where(np.isnan(sent), placed, sent)


def _summary(values: np.ndarray) -> dict[str, Any]:
    if not len(values):
        return {"count": 0}
    out: dict[str, Any] = {"count": len(values)}
    for name, q in PERCENTILES.items():
        out[name] = round(float(np.percentile(values, q)), 6)
    out["max"] = round(float(values.max()), 6)
    out["mean"] = round(float(values.mean()), 6)
    return out


def recovery_times(h: History) -> list[dict[str, Any]]:
    """Per fault window (`fault` = its line in faults.jsonl, from 0): recovery_time_s (None
    when it did not recover), backlog (orders in flight during the window), still_open, and
    the order that finished last."""
    if h.faults is None:
        raise MissingPartError("faults", h.missing.get("faults", "history/faults.jsonl is missing"))
    if not len(h.faults):
        return []
    orders = order_table(h)
    ids = universe(h).ids
    start = _start_times(h)
    end = orders["terminal_ts"].to_numpy(float) / 1000.0
    # The orders that exist, and those clients were told were accepted but never appeared.
    real = orders["in_events"].to_numpy().copy()
    if h.ledger is not None:
        real |= (client_table(h)["outcome"] == "ok").to_numpy()
    out = []
    for i, fault in enumerate(h.faults.to_dict("records")):
        began, ended = fault["_started_at"], fault["_ended_at"]
        item: dict[str, Any] = {
            "fault": i,
            "experiment": fault.get("experiment"),
            "action": fault.get("action"),
            "target": fault.get("target"),
            "started_at": began,
            "ended_at": ended,
            "landed": fault.get("landed"),
        }
        if not (began == began and ended == ended):
            item.update(recovery_time_s=None, note="the fault window has no started_at/ended_at")
            out.append(item)
            continue
        touched = real & (start <= ended) & (np.isnan(end) | (end >= began))
        open_ = touched & np.isnan(end)
        item["backlog"] = int(touched.sum())
        item["still_open"] = int(open_.sum())
        if open_.any():
            item["recovery_time_s"] = None
            item["slowest_order"] = str(ids[np.flatnonzero(open_)[0]])
        elif touched.any():
            last = np.flatnonzero(touched)[np.argmax(end[touched])]
            item["recovery_time_s"] = round(max(0.0, float(end[last]) - ended), 6)
            item["slowest_order"] = str(ids[last])
        else:
            item["recovery_time_s"] = 0.0
        out.append(item)
    return out


@invariant("timeliness", "Timeliness")
def timeliness(h: History, thresholds: Mapping[str, Any] | None = None) -> InvariantResult:
    """Time to terminal (p50/p90/p99/max, seconds) over every terminal order, and the recovery
    time of every fault window, each against the suite's limits when given."""
    limits = validate_thresholds(thresholds)
    h.require("events")
    ttt = time_to_terminal(h)
    values = ttt.to_numpy(float)
    values = values[~np.isnan(values)]
    metrics: dict[str, Any] = {"time_to_terminal_s": _summary(values)}
    unknown: list[str] = []
    notes: list[str] = []
    if h.ledger is None:
        notes.append("no client ledger: time to terminal counts from OrderPlaced")
    if (values < 0).any():
        notes.append(
            f"{int((values < 0).sum())} orders end before their first request: clock skew?"
        )
    try:
        recovery = recovery_times(h)
    except MissingPartError as err:
        recovery = None
        if any(THRESHOLDS[n][0] == "recovery" for n in limits):
            unknown.append(err.reason)
        else:
            notes.append(f"no recovery times: {err.reason}")
    if recovery is not None:
        metrics["recovery"] = recovery
    if not len(values):
        unknown.append("no order reached a terminal event: no time to terminal")

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for name, limit in limits.items():
        metric, stat = THRESHOLDS[name]
        if metric == "recovery":
            value, ok = _recovery_limit(recovery, limit, rows)
        else:
            value = metrics["time_to_terminal_s"].get(stat)
            ok = None if value is None else bool(value <= limit)
            if ok is False:
                slow = ttt[ttt > limit].sort_values(ascending=False)
                for oid, secs in slow.items():
                    rows.append(
                        {
                            "order_id": oid,
                            "why": f"took {secs:.3f} s to terminal; {name} is {value:.3f} s, limit {limit:g} s",
                            "time_to_terminal_s": round(float(secs), 6),
                            "sort": -float(secs),
                            "severity": float(secs),
                        }
                    )
        checks.append({"name": name, "op": "<=", "limit": limit, "value": value, "ok": ok})
        if ok is None and metric != "recovery":
            unknown.append(f"{name}: no value")
    metrics["thresholds"] = checks
    violations = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["why", "sort", "severity"])
    if rows:  # an order slower than several limits is one counter-example
        repeated = violations["order_id"].notna() & violations["order_id"].duplicated()
        violations = violations[~repeated]
    result = from_violations(
        h,
        violations,
        checked=len(values),
        counts={"terminal_orders": len(values), "faults": len(recovery or [])},
        unknown=unknown,
        notes=notes,
        metrics=metrics,
    )
    failed = [c["name"] for c in checks if c["ok"] is False]
    if failed and not len(violations):
        result.status = "fail"
    return result


def _recovery_limit(
    recovery: list[dict[str, Any]] | None, limit: float, rows: list[dict[str, Any]]
) -> tuple[float | None, bool | None]:
    if recovery is None:
        return None, None
    if not recovery:
        return None, True  # no fault window: nothing to recover from
    times = [r["recovery_time_s"] for r in recovery]
    never = [r for r in recovery if r["recovery_time_s"] is None]
    for r in recovery:
        t = r["recovery_time_s"]
        if t is None or t > limit:
            text = "did not recover" if t is None else f"recovered in {t:.3f} s"
            rows.append(
                {
                    "order_id": None,
                    "fault": r["fault"],
                    "experiment": r.get("experiment"),
                    "why": f"fault #{r['fault']} ({r.get('experiment')}) {text}; limit {limit:g} s",
                    "slowest_order": r.get("slowest_order"),
                    "sort": float(r["fault"]),
                    "severity": float("inf") if t is None else float(t),
                }
            )
    if never:
        return None, False
    value = max(t for t in times if t is not None)
    return value, bool(value <= limit)
