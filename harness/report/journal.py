"""Summarise Chaos Toolkit journals: what each experiment did and what its probes saw.

A journal (``chaos/<experiment>.journal.json``) is the experiment as chaostoolkit ran it:
``status``, ``deviated``, ``steady_states`` (``before`` / ``during`` / ``after``, each
``{"steady_state_met", "probes": [...]}``), the ``run`` list of activities with their
``output`` and the ``rollbacks``. The report needs a flat, display-ready view of that,
and one entry for every experiment the run knows of, journal or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from harness.report.data import RunData, as_dict, as_list
from harness.runs import RunFolder

__all__ = ["Experiment", "SteadyState", "Step", "experiments", "parse_journal", "short_json"]

OUTPUT_CHARS = 240  # activity outputs longer than this are cut (the journal has them all)


@dataclass(frozen=True)
class Step:
    """One probe or action as it ran."""

    name: str
    kind: str  # probe / action
    status: str  # succeeded / failed / ...
    tolerance_met: bool | None  # probes of a steady state only
    output: str  # compact JSON, cut to OUTPUT_CHARS
    start: float | None  # seconds since the run's start
    duration_s: float | None
    error: str | None  # the last line of the exception, when it failed


@dataclass(frozen=True)
class SteadyState:
    phase: str  # "before", "during 1", ..., "after"
    met: bool | None
    probes: tuple[Step, ...]


@dataclass(frozen=True)
class Experiment:
    name: str  # the journal's file stem = faults.jsonl's "experiment"
    title: str
    status: str | None  # completed / failed / aborted / interrupted; None without a journal
    deviated: bool | None
    steady_states: tuple[SteadyState, ...]
    actions: tuple[Step, ...]
    rollbacks: tuple[Step, ...]
    note: str | None = None  # why there is nothing to show


def short_json(value: Any, limit: int = OUTPUT_CHARS) -> str:
    """Compact, key-sorted JSON of any value, cut to ``limit`` characters."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _step(run: Any, t0: float) -> Step:
    run = run if isinstance(run, dict) else {}
    activity = as_dict(run.get("activity"))
    exc = run.get("exception")
    error = None
    if isinstance(exc, list) and exc:
        error = str(exc[-1]).strip()
    elif exc:
        error = str(exc).strip()
    start = _epoch(run.get("start"))
    duration = run.get("duration")
    tol = run.get("tolerance_met")
    return Step(
        name=str(activity.get("name") or "?"),
        kind=str(activity.get("type") or "?"),
        status=str(run.get("status") or "?"),
        tolerance_met=tol if isinstance(tol, bool) else None,
        output=short_json(run.get("output")),
        start=None if start is None else start - t0,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        error=error,
    )


def _state(phase: str, state: Any, t0: float) -> SteadyState | None:
    if not isinstance(state, dict):
        return None
    met = state.get("steady_state_met")
    probes = as_list(state.get("probes"))
    return SteadyState(
        phase=phase,
        met=met if isinstance(met, bool) else None,
        probes=tuple(_step(p, t0) for p in probes),
    )


def parse_journal(name: str, journal: dict[str, Any], t0: float = 0.0) -> Experiment:
    """Flatten one journal. Unknown or missing keys give empty parts, never an error."""
    experiment = as_dict(journal.get("experiment"))
    states = as_dict(journal.get("steady_states"))
    phases: list[SteadyState | None] = [_state("before", states.get("before"), t0)]
    during = as_list(states.get("during"))
    phases += [_state(f"during {i + 1}", s, t0) for i, s in enumerate(during)]
    phases.append(_state("after", states.get("after"), t0))
    runs = as_list(journal.get("run"))
    rollbacks = as_list(journal.get("rollbacks"))
    deviated = journal.get("deviated")
    return Experiment(
        name=name,
        title=str(experiment.get("title") or name),
        status=str(journal["status"]) if journal.get("status") else None,
        deviated=deviated if isinstance(deviated, bool) else None,
        steady_states=tuple(p for p in phases if p is not None),
        actions=tuple(_step(r, t0) for r in runs),
        rollbacks=tuple(_step(r, t0) for r in rollbacks),
    )


def experiments(data: RunData) -> list[Experiment]:
    """One entry per journal, plus one per experiment that left faults but no journal."""
    out = []
    for item in data.journals:
        if item["journal"] is None:
            out.append(
                Experiment(item["name"], item["name"], None, None, (), (), (), note=item["note"])
            )
        else:
            out.append(parse_journal(item["name"], item["journal"], data.t0))
    known = {e.name for e in out}
    for fault in data.faults:
        if fault.experiment not in known:
            known.add(fault.experiment)
            out.append(
                Experiment(
                    fault.experiment,
                    fault.experiment,
                    None,
                    None,
                    (),
                    (),
                    (),
                    note=f"no journal {RunFolder.journal_rel(fault.experiment)}; "
                    f"its fault windows come from {RunFolder.FAULTS}",
                )
            )
    return out
