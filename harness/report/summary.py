"""summary.md: the run in GitHub-flavoured markdown, for a CI job summary.

Pasted into ``$GITHUB_STEP_SUMMARY`` it shows the verdict line, the invariants and
thresholds, the first counter-examples (linked to the Temporal Web UI when the run recorded
one), the key numbers and the faults, and points to report.html for the rest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from harness.report.data import RunData, as_dict, as_list
from harness.report.headline import (
    fmt_num,
    headline,
    invariants,
    key_metrics,
    threshold_status,
    violations,
)
from harness.report.markup import temporal_ui
from harness.report.placement import (
    NOT_PLACED_LISTED,
    TARGET_S,
    Placement,
    fmt_delay,
    placement,
    placement_per_fault,
)
from harness.report.plots import fmt_elapsed
from harness.report.resilience import fault_scores

__all__ = ["FIRST_EXAMPLES", "render_summary"]

FIRST_EXAMPLES = 5
ICON = {"PASS": "✅", "FAIL": "❌", "UNKNOWN": "⚠️", "INCOMPLETE": "⏸️"}
MARK = {"pass": "✅", "fail": "❌", "unknown": "⚠️"}


def _cell(value: Any) -> str:
    """A value safe inside a markdown table cell."""
    text = fmt_num(value) if not isinstance(value, str) else value
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or "—"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _order_link(data: RunData, order_id: Any) -> str:
    ui = temporal_ui(data)
    code = f"`{_cell(str(order_id))}`"
    if ui is None:
        return code
    base, ns = ui
    return f"[{code}]({base}/namespaces/{quote(ns, safe='')}/workflows/{quote(str(order_id), safe='')})"


def _invariants(data: RunData) -> list[str]:
    invs = invariants(data)
    if data.verdict is None:
        return ["_No verdict.json: run `sagaquake verify <run-folder>`._", ""]
    rows = []
    for inv in invs:
        status = str(inv.get("status") or "unknown")
        counts = as_dict(inv.get("counts"))
        detail = inv.get("error") or inv.get("note") or ""
        rows.append(
            [
                MARK.get(status, "⚠️"),
                f"**{_cell(str(inv.get('name')))}**",
                counts.get("checked"),
                violations(inv)
                if status == "fail"
                else counts.get("violations", 0 if status == "pass" else None),
                detail,
            ]
        )
    return ["### Invariants", "", *_table(["", "invariant", "checked", "violations", "note"], rows)]


def _thresholds(data: RunData) -> list[str]:
    if not data.thresholds:
        return []
    rows = [
        [
            MARK[threshold_status(t)],
            f"`{_cell(str(t.get('name')))}`",
            t.get("value"),
            f"{t.get('op', '?')} {fmt_num(t.get('limit'))}",
        ]
        for t in data.thresholds
    ]
    return ["### Thresholds", "", *_table(["", "threshold", "value", "needs"], rows)]


def _examples(data: RunData) -> list[str]:
    failed = [i for i in invariants(data) if i.get("status") == "fail"]
    if not failed:
        return []
    out = ["### First counter-examples", ""]
    for inv in failed:
        out.append(f"**{_cell(str(inv.get('name')))}** ({violations(inv):,} violations)")
        out.append("")
        examples = as_list(inv.get("counterexamples"))
        for x in [x for x in examples if isinstance(x, dict)][:FIRST_EXAMPLES]:
            out.append(
                f"- {_order_link(data, x.get('order_id'))}: {_cell(str(x.get('why') or ''))}"
            )
        out.append("")
    return out


def _metrics(data: RunData) -> list[str]:
    m = key_metrics(data)
    secs = {k: (f"{m[k]:.3g} s" if m[k] is not None else None) for k in ("ttt_p50_s", "ttt_p99_s")}
    row = [
        m["orders_sent"],
        m["accepted"],
        m["completed"],
        m["cancelled"],
        m["never_terminal"],
        secs["ttt_p50_s"],
        secs["ttt_p99_s"],
        f"{m['faults_landed']}/{m['faults']}",
    ]
    headers = [
        "orders sent",
        "accepted",
        "completed",
        "cancelled",
        "never terminal",
        "p50 time to terminal",
        "p99 time to terminal",
        "faults landed",
    ]
    return ["### Key metrics", "", *_table(headers, [row])]


def _faults(data: RunData) -> list[str]:
    if not data.faults:
        return []
    scores = fault_scores(data)
    rows = []
    for f in data.faults:
        s = scores.get(f.index)
        rec = f"{f.recovery_time_s:.1f} s" if f.recovery_time_s is not None else None
        landed = {True: "yes", False: "**no**", None: "?"}[f.landed]
        rows.append(
            [
                f.label,
                f"{f.action} → {f.target}",
                f"t+{fmt_elapsed(f.started_at)}",
                f"{f.duration_s:.1f} s",
                landed,
                rec,
                s.score if s else None,
            ]
        )
    headers = ["fault", "action → target", "start", "length", "landed", "recovery", "score"]
    return ["### Faults", "", *_table(headers, rows)]


def _placement_row(label: str, p: Placement) -> list[Any]:
    never = "not placed" if p.not_placed else "—"
    met = {True: "✅", False: "❌", None: "—"}[p.met]
    return (
        [label, p.accepted, p.placed, len(p.not_placed)]
        + [fmt_delay(v, never) for v in (p.p50_s, p.p99_s, p.max_s)]
        + [met]
    )


def _placement(data: RunData) -> list[str]:
    overall = placement(data)
    if overall is None:
        return []
    per_fault = placement_per_fault(data)
    rows = [_placement_row(f"{f.label} {f.action}", p) for f, p in per_fault]
    if len(per_fault) > 1:
        rows.append(_placement_row("all", overall))
    headers = [
        "fault",
        "accepted",
        "placed",
        "not placed",
        "p50",
        "p99",
        "max",
        f"p99 < {TARGET_S:g} s",
    ]
    lines = [
        "### New orders during payment faults",
        "",
        "Time from the client's 202 to `OrderPlaced`, for orders accepted in a payment outage "
        "or hang window.",
        "",
        *_table(headers, rows),
    ]
    if overall.not_placed:
        shown = ", ".join(_order_link(data, o) for o in overall.not_placed[:NOT_PLACED_LISTED])
        more = len(overall.not_placed) - NOT_PLACED_LISTED
        lines += [
            f"Accepted, never placed: {shown}" + (f" and {more:,} more" if more > 0 else ""),
            "",
        ]
    if overall.note:
        lines += [f"_{overall.note}_", ""]
    return lines


def render_summary(data: RunData) -> str:
    head = headline(data)
    run = data.run
    run_id = run.get("run_id") or data.run_dir.name
    facts = [f"run `{run_id}`"]
    for label, key in (
        ("suite", "suite"),
        ("profile", "profile"),
        ("seed", "seed"),
        ("platform", "platform"),
    ):
        if run.get(key) is not None:
            facts.append(f"{label} `{run[key]}`")
    if run.get("compress") is not None:
        facts.append(f"compress x{run['compress']}")
    lines = [f"## {ICON[head.status]} {head.status}: {head.line}", "", " · ".join(facts), ""]
    if data.incomplete:
        lines += [
            "> [!WARNING]",
            "> This run is incomplete: it was interrupted. The numbers cover "
            "only what was recorded before it stopped.",
            "",
        ]
    lines += _invariants(data) + _thresholds(data) + _examples(data) + _metrics(data)
    lines += _faults(data) + _placement(data)
    lines += [
        "Full report: `report.html` in the run folder (charts, experiments, environment).",
        "",
    ]
    return "\n".join(lines)
