"""The verdict: every invariant's result composed into one answer, as verdict.json and on screen.

Why "fail beats unknown beats pass": a run is only proven when every invariant was checked
and held; one violation is a failure whatever else could not be checked; and a check that
could not run is never counted as a pass (Jepsen's `compose`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table

from harness.runs import RunFolder, write_json
from harness.verify.frames import jsonable
from harness.verify.results import InvariantResult

__all__ = [
    "EXIT_CODES",
    "Verdict",
    "compose",
    "exit_code",
    "read_verdict",
    "render_summary",
    "write_verdict",
]

# What `sagaquake verify` exits with.
EXIT_CODES = {"pass": 0, "fail": 1, "unknown": 2}
_STYLE = {"pass": "green", "fail": "bold red", "unknown": "yellow"}
_MARK = {"pass": "✓ pass", "fail": "✗ FAIL", "unknown": "? unknown"}


@dataclass
class Verdict:
    """verdict.json (docs/run-folder.md). `ok` is True, False or "unknown"."""

    ok: bool | Literal["unknown"]
    invariants: list[InvariantResult]
    incomplete: bool = False
    checked_at: float = 0.0
    source: str = "snapshot"
    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "pass" if self.ok is True else "fail" if self.ok is False else "unknown"

    def result(self, name: str) -> InvariantResult:
        return next(r for r in self.invariants if r.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "incomplete": self.incomplete,
            "checked_at": self.checked_at,
            "source": self.source,
            "counts": jsonable(self.counts),
            "invariants": [r.to_dict() for r in self.invariants],
            "metrics": jsonable(self.metrics),
            "thresholds": jsonable(self.thresholds),
            "missing": dict(self.missing),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            ok=data["ok"],
            invariants=[InvariantResult.from_dict(r) for r in data.get("invariants") or []],
            incomplete=bool(data.get("incomplete", False)),
            checked_at=float(data.get("checked_at") or 0.0),
            source=str(data.get("source", "snapshot")),
            counts=dict(data.get("counts") or {}),
            metrics=dict(data.get("metrics") or {}),
            thresholds=list(data.get("thresholds") or []),
            missing=dict(data.get("missing") or {}),
            notes=list(data.get("notes") or []),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Verdict:
        return cls.from_dict(orjson.loads(text))


def compose(
    results: Sequence[InvariantResult],
    *,
    source: str = "snapshot",
    incomplete: bool = False,
    counts: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    thresholds: Sequence[Mapping[str, Any]] = (),
    missing: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    checked_at: float | None = None,
) -> Verdict:
    """One verdict: ok False if any invariant failed, "unknown" if any could not be checked (or
    there were none), True only when every one passed."""
    statuses = {r.status for r in results}
    ok: bool | Literal["unknown"]
    if "fail" in statuses:
        ok = False
    elif statuses == {"pass"}:
        ok = True
    else:
        ok = "unknown"
    return Verdict(
        ok=ok,
        invariants=list(results),
        incomplete=incomplete,
        checked_at=time.time() if checked_at is None else checked_at,
        source=source,
        counts=dict(counts or {}),
        metrics=dict(metrics or {}),
        thresholds=[dict(t) for t in thresholds],
        missing=dict(missing or {}),
        notes=list(notes),
    )


def exit_code(verdict: Verdict) -> int:
    """0 when every invariant holds, 1 when one is violated, 2 when one could not be checked."""
    return EXIT_CODES[verdict.status]


def write_verdict(run_dir: Path | str, verdict: Verdict) -> Path:
    """Write `<run_dir>/verdict.json` atomically (a reader never sees half a verdict)."""
    return write_json(RunFolder(run_dir).verdict, verdict.to_dict())


def read_verdict(run_dir: Path | str) -> Verdict:
    return Verdict.from_json(RunFolder(run_dir).verdict.read_bytes())


def render_summary(verdict: Verdict, console: Console | None = None) -> None:
    """A short terminal summary: one line per invariant, then the verdict and key metrics."""
    console = console or Console()
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("invariant")
    table.add_column("status")
    table.add_column("checked", justify="right")
    table.add_column("violations", justify="right")
    table.add_column("first counter-example / reason", overflow="fold")
    for r in verdict.invariants:
        detail = ""
        if r.first:
            who = r.first.get("order_id") or r.first.get("sku") or ""
            detail = f"{who}: {r.first.get('why', '')}" if who else str(r.first.get("why", ""))
        elif r.error:
            detail = r.error
        table.add_row(
            r.name,
            f"[{_STYLE[r.status]}]{_MARK[r.status]}[/]",
            f"{r.counts.get('checked', '')}",
            f"{r.counts.get('violations', '')}",
            detail,
        )
    console.print(table)
    failed = [r.name for r in verdict.invariants if r.status == "fail"]
    unknown = [r.name for r in verdict.invariants if r.status == "unknown"]
    if verdict.ok is True:
        line = f"[green]verdict: all {len(verdict.invariants)} invariants hold[/]"
    elif verdict.ok is False:
        line = f"[bold red]verdict: FAIL ({', '.join(failed)})[/]"
    else:
        line = f"[yellow]verdict: unknown (could not check {', '.join(unknown) or 'anything'})[/]"
    ttt = verdict.metrics.get("time_to_terminal_s") or {}
    if ttt.get("count"):
        line += (
            f" · time to terminal p50 {ttt['p50']:.2f} s, p99 {ttt['p99']:.2f} s,"
            f" max {ttt['max']:.2f} s"
        )
    recovery = verdict.metrics.get("recovery") or []
    if recovery:
        parts = [
            "never" if r.get("recovery_time_s") is None else f"{r['recovery_time_s']:.1f} s"
            for r in recovery
        ]
        line += " · recovery " + ", ".join(parts)
    if verdict.incomplete:
        line += " · [yellow]the run was incomplete[/]"
    console.print(line)
