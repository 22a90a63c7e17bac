"""The report's detail sections: time to terminal, outcomes, experiments, environment, files.

Each takes the run's data and returns an HTML fragment; each degrades to a note when its
part of the run folder is missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from harness.report.data import RunData
from harness.report.evidence import evidence_headline
from harness.report.journal import Experiment, Step, short_json
from harness.report.markup import e, note, num, pill, table_html, temporal_link, utc, when
from harness.report.placement import (
    NOT_PLACED_LISTED,
    TARGET_S,
    Placement,
    fmt_delay,
    placement,
    placement_per_fault,
)
from harness.report.plots import fmt_elapsed, time_to_terminal_chart
from harness.report.resilience import AVAILABLE_FRACTION, Score
from harness.runs import RunFolder

__all__ = [
    "environment_section",
    "experiments_section",
    "files_section",
    "outcomes_section",
    "placement_section",
    "ttt_section",
]

OUTCOME_HELP = {
    "completed": "OrderCompleted in orders:events",
    "placed, never terminal": "OrderPlaced but neither OrderCompleted nor OrderCancelled",
    "accepted, never placed": "the client was told 202, the stream has no event of the order",
    "answer lost, never placed": "the answer was lost (time-out) and the order never started: allowed",
    "refused": "the client was refused (4xx/5xx) and nothing was written",
}
BAD_OUTCOMES = ("placed, never terminal", "accepted, never placed")


def _placement_row(label: str, p: Placement) -> list[str]:
    never = "not placed" if p.not_placed else "—"
    return [
        label,
        num(p.accepted),
        num(p.placed),
        num(len(p.not_placed)),
        e(fmt_delay(p.p50_s, never)),
        e(fmt_delay(p.p99_s, never)),
        e(fmt_delay(p.max_s, never)),
    ]


def placement_section(data: RunData) -> str:
    """Time from 202 to OrderPlaced for orders accepted during a payment outage or hang."""
    overall = placement(data)
    if overall is None:
        return ""
    per_fault = placement_per_fault(data)
    rows = [_placement_row(f"<b>{e(f.label)}</b> {e(f.action)}", p) for f, p in per_fault]
    classes = ["" if p.met is not False else "fail" for _, p in per_fault]
    if len(per_fault) > 1:
        rows.append(_placement_row("<b>all</b>", overall))
        classes.append("" if overall.met is not False else "fail")
    out = [
        '<h3>New orders during payment faults <span class="sub">time from the client\'s 202 '
        f"to OrderPlaced, orders accepted in the window; target: p99 under {TARGET_S:g} s</span>"
        "</h3>",
        table_html(
            ["fault", "accepted", "placed", "not placed", "p50", "p99", "max"],
            rows,
            numeric=range(1, 7),
            row_classes=classes,
            compact=True,
        ),
        '<p class="explain">A saga waiting for payment must not hold up the first step of new '
        "orders. An order never placed counts above every placed one (a percentile that falls "
        'on one reads "not placed"); one placed before its 202 arrived counts as 0 s.</p>',
    ]
    if overall.not_placed:
        shown = ", ".join(temporal_link(data, o) for o in overall.not_placed[:NOT_PLACED_LISTED])
        more = len(overall.not_placed) - NOT_PLACED_LISTED
        tail = f" and {more:,} more" if more > 0 else ""
        out.append(f'<p class="note">Accepted, never placed: {shown}{e(tail)}.</p>')
    if overall.note:
        out.append(note(overall.note))
    return "".join(out)


def ttt_section(data: RunData) -> str:
    out = []
    chart = time_to_terminal_chart(data)
    if chart:
        out.append(
            '<p class="explain">From the client\'s first request for the order to its terminal '
            "event (OrderCompleted or OrderCancelled). Red crosses: accepted orders that never "
            "reached one.</p>"
            f'<img class="chart" alt="time to terminal per order and its distribution" src="{chart}">'
        )
    else:
        out.append(note("no order reached a terminal event (or there is no events stream)"))
    rows = []
    ttt = data.orders["ttt_s"].dropna() if len(data.orders) else None
    if ttt is not None and len(ttt):
        qs = [ttt.quantile(q) for q in (0.5, 0.9, 0.95, 0.99)] + [ttt.max()]
        rows.append(
            ["this report (client's first send)", num(len(ttt))] + [e(f"{v:.3g} s") for v in qs]
        )
    metrics = ((data.verdict or {}).get("metrics") or {}).get("time_to_terminal_s")
    if isinstance(metrics, dict):
        rows.append(
            ["verifier (verdict.json)", "—"]
            + [
                e(f"{metrics[k]:.3g} s") if isinstance(metrics.get(k), int | float) else "—"
                for k in ("p50", "p90", "p95", "p99", "max")
            ]
        )
    if rows:
        out.append(
            table_html(
                ["source", "orders", "p50", "p90", "p95", "p99", "max"], rows, numeric=range(1, 7)
            )
        )
    return "".join(out)


def outcomes_section(data: RunData) -> str:
    orders = data.orders
    if not len(orders):
        return note("no client ledger and no events stream: no order to account for")
    counts = orders["outcome"].value_counts()
    order = sorted(
        counts.index, key=lambda k: (k != "completed", not str(k).startswith("cancelled"), str(k))
    )
    total = int(counts.sum())
    rows, classes = [], []
    for key in order:
        n = int(counts[key])
        share = n / total if total else 0
        width = max(1, round(share * 160))
        help_ = OUTCOME_HELP.get(
            key, "OrderCancelled with this reason" if key.startswith("cancelled") else ""
        )
        rows.append(
            [
                f"<b>{e(key)}</b>",
                num(n),
                e(f"{share:.1%}"),
                f'<span class="bar" style="width:{width}px"></span>',
                e(help_),
            ]
        )
        classes.append("fail" if key in BAD_OUTCOMES else "")
    out = [
        table_html(
            ["outcome", "orders", "share", "", "meaning"], rows, numeric=(1, 2), row_classes=classes
        )
    ]
    if data.ledger is not None:
        answers = data.ledger["outcome"].value_counts()
        retries = int((data.ledger["attempt"] > 1).sum())
        parts = ", ".join(
            f"{num(int(answers.get(k, 0)))} {e(k)}" for k in ("ok", "failed", "unknown")
        )
        out.append(
            f'<p class="explain">Client answers, per attempt: {parts}; {num(retries)} retries.</p>'
        )
    for key in ("ledger", "events"):
        if key in data.notes:
            out.append(note(data.notes[key]))
    return "".join(out)


def _step_rows(data: RunData, steps: tuple[Step, ...]) -> list[list[str]]:
    rows = []
    for s in steps:
        out = f"<code>{e(s.output)}</code>" if s.output else ""
        if s.error:
            out += f'<div class="note">{e(s.error)}</div>'
        rows.append(
            [
                e(s.name),
                e(s.kind),
                pill("pass", "OK") if s.status == "succeeded" else pill("fail", s.status.upper()),
                when(data, s.start),
                out,
            ]
        )
    return rows


def _score_block(score: Score | None) -> str:
    if score is None:
        return '<span class="score none">—<small> no fault</small></span>'
    if score.score is None:
        return f'<span class="score none">n/a <small>{e(score.note)}</small></span>'
    cls = "good" if score.score >= 80 else "mid" if score.score >= 50 else "bad"
    return f'<span class="score {cls}">{score.score}<small> / 100 resilience</small></span>'


def _score_explain(data: RunData, score: Score | None) -> str:
    if score is None or score.score is None or score.window is None:
        return ""
    lo, hi = score.window
    avail = (
        f"availability {score.availability:.0%} (seconds of {fmt_elapsed(lo)} to "
        f"{fmt_elapsed(hi)} completing ≥ {AVAILABLE_FRACTION:.0%} of the pre-fault "
        f"{score.baseline_per_s:.2f} orders/s)"
    )
    rec = f"recovery {score.recovery:.2f}" if score.recovery is not None else score.note
    return f'<p class="explain">Worst fault: {e(avail)} · {e(rec)}.</p>'


def _experiment(
    data: RunData, ex: Experiment, per_fault: dict[int, Score], score: Score | None
) -> str:
    head = [f"<span>{e(ex.title)}</span>", f'<code class="sub">{e(ex.name)}</code>']
    if ex.status:
        head.append(pill("pass" if ex.status == "completed" else "fail", ex.status.upper()))
    if ex.deviated:
        head.append(pill("fail", "DEVIATED"))
    elif ex.deviated is False:
        head.append(pill("pass", "STEADY"))
    head.append(_score_block(score))
    out = [f'<div class="experiment"><h3>{"".join(head)}</h3>', _score_explain(data, score)]
    if ex.note:
        out.append(note(ex.note))
    faults = [f for f in data.faults if f.experiment == ex.name]
    if faults:
        rows = []
        for f in faults:
            landed = {True: "landed", False: "did NOT land", None: "landing unknown"}[f.landed]
            rec = f"{f.recovery_time_s:.1f} s" if f.recovery_time_s is not None else "—"
            s = per_fault.get(f.index)
            rows.append(
                [
                    f"<b>{e(f.label)}</b>",
                    e(f"{f.action} → {f.target}"),
                    when(data, f.started_at),
                    e(f"{f.duration_s:.1f} s"),
                    e(landed),
                    e(rec),
                    num(s.score) if s and s.score is not None else "—",
                    "".join(f"{e(line)}<br>" for line in evidence_headline(f.evidence))
                    + f"<code>{e(short_json(f.evidence, 400))}</code>",
                ]
            )
        out.append('<h3>Fault evidence <span class="sub">history/faults.jsonl</span></h3>')
        out.append(
            table_html(
                [
                    "fault",
                    "action → target",
                    "start",
                    "length",
                    "landed",
                    "recovery",
                    "score",
                    "evidence",
                ],
                rows,
                numeric=(3, 5, 6),
            )
        )
    if ex.steady_states:
        rows = []
        for state in ex.steady_states:
            met = {
                True: pill("pass", "MET"),
                False: pill("fail", "NOT MET"),
                None: pill(None),
            }[state.met]
            if not state.probes:
                rows.append([e(state.phase), met, "—", "", ""])
            for p in state.probes:
                tol = {True: "✓", False: "✗", None: "—"}[p.tolerance_met]
                rows.append([e(state.phase), met, e(p.name), e(tol), f"<code>{e(p.output)}</code>"])
        out.append('<h3>Steady state <span class="sub">before / during / after</span></h3>')
        out.append(table_html(["phase", "hypothesis", "probe", "tolerance", "output"], rows))
    if ex.actions:
        out.append('<h3>Method <span class="sub">what the journal ran</span></h3>')
        out.append(
            table_html(
                ["activity", "type", "status", "start", "output"], _step_rows(data, ex.actions)
            )
        )
    if ex.rollbacks:
        out.append("<h3>Rollbacks</h3>")
        out.append(
            table_html(
                ["activity", "type", "status", "start", "output"],
                _step_rows(data, ex.rollbacks),
                compact=True,
            )
        )
    out.append("</div>")
    return "".join(out)


def experiments_section(
    data: RunData, exps: list[Experiment], per_fault: dict[int, Score], per_exp: dict[str, Score]
) -> str:
    out = [
        '<p class="explain">Resilience score = 100 * (availability + recovery) / 2. Availability: '
        "share of the fault's impact window (its start to its end plus the recovery time, at "
        f"least 10 s) in which orders completed at ≥ {AVAILABLE_FRACTION:.0%} of the pre-fault "
        "rate. Recovery: 1 if instant, ½ at the recovery budget, 0 at twice the budget. An "
        "experiment scores its worst fault; a fault that did not land scores n/a.</p>"
    ]
    if "chaos" in data.notes:
        out.append(note(data.notes["chaos"]))
    if not exps:
        out.append(note("no experiment ran"))
    out += [_experiment(data, ex, per_fault, per_exp.get(ex.name)) for ex in exps]
    return "".join(out)


def _dd(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{e(k)} <b>{e(v)}</b>" for k, v in sorted(value.items())) or "—"
    return e(value) if value not in (None, "") else "—"


def environment_section(data: RunData) -> str:
    run = data.run
    if not run:
        return note(data.notes.get("run", "no run.json"))
    machine = run.get("machine")
    if not isinstance(machine, dict):
        machine = {k: run[k] for k in ("cores", "cpu_count", "os", "hostname") if k in run} or None
    items = [
        ("run id", run.get("run_id")),
        ("suite", run.get("suite")),
        ("profile", run.get("profile")),
        ("compress", f"{run['compress']}x" if run.get("compress") is not None else None),
        ("seed", run.get("seed")),
        ("platform", run.get("platform")),
        ("machine", machine),
        ("versions", run.get("versions")),
        ("drain deadline", f"{run['drain_deadline_s']} s" if run.get("drain_deadline_s") else None),
        (
            "started",
            utc(run.get("started_at")) if isinstance(run.get("started_at"), int | float) else None,
        ),
        (
            "ended",
            utc(run.get("ended_at")) if isinstance(run.get("ended_at"), int | float) else None,
        ),
        ("incomplete", "yes" if run.get("incomplete") else "no"),
    ]
    out = [
        '<dl class="env">'
        + "".join(f"<dt>{e(k)}</dt><dd>{_dd(v)}</dd>" for k, v in items)
        + "</dl>"
    ]
    phases = run.get("phases")
    if isinstance(phases, list) and phases:
        rows = []
        for p in phases:
            if not isinstance(p, dict):
                continue
            start, end = p.get("started_at"), p.get("ended_at")
            s = start - data.t0 if isinstance(start, int | float) else None
            t = end - data.t0 if isinstance(end, int | float) else None
            length = f"{t - s:.0f} s" if s is not None and t is not None else "—"
            rows.append([e(p.get("name")), when(data, s), when(data, t), e(length)])
        out.append(
            table_html(["phase", "start", "end", "length"], rows, numeric=(3,), compact=True)
        )
    return "".join(out)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def files_section(data: RunData) -> str:
    outputs: list[tuple[str, int | None]] = [
        (RunFolder.SUMMARY_MD, None),
        (RunFolder.JUNIT_XML, None),
    ]
    links = []
    for rel, size in outputs + data.files:
        size_html = f' <span class="size">{e(_size(size))}</span>' if size is not None else ""
        links.append(f'<li><a href="{e(quote(rel))}">{e(rel)}</a>{size_html}</li>')
    return (
        '<p class="explain">Relative to this report: the Locust CSV and HTML report, the Chaos '
        "Toolkit journals, each process's log and the recorded history.</p>"
        f'<ul class="files">{"".join(links)}</ul>'
    )
