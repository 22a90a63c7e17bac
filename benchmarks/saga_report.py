"""The saga benchmark's output: per-step lines, the ladders, the ceilings and their ratio, CPU by
process, the py-spy tables, the definitions, and saga.json.

Why apart from the measuring: the tables and the JSON are the contract with docs/performance.md
and run_all.py; keeping them in one place keeps them in step.
"""

from __future__ import annotations

from typing import Any

from benchmarks import ladder as ladder_mod
from benchmarks.common import Bench, console, headline, print_table
from benchmarks.ladder import Ladder, Step

__all__ = ["TARGET_RATIO", "print_step", "report"]

TARGET_RATIO = 0.70


def print_step(step: Step) -> None:
    mark = "[green]keeps up[/]" if step.keeps_up else f"[red]{step.why}[/]"
    lag = "" if step.projection_lag_end is None else f", projection lag {step.projection_lag_end}"
    console.print(
        f"  {step.system:>12} offered {step.offered_rate:6.2f}/s  sent {step.sent_rate:6.2f}/s  "
        f"completed {step.completed_rate:6.2f}/s  backlog {step.backlog_start}→{step.backlog_end}"
        f"{lag}: {mark}"
    )


def _ladder_table(lad: Ladder) -> None:
    print_table(
        f"{lad.system}: steps",
        ["offered /s", "sent /s", "completed /s", "completed %", "backlog start→end", "proj. lag", "keeps up"],
        [
            (f"{s.offered_rate:.2f}", s.sent_rate, s.completed_rate,
             f"{100 * s.completed_rate / s.offered_rate:.0f}%", f"{s.backlog_start}→{s.backlog_end}",
             s.projection_lag_end, s.keeps_up)
            for s in sorted(lad.steps, key=lambda s: s.offered_rate)
        ],
    )  # fmt: skip


def _cpu_table(title: str, step: Step) -> None:
    total = sum(step.cpu_s.values()) or 1.0
    rows = sorted(step.cpu_s.items(), key=lambda kv: -kv[1])
    print_table(
        title,
        ["process group", "CPU s", "cores busy", "share", "CPU ms / order"],
        [
            (name, cpu, cpu / step.wall_s if step.wall_s else None, f"{100 * cpu / total:.0f}%",
             1000 * cpu / step.orders_sent if step.orders_sent else None)
            for name, cpu in rows
        ],
    )  # fmt: skip


def report(
    bench: Bench,
    ladders: dict[str, Ladder],
    profile: dict[str, Any] | None,
    variants: list[str],
    complete: bool,
) -> int:
    for lad in ladders.values():
        _ladder_table(lad)
    saga, bare = ladders.get("saga"), ladders.get("bare-local")
    saga_c = saga.ceiling.offered_rate if saga and saga.ceiling else None
    bare_c = bare.ceiling.offered_rate if bare and bare.ceiling else None
    ratio = saga_c / bare_c if saga_c and bare_c else None
    sat_ratio = (
        saga.saturated_rate / bare.saturated_rate
        if saga and bare and saga.saturated_rate and bare.saturated_rate
        else None
    )
    rows = []
    for name, lad in ladders.items():
        c = lad.ceiling
        rows.append((name, c.offered_rate if c else None, c.completed_rate if c else None,
                     lad.saturated_rate, len(lad.steps)))  # fmt: skip
    print_table("ceilings (orders or workflows completed per second)",
                ["system", "ceiling /s", "completed at ceiling /s", "saturated /s", "steps"], rows)  # fmt: skip
    met = None if ratio is None else ratio >= TARGET_RATIO
    if ratio is not None:
        saturated = f"; saturated rates: {sat_ratio:.2f}" if sat_ratio else ""
        console.print(
            f"saga / bare-local ceiling: [bold]{ratio:.2f}[/] (target >= {TARGET_RATIO:.2f}: "
            f"{'[green]met[/]' if met else '[red]not met[/]'}){saturated}"
        )
    if saga and saga.ceiling and saga.ceiling.cpu_s:
        _cpu_table(
            f"CPU by process at the saga's ceiling ({saga.ceiling.offered_rate:.2f}/s)",
            saga.ceiling,
        )
    if bare and bare.ceiling and bare.ceiling.cpu_s:
        _cpu_table(
            f"CPU by process at bare-local's ceiling ({bare.ceiling.offered_rate:.2f}/s)",
            bare.ceiling,
        )
    if profile:
        for name, prof in profile.items():
            if not isinstance(prof, dict):
                continue
            if "error" in prof:
                console.print(f"[yellow]py-spy on {name}: {prof['error']}[/]")
                continue
            print_table(
                f"py-spy {name}: {prof['samples']} samples; self time by function",
                ["function", "share"],
                [(f["name"], f"{100 * f['share']:.1f}%") for f in prof["self_by_function"][:10]],
            )
            print_table(
                f"py-spy {name}: self time by package",
                ["package", "share"],
                [(f["name"], f"{100 * f['share']:.1f}%") for f in prof["self_by_package"][:8]],
            )
    definitions = {
        "step": "a fixed offered rate of evenly spaced arrivals; window = [t0 + warmup, t0 + step)",
        "completed rate": "workflows closed inside the window (Temporal visibility CloseTime) / window",
        "backlog(t)": "arrivals sent by t minus workflows closed by t, counted from the step's start (each step starts settled)",
        "keeps up": (
            f"completed >= {ladder_mod.COMPLETION_RATIO:.0%} of offered, backlog growth over the window <= "
            f"max(3, {ladder_mod.BACKLOG_GROWTH_S:g} s x rate), and (saga) projection lag at the window's "
            f"end <= max(20, {ladder_mod.BACKLOG_GROWTH_S:g} s x rate x {ladder_mod.EVENTS_PER_ORDER} events)"
        ),
        "ceiling": "the offered rate of the highest step that keeps up (climb by --factor, then --refine geometric bisections)",
        "saturated rate": "the highest completed rate of any step (the most it completed while overloaded)",
        "baseline": "BareSaga: 6 do-nothing local activities with OrderSaga's options, sandboxed=False, 2 worker processes with the saga worker's limits, on the same Temporal dev server, started by an asyncio starter (REJECT_DUPLICATE, a memo) in the benchmark process; the stack's Python services stopped meanwhile",
        "ratio": "saga ceiling / bare-local ceiling",
    }
    for key, text in definitions.items():
        console.print(f"[dim]{key}: {text}[/]")
    results = {
        "complete": complete,
        "ladders": {name: lad.as_dict() for name, lad in ladders.items()},
        "saga_ceiling_rate": saga_c,
        "bare_local_ceiling_rate": bare_c,
        "bare_regular_ceiling_rate": (
            ladders["bare-regular"].ceiling.offered_rate
            if "bare-regular" in ladders and ladders["bare-regular"].ceiling
            else None
        ),
        "ratio": ratio,
        "saturated_ratio": sat_ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": met,
        "profile": profile,
        "variants": variants,
    }
    head = [
        headline("saga ceiling", saga_c, "orders/s", "bare-local ceiling", bare_c,
                 f">= {TARGET_RATIO:.0%} of bare", met),
        headline("saga saturated", saga.saturated_rate if saga else None, "orders/s",
                 "bare-local saturated", bare.saturated_rate if bare else None),
    ]  # fmt: skip
    bench.finish(results, head, definitions)
    return 0 if complete else 130
