"""`sagaquake selftest`: plant each mutation in a copy of the project, run its suite, and check
that the gate catches it by the invariant it breaks, while the unmutated system passes.

Everything is checked before the first run (the catalogue, every `find`, every suite and its
experiments). Cases run one after another: one run already uses most of two cores. The controls
(the unmutated system, once per suite the chosen mutations use) run first, so a suite that
raises false alarms is seen before any mutation is judged by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness.errors import ConfigError
from harness.run.orchestrator import check_suite
from harness.run.suite import load_suite
from harness.selftest.case import Case, run_case
from harness.selftest.catalogue import MUTATIONS_DIR, Mutation, load_catalogue, select
from harness.selftest.outcome import CaseResult
from harness.selftest.report import (
    exit_code,
    render_table,
    score,
    short_failed,
    write_json,
    write_junit,
)
from harness.settings import reports_root

__all__ = ["ROOT", "SelftestOptions", "list_catalogue", "plan_cases", "run_selftest"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SelftestOptions:
    only: list[str] = field(default_factory=list)
    quick: bool = False
    control: bool = True
    keep_copies: bool = False
    catalogue: Path | None = None  # default: scenarios/mutations of the project


def plan_cases(chosen: list[Mutation], control: bool) -> list[Case]:
    """Controls first (one per distinct suite of the mutations that will run), then every
    mutation in catalogue order (pending ones included: they are reported, not run)."""
    suites = list(dict.fromkeys(m.suite for m in chosen if not m.pending))
    controls = [Case(f"control-{s.stem}", "control", s) for s in suites] if control else []
    return controls + [Case(m.name, "mutation", m.suite, m) for m in chosen]


def _check_suites(cases: list[Case], root: Path) -> None:
    """Every suite that will run, with its profile and experiments, before anything starts."""
    for suite in dict.fromkeys(c.suite for c in cases if not (c.mutation and c.mutation.pending)):
        check_suite(load_suite(root / suite))


def list_catalogue(options: SelftestOptions, console: Console) -> int:
    root = ROOT
    catalogue = load_catalogue(options.catalogue or root / MUTATIONS_DIR, root)
    for m in select(catalogue, options.only, options.quick):
        flags = " (quick)" if m.quick else ""
        flags += f" (pending: {m.pending})" if m.pending else ""
        console.print(f"[bold]{escape(m.name)}[/]{escape(flags)}: {escape(m.title)}")
        console.print(f"    {m.file} · suite {m.suite} · expect {', '.join(m.expect)}")
    return 0


def run_selftest(options: SelftestOptions, console: Console) -> int:
    root = ROOT
    catalogue = load_catalogue(options.catalogue or root / MUTATIONS_DIR, root)
    chosen = select(catalogue, options.only, options.quick)
    if not chosen:
        raise ConfigError("no mutation selected: drop --quick, or name one with --only")
    cases = plan_cases(chosen, options.control)
    _check_suites(cases, root)
    folder = reports_root() / time.strftime("selftest-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=False)
    console.print(f"selftest folder: [bold]{folder}[/]")
    meta = {
        "started_at": time.time(),
        "root": str(root),
        "quick": options.quick,
        "only": options.only,
        "control": options.control,
    }
    results: list[CaseResult] = []
    runnable = [c for c in cases if not (c.mutation and c.mutation.pending)]
    n = 0
    for case in cases:
        if case.mutation and case.mutation.pending:
            pending = case.result()
            pending.outcome, pending.detail = "pending", case.mutation.pending
            results.append(pending)
            continue
        n += 1
        what = "control (unmutated)" if case.kind == "control" else f"mutation {case.name}"
        console.print(f"[{n}/{len(runnable)}] {what}: suite {case.suite}")
        try:
            with console.status(f"{what}: running…") as status:
                result = run_case(
                    case, root, folder / case.name, keep_copy=options.keep_copies,
                    tick=lambda s, w=what: status.update(f"{w}: running… {s / 60:.1f} min"),  # type: ignore[misc]
                )  # fmt: skip
        except KeyboardInterrupt:  # before its run started (a run's own Ctrl-C is handled there)
            result = case.result()
            result.outcome = "interrupted"
        results.append(result)
        console.print(
            f"    {result.label}: {short_failed(result.failed, 3) or result.detail or 'nothing failed'}"
            f" ({result.duration_s / 60:.1f} min, {result.run_dir or 'no run folder'})"
        )
        write_json(folder / "selftest.json", results, meta)
        if result.outcome == "interrupted":
            console.print("[yellow]interrupted: the remaining cases are not run[/]")
            break
    meta["ended_at"] = time.time()
    json_path = write_json(folder / "selftest.json", results, meta)
    junit_path = write_junit(folder / "junit.xml", results)
    render_table(results, console, folder)
    if not options.control:
        console.print("[yellow]no control run: a false alarm would not be seen (exit 2 at best)[/]")
    console.print(f"results: {json_path}\njunit: {junit_path}")
    code = exit_code(results, control_skipped=not options.control)
    s = score(results)
    word = {0: "[bold green]PASS[/]", 1: "[bold red]FAIL[/]", 2: "[bold yellow]INCOMPLETE[/]"}
    console.print(
        f"selftest: {word.get(code, '[yellow]INTERRUPTED[/]')} ({s['caught']}/{s['ran']} caught)"
    )
    return code
