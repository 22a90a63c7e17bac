"""Compressed peak day: the highest compression at which `peak-75k` runs through the `default`
suite's chaos experiments with zero violated invariants and p99 time-to-terminal under 30 s.

Why a window and not the whole day: a whole day at 12x is 2 hours per trial. The informative
part of peak-75k is 15:00-16:30: the 3pm e-mail doubles the rate for 30 minutes (2.01-2.03
orders/s of production time, the day's highest) and raises it 1.5x for the hour after
(1.51-1.57/s, the level of the evening peak at 20:00-21:00, 1.46-1.53/s). So the default window
plays **14:45-16:45** (2 production hours, 11.0K orders, 15% of the day) after 4 production
minutes of warm-up: the day's highest rate, and a full hour at the evening's rate. It does not
hold the evening's *length* (>= 1.4/s for about 2 hours, against 1.5 hours here);
`--window evening` plays 19:00-21:00 and `--window day` the whole day when that matters.

Each trial is `harness.run.orchestrator.run_suite` on a Suite built from
scenarios/suites/default.yaml with: profile peak-75k, the factor as compress, the window's start
and length, each experiment at the same *production* moment of the window at every factor (the
default suite spaces its experiments over 2 production hours at 12x; they are scaled to the
window and played `factor` times faster), the drain deadline as production time too (180 s at
12x), and the suite's thresholds with `p99_time_to_terminal_s < 30`.

A trial passes when the gate passes with that p99 measured over the orders no fault touched
(`--p99-scope unfaulted`, the default) or over every order (`--p99-scope all`, the literal
gate); both p99s are shown for every trial. Why not only the literal one: the default
experiments' outages are production time (payment-outage holds every order of its 10 production
minutes, about 10% of the window's orders, for up to 600/f s), so with them p99 over all orders
is at least about 540/f s whatever the capacity (45 s at 12x; it passes only above ~18x): it
measures the outage, not the system. An
order is *touched* by a fault window when it was in flight at some moment of it (the verifier's
recovery definition: first request sent by the window's end, not terminal before its start).

The search runs over the candidate factors (default 4, 6, 8, 10, 12, 16): `--search bisect`
(default, assumes pass/fail is monotonic) or `--search up` (from the low end, stopping at the
first failure). The answer is the highest passing factor; its ratio to the 12x target.

    .venv/bin/python benchmarks/bench_peak.py                       # 3 trials, 30-50 min
    .venv/bin/python benchmarks/bench_peak.py --factors 8,12 --search up
    .venv/bin/python benchmarks/bench_peak.py --quick               # one 40 s trial, one experiment
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Bench, console, headline, print_table
from harness.load.profile_loader import load_profile
from harness.run.gate import Threshold, read_gate
from harness.run.orchestrator import run_suite
from harness.run.suite import ScheduledExperiment, Suite, load_suite
from harness.runs import new_run_dir
from harness.settings import LocalPorts
from harness.verify.facts import order_table
from harness.verify.reader import load_snapshot
from harness.verify.timeliness import time_to_terminal

__all__ = ["WINDOWS", "main", "trial_suite", "unfaulted_p99"]

PROFILE = "peak-75k"
TARGET_FACTOR = 12.0
P99_LIMIT_S = 30.0
WARMUP_PROD_S = 240.0  # 4 production minutes before the window
# name -> (start hour of the measured window, production seconds)
WINDOWS = {"spike": (14.75, 7200.0), "evening": (19.0, 7200.0), "day": (0.0, 86400.0)}


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def trial_suite(base: Suite, factor: float, window: str) -> Suite:
    """The default suite replayed on peak-75k's window at `factor` (see the module docstring)."""
    start, prod_s = WINDOWS[window]
    ref = base.compress or TARGET_FACTOR  # the default suite's experiment times are at 12x
    base_prod_s = base.duration_s * ref  # production seconds its experiments are spread over
    experiments = [
        dataclasses.replace(e, at_s=e.at_s * ref * (prod_s / base_prod_s) / factor)
        for e in base.experiments
    ]
    thresholds = [
        t if t.metric != "p99_time_to_terminal_s" else Threshold(t.metric, "<", P99_LIMIT_S)
        for t in base.thresholds
    ]
    if not any(t.metric == "p99_time_to_terminal_s" for t in thresholds):
        thresholds.append(Threshold("p99_time_to_terminal_s", "<", P99_LIMIT_S))
    return dataclasses.replace(
        base,
        name=f"peak-{factor:g}x",
        profile=PROFILE,
        compress=factor,
        start_hour=(start - WARMUP_PROD_S / 3600) % 24,
        warmup_s=WARMUP_PROD_S / factor,
        duration_s=prod_s / factor,
        experiments=experiments,
        drain_deadline_s=base.drain_deadline_s * ref / factor,
        thresholds=thresholds,
    )


def quick_suite(base: Suite) -> Suite:
    """CI size: 40 s of the 3pm spike at 4x with one payment-pod kill round."""
    kill = next(e for e in base.experiments if e.name == "kill-payment-pods")
    return dataclasses.replace(
        base,
        name="peak-quick",
        profile=PROFILE,
        compress=4.0,
        start_hour=15.0,
        warmup_s=5.0,
        duration_s=40.0,
        experiments=[ScheduledExperiment(kill.path, 5.0, {"kill_every_s": 40, "kill_for_s": 80})],
        drain_deadline_s=60.0,
        thresholds=[
            t if t.metric != "p99_time_to_terminal_s" else Threshold(t.metric, "<", P99_LIMIT_S)
            for t in base.thresholds
        ],
    )


def unfaulted_p99(run_dir: Path) -> dict[str, Any]:
    """p99 time-to-terminal over the terminal orders that no fault window touched."""
    h = load_snapshot(run_dir)
    ttt = time_to_terminal(h).to_numpy(float)
    end = order_table(h)["terminal_ts"].dropna().to_numpy(float) / 1000.0
    start = end - ttt
    touched = np.zeros(len(ttt), dtype=bool)
    if h.faults is not None and len(h.faults):
        for began, ended in zip(h.faults["_started_at"], h.faults["_ended_at"], strict=True):
            if began == began and ended == ended:  # not NaN
                touched |= (start <= ended) & (end >= began)
    kept = ttt[~touched]
    return {
        "terminal_orders": len(ttt),
        "touched_by_faults": int(touched.sum()),
        "unfaulted_orders": len(kept),
        "p50": float(np.percentile(kept, 50)) if len(kept) else None,
        "p99": float(np.percentile(kept, 99)) if len(kept) else None,
        "max": float(kept.max()) if len(kept) else None,
    }


def _free_ports_env() -> None:
    """run_suite builds its LocalPlatform from the environment: give each trial free ports."""
    os.environ.update(LocalPorts.free().as_env())


def run_trial(suite: Suite, runs_root: Path, bench: Bench) -> dict[str, Any]:
    plan_curve = load_profile(PROFILE).curve(suite.compress or 1.0, float(suite.start_hour or 0))
    length = suite.warmup_s + suite.duration_s
    info: dict[str, Any] = {
        "factor": suite.compress,
        "start_hour": _hhmm(float(suite.start_hour or 0)),
        "window": f"{_hhmm(float(suite.start_hour or 0) + suite.warmup_s * (suite.compress or 1) / 3600)}"
        f"-{_hhmm(float(suite.start_hour or 0) + length * (suite.compress or 1) / 3600)}",
        "warmup_s": round(suite.warmup_s, 1),
        "duration_s": round(suite.duration_s, 1),
        "planned_orders": round(plan_curve.expected_orders(length)),
        "peak_rate": round(plan_curve.max_rate(0.0, length), 2),
        "mean_rate": round(plan_curve.expected_orders(length) / length, 2),
        "experiments": [(e.name, round(e.at_s, 1)) for e in suite.experiments],
    }
    bench.quiet(f"the {suite.compress:g}x trial")
    console.print(
        f"[bold]trial {suite.compress:g}x[/]: {PROFILE} {info['window']} (+ warm-up from "
        f"{info['start_hour']}), {length:.0f} s of load, peak {info['peak_rate']}/s, "
        f"{info['planned_orders']:,} orders, {len(suite.experiments)} experiment(s)"
    )
    _free_ports_env()
    run_dir = new_run_dir(suite.name, root=runs_root)
    started = time.time()
    outcome = run_suite(suite, "local", console, run_dir=run_dir)
    info.update(
        run_dir=str(run_dir), exit_code=outcome.exit_code, wall_s=round(time.time() - started, 1)
    )
    verdict = (
        json.loads((run_dir / "verdict.json").read_text())
        if (run_dir / "verdict.json").exists()
        else {}
    )
    gate = read_gate(run_dir)
    thresholds = {t["name"]: t for t in (gate.thresholds if gate else [])}
    failed = gate.failed_thresholds if gate else []
    violations = {
        inv["name"]: inv.get("counts", {}).get("violations")
        for inv in verdict.get("invariants", [])
        if inv.get("status") != "pass"
    }
    try:
        unfaulted = unfaulted_p99(run_dir)
    except Exception as exc:  # a run folder too broken to load: the trial fails on its gate anyway
        unfaulted = {"error": f"{type(exc).__name__}: {exc}", "p99": None}
    literal = outcome.exit_code == 0
    others_ok = (
        outcome.exit_code in (0, 1)
        and not outcome.incomplete
        and not outcome.failed_experiments
        and verdict.get("ok") is True
        and all(t["name"] == "p99_time_to_terminal_s" for t in failed)
    )
    p99u = unfaulted.get("p99")
    info.update(
        interrupted=outcome.exit_code == 130,
        verdict_ok=verdict.get("ok"),
        p99_all_s=(thresholds.get("p99_time_to_terminal_s") or {}).get("value"),
        p99_unfaulted_s=p99u,
        unfaulted=unfaulted,
        recovery_s=(thresholds.get("recovery_time_s") or {}).get("value"),
        availability=(thresholds.get("availability") or {}).get("value"),
        violations=violations,
        failed_thresholds=[f"{t['spec']} (measured {t.get('value')})" for t in failed],
        failed_experiments=outcome.failed_experiments,
        problem=outcome.problem,
        pass_all=literal,
        pass_unfaulted=bool(others_ok and p99u is not None and p99u < P99_LIMIT_S),
    )
    return info


def _search(
    factors: list[float], how: str, trial: Any
) -> tuple[float | None, list[dict[str, Any]]]:
    """The highest passing factor: bisection (monotonic pass/fail) or up from the low end."""
    done: list[dict[str, Any]] = []

    def passes(i: int) -> bool:
        result = trial(factors[i])
        done.append(result)
        if result["interrupted"]:
            raise KeyboardInterrupt
        return bool(result["passed"])

    best: float | None = None
    if how == "up":
        for i, f in enumerate(factors):
            if not passes(i):
                break
            best = f
        return best, done
    lo, hi = -1, len(factors)  # factors[lo] passes, factors[hi] fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return (factors[lo] if lo >= 0 else None), done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--factors", default="4,6,8,10,12,16", help="candidate compressions")
    parser.add_argument("--search", choices=("bisect", "up"), default="bisect")
    parser.add_argument("--window", choices=sorted(WINDOWS), default="spike")
    parser.add_argument("--p99-scope", choices=("unfaulted", "all"), default="unfaulted")
    parser.add_argument("--suite", default="default", help="whose experiments and thresholds")
    args = parser.parse_args(argv)
    factors = sorted({float(x) for x in args.factors.split(",") if x.strip()})
    bench = Bench("peak", args.quick, args.out.resolve())
    bench.settings.update(factors=factors, search=args.search, window=args.window,
                          p99_scope=args.p99_scope, suite=args.suite, p99_limit_s=P99_LIMIT_S)  # fmt: skip
    common.isolate_stack_state()
    base = load_suite(args.suite)
    runs_root = bench.out / "peak-runs"
    trials: list[dict[str, Any]] = []
    best: float | None = None
    complete = True

    def trial(factor: float | None) -> dict[str, Any]:
        suite = quick_suite(base) if factor is None else trial_suite(base, factor, args.window)
        result = run_trial(suite, runs_root, bench)
        result["passed"] = result["pass_unfaulted" if args.p99_scope == "unfaulted" else "pass_all"]
        mark = "[green]pass[/]" if result["passed"] else "[red]fail[/]"
        console.print(
            f"trial {result['factor']:g}x: {mark} (p99 all {_s(result['p99_all_s'])}, unfaulted "
            f"{_s(result['p99_unfaulted_s'])}; {'; '.join(result['failed_thresholds']) or 'every threshold met'})"
        )
        return result

    try:
        if args.quick:
            trials = [trial(None)]
            best = trials[0]["factor"] if trials[0]["passed"] else None
            complete = not trials[0]["interrupted"]
        else:
            best, trials = _search(factors, args.search, trial)
    except KeyboardInterrupt:
        complete = False
        console.print("[yellow]interrupted: the trial in progress cleaned up after itself[/]")
    return _report(bench, trials, best, args, complete)


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _report(
    bench: Bench, trials: list[dict[str, Any]], best: float | None, args: Any, complete: bool
) -> int:
    print_table(
        f"{PROFILE} through the {args.suite} suite's experiments (p99 < {P99_LIMIT_S:g} s over {args.p99_scope} orders)",
        ["factor", "window", "peak /s", "orders", "p99 all s", "p99 unfaulted s", "recovery s",
         "violations", "failed", "pass"],
        [
            (f"{t['factor']:g}x", t["window"], t["peak_rate"], t["planned_orders"], t["p99_all_s"],
             t["p99_unfaulted_s"], t["recovery_s"], sum(v or 0 for v in t["violations"].values()),
             "; ".join(t["failed_thresholds"] + t["failed_experiments"]) or "—", t["passed"])
            for t in sorted(trials, key=lambda t: t["factor"])
        ],
        left=2,
    )  # fmt: skip
    ratio = best / TARGET_FACTOR if best else None
    met = (
        None
        if args.quick or (not complete and best is None)
        else bool(best and best >= TARGET_FACTOR)
    )
    if not args.quick:
        console.print(
            f"highest passing factor: [bold]{f'{best:g}x' if best else 'none of ' + args.factors}[/] "
            f"(target {TARGET_FACTOR:g}x: a 75K-order day in 2 hours; "
            f"{'[green]met[/]' if met else '[red]not met[/]'})"
        )
    definitions = {
        "window": f"{args.window}: measured window {WINDOWS[args.window]} (start hour, production seconds), after {WARMUP_PROD_S / 60:g} production minutes of warm-up",
        "experiments": "the suite's experiments at the same production moments of the window at every factor; their durations are production time",
        "pass": f"run_suite's gate with the suite's thresholds and p99_time_to_terminal_s < {P99_LIMIT_S:g}, p99 over {args.p99_scope} orders (unfaulted: orders no fault window touched)",
        "search": f"{args.search} over {args.factors}; the answer is the highest passing factor",
    }
    results = {"complete": complete, "best_factor": best, "target_factor": TARGET_FACTOR,
               "ratio_to_target": ratio, "target_met": met, "trials": trials}  # fmt: skip
    head = [
        headline("peak-75k highest passing compression", best, "x", "target", TARGET_FACTOR,
                 f">= {TARGET_FACTOR:g}x", met),
    ]  # fmt: skip
    bench.finish(results, head, definitions)
    return 0 if complete else 130


if __name__ == "__main__":
    sys.exit(main())
