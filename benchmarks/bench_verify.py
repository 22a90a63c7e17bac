"""Time `verify_run` on a generated run folder: events per second end to end, and peak memory.

    .venv/bin/python benchmarks/bench_verify.py --events 1000000
    .venv/bin/python benchmarks/bench_verify.py --quick          # 100K events, one run

The run folder is generated once per (events, seed) under --cache (by gen_history.py, in a
child process so its memory does not count) and reused. Each repeat loads the snapshot and
checks every invariant, as `sagaquake verify` does; the median wall time is reported with the
CPU time of this process (stable on a busy machine), the split between loading and checking
of the median run, and the peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.verify import verify_history
from harness.verify.frames import no_gc
from harness.verify.reader import load_snapshot

HERE = Path(__file__).resolve().parent


def ensure_run(events: int, seed: int, cache: Path) -> Path:
    run_dir = cache / f"run-{events}-{seed}"
    if not (run_dir / "run.json").exists():
        cmd = [sys.executable, str(HERE / "gen_history.py"), str(run_dir)]
        subprocess.run([*cmd, "--events", str(events), "--seed", str(seed)], check=True)
    return run_dir


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(run_dir: Path, workers: int | None) -> dict[str, float]:
    gc.collect()
    wall0, cpu0, kids0 = time.perf_counter(), time.process_time(), _children_cpu()
    with no_gc():  # as verify_run does
        h = load_snapshot(run_dir, workers=workers)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        verdict = verify_history(h)
        n = len(h.events) if h.events is not None else 0
        wall_checked = time.perf_counter()
        del h  # freeing the history is part of the cost of a verify
    wall2, cpu2, kids2 = time.perf_counter(), time.process_time(), _children_cpu()
    if verdict.ok is not True:
        bad = [
            (r.name, r.status, r.error or (r.first or {}).get("why")) for r in verdict.invariants
        ]
        raise SystemExit(f"the generated history should verify ok: {bad}")
    return {
        "events": n,
        "wall_s": wall2 - wall0,
        "cpu_s": cpu2 - cpu0,
        "worker_cpu_s": kids2 - kids0,
        "load_wall_s": wall1 - wall0,
        "check_wall_s": wall_checked - wall1,
        "free_wall_s": wall2 - wall_checked,
        "load_cpu_s": cpu1 - cpu0,
        "check_cpu_s": cpu2 - cpu1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100K events, one run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sagaquake-bench"))
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    parser.add_argument(
        "--workers", type=int, default=None, help="1: read everything in one process"
    )
    args = parser.parse_args(argv)
    events, repeat = (100_000, 1) if args.quick else (args.events, args.repeat)
    run_dir = ensure_run(events, args.seed, args.cache)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile(time.process_time)
        prof.runcall(once, run_dir, args.workers)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    runs = [once(run_dir, args.workers) for _ in range(repeat)]
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    n = median["events"]
    cpu = statistics.median(r["cpu_s"] for r in runs)
    worker = statistics.median(r["worker_cpu_s"] for r in runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"verify_run on {n:,} events ({run_dir}), median of {repeat}:")
    print(f"  wall {median['wall_s']:.2f} s = {n / median['wall_s']:,.0f} events/s "
          f"(load {median['load_wall_s']:.2f} s, checks {median['check_wall_s']:.2f} s, "
          f"freeing the history {median['free_wall_s']:.2f} s)")  # fmt: skip
    print(f"  cpu  {cpu:.2f} s in this process (load {median['load_cpu_s']:.2f} s, checks and "
          f"freeing {median['check_cpu_s']:.2f} s) + {worker:.2f} s in the reader's worker")  # fmt: skip
    best = min(r["wall_s"] for r in runs)
    print(f"  best wall {best:.2f} s = {n / best:,.0f} events/s; all runs (wall s): "
          + ", ".join(f"{r['wall_s']:.2f}" for r in runs))  # fmt: skip
    print(f"  peak RSS {peak_mb:,.0f} MB (reader's worker {worker_mb:,.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
