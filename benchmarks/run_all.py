"""Run every benchmark (`make bench`), print one summary table, write reports/bench/summary.json.

Why each benchmark in its own process: their figures include peak memory and CPU seconds, and
each must stop whatever it started; a fresh interpreter per benchmark keeps one's heap, threads
and child processes out of the next one's numbers, and a benchmark that fails does not stop the
others. Cheapest first, so a broken setup shows early.

    .venv/bin/python benchmarks/run_all.py                   # everything, about 1.5-2 hours
    .venv/bin/python benchmarks/run_all.py --quick           # CI size, a few minutes
    .venv/bin/python benchmarks/run_all.py --only verify --only coldstart
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Bench, console, print_table

__all__ = ["BENCHMARKS", "main"]

HERE = Path(__file__).resolve().parent
# name → script, cheapest first
BENCHMARKS = {
    "coldstart": "bench_coldstart.py",
    "http": "bench_http.py",
    "verify": "bench_verify.py",
    "overhead": "bench_overhead.py",
    "saga": "bench_saga.py",
    "peak": "bench_peak.py",
}


def _run(name: str, quick: bool, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / BENCHMARKS[name]), "--out", str(out)]
    if quick:
        cmd.append("--quick")
    console.rule(f"[bold]{name}[/]")
    started = time.time()
    proc = subprocess.Popen(cmd)
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # Ctrl-C (the child got it too) or SIGTERM: let it clean up
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            common.stop_process(proc, grace_s=60)
        raise
    path = out / f"{name}.json"
    data = (
        json.loads(path.read_text()) if path.exists() and path.stat().st_mtime >= started else None
    )
    return {
        "exit_code": code,
        "took_s": round(time.time() - started, 1),
        "json": str(path) if data else None,
        "headline": data["headline"] if data else [],
        "warnings": len(data["warnings"]) if data else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only these (repeat or comma-separate): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    names = [n for n in BENCHMARKS if not only or n in only]
    out = args.out.resolve()
    bench = Bench("summary", args.quick, out)
    bench.settings.update(benchmarks=names)
    ran: dict[str, Any] = {}
    interrupted = False
    try:
        for name in names:
            ran[name] = _run(name, args.quick, out)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted[/]")
    rows = []
    for name, r in ran.items():
        status = "ok" if r["exit_code"] == 0 else f"exit {r['exit_code']}"
        for h in r["headline"] or [{}]:
            rows.append(
                (name, h.get("figure"), _value(h.get("value"), h.get("unit")),
                 h.get("baseline"), _value(h.get("baseline_value"), h.get("unit")),
                 h.get("ratio"), h.get("target"), h.get("met"), status, r["took_s"])
            )  # fmt: skip
    print_table(
        "benchmarks" + (" (quick: the figures mean little)" if args.quick else ""),
        ["benchmark", "figure", "value", "baseline", "baseline value", "ratio", "target", "met", "status", "took s"],
        rows,
        left=2,
    )  # fmt: skip
    bench.finish({"benchmarks": ran, "interrupted": interrupted}, [])
    if interrupted:
        return 130
    return 0 if all(r["exit_code"] == 0 for r in ran.values()) else 1


def _value(value: Any, unit: str | None) -> str | None:
    if value is None:
        return None
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {unit}" if unit else text


if __name__ == "__main__":
    sys.exit(main())
