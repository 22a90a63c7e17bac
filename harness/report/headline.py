"""The one-line verdict every output leads with, and the per-check statuses behind it.

The report's status is the worst of verdict.json's invariants, the thresholds and the gate's
experiments (gate.json, when `sagaquake run` decided one), so the banner, summary.md and
junit.xml always agree with the exit code: FAIL when an invariant fails, a threshold is missed
or an experiment did not complete; otherwise INCOMPLETE when the run was interrupted or never verified (a pass on
part of a run is not a pass); otherwise UNKNOWN when a check could not run; otherwise PASS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report.data import RunData, as_dict

__all__ = [
    "Headline",
    "fmt_num",
    "headline",
    "invariants",
    "key_metrics",
    "threshold_status",
    "threshold_text",
    "violations",
]

PASS, FAIL, UNKNOWN, INCOMPLETE = "PASS", "FAIL", "UNKNOWN", "INCOMPLETE"
MAX_NAMES = 3  # unchecked names listed in the verdict line; the tables list them all
_ORDER = {"fail": 0, "unknown": 1, "pass": 2}
# outcomes (data.orders["outcome"]) of orders a client was told were accepted that never ended
NEVER_TERMINAL = ("placed, never terminal", "accepted, never placed")


@dataclass(frozen=True)
class Headline:
    status: str  # PASS / FAIL / UNKNOWN / INCOMPLETE
    line: str  # what broke, in one line, without the status word


def fmt_num(value: Any) -> str:
    """Numbers as people read them: 12,345 / 0.011 / 14.2; anything else as text."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.1f}"
    return str(value)


def invariants(data: RunData) -> list[dict[str, Any]]:
    """verdict.json's invariants, failed first, then unknown, then passed (stable within)."""
    items = (data.verdict or {}).get("invariants")
    items = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return sorted(items, key=lambda i: _ORDER.get(str(i.get("status")), 1))


def violations(inv: dict[str, Any]) -> int:
    counts = as_dict(inv.get("counts"))
    n = counts.get("violations")
    if isinstance(n, int):
        return n
    examples = inv.get("counterexamples")
    return len(examples) if isinstance(examples, list) else 0


def threshold_status(t: dict[str, Any]) -> str:
    """pass / fail / unknown (no value, or ok missing)."""
    ok = t.get("ok")
    return "pass" if ok is True else "fail" if ok is False else "unknown"


def threshold_text(t: dict[str, Any]) -> str:
    value = t.get("value")
    has = f"= {fmt_num(value)}" if value is not None else "has no value"
    return f"{t.get('name', '?')} {has}, needs {t.get('op', '?')} {fmt_num(t.get('limit'))}"


def headline(data: RunData) -> Headline:
    invs = invariants(data)
    failed = [i for i in invs if i.get("status") == "fail"]
    unknown = [i for i in invs if i.get("status") not in ("pass", "fail")]
    missed = [t for t in data.thresholds if threshold_status(t) == "fail"]
    t_unknown = [t for t in data.thresholds if threshold_status(t) == "unknown"]
    parts = []
    for inv in failed:
        n = violations(inv)
        parts.append(f"{inv.get('name', '?')} violated by {n:,} order{'s' if n != 1 else ''}")
    parts += [threshold_text(t) for t in missed]
    broken = data.failed_experiments
    parts += [f"experiment {name} did not complete" for name in broken]
    if unknown or t_unknown:
        names = [str(i.get("name", "?")) for i in unknown] + [str(t.get("name")) for t in t_unknown]
        shown = ", ".join(names[:MAX_NAMES]) + (", …" if len(names) > MAX_NAMES else "")
        if len(names) > MAX_NAMES:
            parts.append(f"{len(names)} checks could not run ({shown})")
        else:
            parts.append(f"could not check {shown}")
    if failed or missed or broken:
        return Headline(FAIL, " · ".join(parts))
    if data.verdict is None:
        why = "the run was interrupted" if data.incomplete else "the run was not verified"
        return Headline(INCOMPLETE, f"no verdict.json: {why}, so nothing was checked")
    if data.verdict.get("ok") is False:
        return Headline(FAIL, "verdict.json says ok: false")
    if data.incomplete:
        phase = _last_phase(data.run)
        where = f" during {phase}" if phase else ""
        return Headline(INCOMPLETE, f"the run was interrupted{where}; checks cover part of it")
    if unknown or t_unknown:
        return Headline(UNKNOWN, " · ".join(parts))
    if data.verdict.get("ok") is not True or not invs:
        return Headline(UNKNOWN, f"verdict.json says ok: {data.verdict.get('ok')!r}")
    n_faults = len(data.faults)
    return Headline(
        PASS,
        f"all {len(invs)} invariants hold · {len(data.thresholds)} thresholds met · "
        f"{n_faults} fault{'s' if n_faults != 1 else ''} injected",
    )


def _last_phase(run: dict[str, Any]) -> str | None:
    phases = run.get("phases")
    if isinstance(phases, list) and phases and isinstance(phases[-1], dict):
        name = phases[-1].get("name")
        return str(name) if name else None
    return None


def key_metrics(data: RunData) -> dict[str, Any]:
    """The handful of numbers the banner tiles and summary.md show (None when unknown)."""
    orders = data.orders
    counts = orders["outcome"].value_counts() if len(orders) else pd.Series(dtype=int)
    have_orders = data.ledger is not None or data.events is not None
    ttt = orders["ttt_s"].dropna() if len(orders) else pd.Series(dtype=float)
    return {
        "orders_sent": int(data.ledger["order_id"].nunique()) if data.ledger is not None else None,
        "accepted": int((orders["client_outcome"] == "ok").sum())
        if data.ledger is not None
        else None,
        "completed": int(counts.get("completed", 0)) if have_orders else None,
        "cancelled": int(sum(v for k, v in counts.items() if str(k).startswith("cancelled")))
        if have_orders
        else None,
        "never_terminal": int(sum(counts.get(k, 0) for k in NEVER_TERMINAL))
        if have_orders
        else None,
        "ttt_p50_s": float(ttt.quantile(0.5)) if len(ttt) else None,
        "ttt_p99_s": float(ttt.quantile(0.99)) if len(ttt) else None,
        "faults": len(data.faults),
        "faults_landed": sum(1 for f in data.faults if f.landed),
    }
