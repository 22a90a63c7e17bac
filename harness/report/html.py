"""report.html: one self-contained page, verdict first, then the evidence behind it.

Read at 2am after a failed nightly, the page must answer in five seconds "did it pass, and
if not what broke": a coloured one-line verdict, then the failed invariants with their
counter-examples (linked to Temporal's Web UI), then the timeline with every fault shaded,
then the detail. Plain HTML and inline CSS; charts are embedded PNGs; the only absolute
URLs are links to the Temporal Web UI the run recorded. No clock is read: the same folder
renders the same bytes.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import harness
from harness.report.data import RunData, as_dict
from harness.report.headline import (
    Headline,
    fmt_num,
    headline,
    invariants,
    key_metrics,
    threshold_status,
)
from harness.report.journal import experiments, short_json
from harness.report.markup import e, note, num, pill, table_html, temporal_link, utc, when
from harness.report.placement import fmt_delay, placement
from harness.report.plots import fault_color, fmt_elapsed, latency_chart, throughput_chart
from harness.report.resilience import Score, experiment_scores, fault_scores, recovery_budget
from harness.report.sections import (
    environment_section,
    experiments_section,
    files_section,
    outcomes_section,
    placement_section,
    ttt_section,
)

__all__ = ["render_html"]

SECTIONS = (
    ("invariants", "Invariants"),
    ("thresholds", "Thresholds"),
    ("timeline", "Load and faults"),
    ("ttt", "Time to terminal"),
    ("outcomes", "Outcomes"),
    ("experiments", "Experiments"),
    ("environment", "Environment"),
    ("files", "Files"),
)


def _banner(data: RunData, head: Headline) -> str:
    run = data.run
    duration = None
    if isinstance(run.get("ended_at"), int | float) and isinstance(
        run.get("started_at"), int | float
    ):
        duration = fmt_elapsed(run["ended_at"] - run["started_at"])
    meta = [
        ("run", run.get("run_id") or data.run_dir.name),
        ("suite", run.get("suite")),
        ("started", utc(data.t0) if data.t0 else None),
        ("duration", duration),
        ("platform", run.get("platform")),
        ("seed", run.get("seed")),
    ]
    meta_html = " · ".join(f"{e(k)} <b>{e(v)}</b>" for k, v in meta if v not in (None, ""))
    out = (
        f'<header class="banner {head.status.lower()}"><span class="status">{e(head.status)}</span>'
        f'<span class="line">{e(head.line)}</span></header><div class="meta">{meta_html}</div>'
    )
    return out


def _interrupted(data: RunData) -> str:
    if not data.incomplete:
        return ""
    phases = data.run.get("phases")
    last = (
        phases[-1].get("name")
        if isinstance(phases, list) and phases and isinstance(phases[-1], dict)
        else None
    )
    where = f" during the <b>{e(last)}</b> phase" if last else ""
    return (
        f'<div class="interrupted">⚠ This run is INCOMPLETE: it was interrupted{where}. '
        "Every number below covers only what was recorded before it stopped.</div>"
    )


def _tile(value: str, label: str, cls: str = "") -> str:
    return (
        f'<div class="tile {cls}"><div class="v">{value}</div><div class="k">{e(label)}</div></div>'
    )


def _tiles(data: RunData, scores: dict[str, Score]) -> str:
    m = key_metrics(data)
    tiles = []
    if m["orders_sent"] is not None:
        tiles.append(_tile(num(m["orders_sent"]), "orders sent"))
        tiles.append(_tile(num(m["accepted"]), "accepted (told 202)"))
    if m["completed"] is not None:
        tiles.append(_tile(num(m["completed"]), "completed", "good" if m["completed"] else ""))
        tiles.append(_tile(num(m["cancelled"]), "cancelled"))
        stuck = m["never_terminal"]
        tiles.append(_tile(num(stuck), "accepted, never terminal", "bad" if stuck else "good"))
    if m["ttt_p99_s"] is not None:
        limit = next((t for t in data.thresholds if "time_to_terminal" in str(t.get("name"))), None)
        cls = "bad" if limit and threshold_status(limit) == "fail" else ""
        tiles.append(_tile(e(f"{m['ttt_p99_s']:.3g} s"), "p99 time to terminal", cls))
    placed = placement(data)
    if placed is not None and placed.accepted:
        cls = "good" if placed.met else "bad"
        tiles.append(
            _tile(e(fmt_delay(placed.p99_s, "not placed")), "p99 202 → placed, payment faults", cls)
        )
    if m["faults"]:
        cls = "warn" if m["faults_landed"] < m["faults"] else ""
        tiles.append(_tile(e(f"{m['faults_landed']}/{m['faults']}"), "faults landed", cls))
    valued = [s.score for s in scores.values() if s.score is not None]
    if valued:
        worst = min(valued)
        tiles.append(_tile(num(worst), "worst resilience score", _score_cls(worst)))
    return f'<div class="tiles">{"".join(tiles)}</div>' if tiles else ""


def _score_cls(score: int | None) -> str:
    if score is None:
        return "none"
    return "good" if score >= 80 else "mid" if score >= 50 else "bad"


def _events_text(events: Any) -> str:
    if not isinstance(events, list) or not events:
        return '<span class="note">none</span>'
    types = []
    for ev in events:
        fields = ev.get("fields") if isinstance(ev, dict) else None
        types.append(
            str((fields or {}).get("type") or (ev.get("type") if isinstance(ev, dict) else "?"))
        )
    return e(" → ".join(types))


def _client_text(data: RunData, client: Any) -> str:
    if not isinstance(client, dict) or not client:
        return '<span class="note">—</span>'
    parts = []
    if client.get("attempt") is not None:
        parts.append(f"attempt {client['attempt']}")
    if client.get("status") is not None or client.get("outcome"):
        parts.append(
            " ".join(str(x) for x in (client.get("status"), client.get("outcome")) if x is not None)
        )
    text = e(" · ".join(parts))
    sent = client.get("sent_at")
    if isinstance(sent, int | float):
        text += f" · sent {when(data, sent - data.t0)}"
    return text or e(short_json(client, 80))


def _subject(data: RunData, example: dict[str, Any]) -> str:
    """What a counter-example is about: an order (linked to Temporal), else a fault window."""
    if example.get("order_id"):
        return temporal_link(data, example["order_id"])
    fault = example.get("fault")
    if isinstance(fault, int) and not isinstance(fault, bool):
        swatch = f'<span class="swatch" style="background:{fault_color(fault)}"></span>'
        out = f"{swatch}fault #{fault}"
        if example.get("slowest_order"):
            out += f"<br>slowest {temporal_link(data, example['slowest_order'])}"
        return out
    return "—"


def _counterexamples(data: RunData, inv: dict[str, Any]) -> str:
    name = inv.get("name", "?")
    examples = inv.get("counterexamples")
    examples = [x for x in examples if isinstance(x, dict)] if isinstance(examples, list) else []
    total = as_dict(inv.get("counts")).get("violations")
    n = total if isinstance(total, int) else len(examples)
    sub = f"{inv.get('title') or ''} · {n:,} counter-example{'s' if n != 1 else ''}"
    title = f'<h3>{e(name)} <span class="sub">{e(sub)}</span></h3>'
    if not examples:
        return f'<div class="cx">{title}{note("verdict.json lists no counter-example for this failure")}</div>'
    rows = []
    for x in examples:
        raw = short_json(x, 4000)
        rows.append(
            [
                _subject(data, x),
                f'<span class="wrap">{e(x.get("why") or "")}</span>',
                _client_text(data, x.get("client")),
                _events_text(x.get("events")),
                f"<details><summary>json</summary><pre>{e(raw)}</pre></details>",
            ]
        )
    more = ""
    if isinstance(total, int) and total > len(examples):
        more = note(
            f"{total - len(examples):,} more not listed (verdict.json keeps the first {len(examples)})"
        )
    table = table_html(["order", "why", "client was told", "events in orders:events", ""], rows)
    return f'<div class="cx">{title}{table}{more}</div>'


def _invariants(data: RunData) -> str:
    if data.verdict is None:
        why = data.notes.get("verdict", "no verdict.json")
        return (
            f'<p class="note">{e(why)}: run <code>sagaquake verify {e(data.run_dir.name)}</code> '
            "then <code>sagaquake report</code> again.</p>"
        )
    invs = invariants(data)
    if not invs:
        return note("verdict.json lists no invariant")
    rows, classes = [], []
    for inv in invs:
        status = str(inv.get("status") or "unknown")
        counts = as_dict(inv.get("counts"))
        detail = inv.get("error") or inv.get("note") or inv.get("reason") or ""
        rows.append(
            [
                pill(status),
                f"<b>{e(inv.get('name'))}</b>",
                e(inv.get("title") or ""),
                num(counts.get("checked")),
                num(counts.get("violations", 0 if status == "pass" else None)),
                e(detail),
            ]
        )
        classes.append(status if status in ("fail", "unknown") else "")
    out = [
        table_html(
            ["", "invariant", "what it proves", "checked", "violations", "note"],
            rows,
            numeric=(3, 4),
            row_classes=classes,
        )
    ]
    out += [_counterexamples(data, i) for i in invs if i.get("status") == "fail"]
    return "".join(out)


def _thresholds(data: RunData) -> str:
    if not data.thresholds:
        return note("verdict.json has no thresholds list" if data.verdict else "no verdict.json")
    rows, classes = [], []
    for t in data.thresholds:
        status = threshold_status(t)
        rows.append(
            [
                pill(status),
                f"<b>{e(t.get('name'))}</b>",
                num(t.get("value")),
                e(f"{t.get('op', '?')} {fmt_num(t.get('limit'))}"),
            ]
        )
        classes.append(status if status != "pass" else "")
    return table_html(
        ["", "threshold", "value", "needs"], rows, numeric=(2,), row_classes=classes, compact=True
    )


def _faults_table(data: RunData, scores: dict[int, Score]) -> str:
    if not data.faults:
        return note(data.notes.get("faults", "no fault window recorded"))
    rows = []
    for f in data.faults:
        swatch = f'<span class="swatch" style="background:{fault_color(f.index)}"></span>'
        score = scores.get(f.index)
        landed: dict[bool | None, str] = {
            True: pill("pass", "YES"),
            False: pill("fail", "NO"),
        }
        rows.append(
            [
                f"{swatch}<b>{e(f.label)}</b>",
                e(f"{f.action} → {f.target}"),
                when(data, f.started_at),
                e(f"{f.duration_s:.1f} s"),
                landed.get(f.landed, pill(None)),
                e(f"{f.recovery_time_s:.1f} s") if f.recovery_time_s is not None else "—",
                num(score.score)
                if score and score.score is not None
                else e(score.note if score else "—"),
                f'<code class="wrap">{e(short_json(f.evidence, 200))}</code>',
            ]
        )
    return table_html(
        ["fault", "action → target", "start", "length", "landed", "recovery", "score", "evidence"],
        rows,
        numeric=(3, 5, 6),
    )


def _timeline(data: RunData, scores: dict[int, Score]) -> str:
    out = []
    notes = [data.notes[k] for k in ("ledger", "events") if k in data.notes]
    out += [note(n) for n in notes]
    tp = throughput_chart(data)
    lat = latency_chart(data)
    if tp:
        out.append(
            '<h3>Orders per second <span class="sub">offered (sent by clients), accepted '
            "(answered 202), completed and cancelled (terminal events), client errors</span></h3>"
            f'<img class="chart" alt="orders per second over time" src="{tp}">'
        )
    if lat:
        out.append(
            '<h3>Client latency <span class="sub">p50 / p95 / p99 of POST /orders per 10 s, '
            "every attempt; a time-out counts as its time-out</span></h3>"
            f'<img class="chart" alt="client latency percentiles over time" src="{lat}">'
        )
    if not tp and not lat:
        out.append(note("nothing to plot: no client ledger and no events stream"))
    budget = recovery_budget(data)
    out.append(
        '<h3>Fault windows <span class="sub">shaded in the charts; recovery (from verdict.json) '
        "hatched after each window</span></h3>"
        + _faults_table(data, scores)
        + f'<p class="explain">Score: see <a href="#experiments">Experiments</a>; the recovery '
        f"budget is {budget:g} s.</p>"
    )
    out.append(placement_section(data))
    return "".join(out)


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{e(key)}"><h2>{e(title)}</h2>{body}</section>'


def render_html(data: RunData) -> str:
    """The whole page as one string."""
    head = headline(data)
    per_fault = fault_scores(data)
    per_experiment = experiment_scores(data)
    css = files("harness.report").joinpath("report.css").read_text(encoding="utf-8")
    bodies = {
        "invariants": _invariants(data),
        "thresholds": _thresholds(data),
        "timeline": _timeline(data, per_fault),
        "ttt": ttt_section(data),
        "outcomes": outcomes_section(data),
        "experiments": experiments_section(data, experiments(data), per_fault, per_experiment),
        "environment": environment_section(data),
        "files": files_section(data),
    }
    toc = " ".join(f'<a href="#{k}">{e(t)}</a>' for k, t in SECTIONS)
    run_id = data.run.get("run_id") or data.run_dir.name
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(head.status)} · {e(run_id)} · sagaquake</title><style>{css}</style></head>"
        f"<body>{_banner(data, head)}<main>{_interrupted(data)}"
        f'{_tiles(data, per_experiment)}<nav class="toc">{toc}</nav>'
        + "".join(_section(k, t, bodies[k]) for k, t in SECTIONS)
        + f"<footer>sagaquake {e(harness.__version__)} · report of {e(run_id)} · "
        f"regenerate with <code>sagaquake report {e(data.run_dir.name)}</code></footer>"
        "</main></body></html>\n"
    )
