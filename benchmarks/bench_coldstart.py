"""Cold start: `sagaquake up` until it returns ready, and `sagaquake down`, in seconds, against
the floor: a bare `temporal server start-dev` alone until its HTTP API knows the namespace.

Why this floor: Temporal's dev server is the slowest part to come up and `up` cannot return
before it answers, so "up / floor" says how much our own start-up (supervisord, redis, eleven
Python processes and their readiness checks) adds to what cannot be avoided. Each repeat is the
real command in a subprocess, as a user types it, with its own free ports and fresh
SAGAQUAKE_STATE_DIR / SAGAQUAKE_REPORTS_DIR (nothing cached from the repeat before); the floor
runs with the same flags and SQLite pragmas as the platform's own Temporal program.

    .venv/bin/python benchmarks/bench_coldstart.py              # median of 3
    .venv/bin/python benchmarks/bench_coldstart.py --quick      # once
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Bench, console, headline, median, print_table, stop_process
from harness.platforms.local_config import programs
from harness.platforms.readiness import temporal_ready
from harness.settings import LocalOptions, LocalPorts, isolated_env

__all__ = ["main", "temporal_floor", "up_and_down"]

ROOT = Path(__file__).resolve().parents[1]


def _sagaquake(
    env: dict[str, str], *args: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def up_and_down(folder: Path) -> dict[str, Any]:
    """One `sagaquake up` (timed until it returns ready) and one `sagaquake down` (timed)."""
    env = isolated_env(folder)
    try:
        started = time.perf_counter()
        up = _sagaquake(env, "up")
        up_s = time.perf_counter() - started
    finally:  # always, even after a failed or interrupted up: nothing is left behind
        with common.shielded():
            started = time.perf_counter()
            down = _sagaquake(env, "down")
            down_s = time.perf_counter() - started
    if up.returncode != 0 or down.returncode != 0:
        raise SystemExit(
            f"sagaquake up exited {up.returncode}, down {down.returncode}:\n"
            f"{up.stdout[-1500:]}{up.stderr[-1500:]}{down.stdout[-800:]}{down.stderr[-800:]}"
        )
    return {"up_s": up_s, "down_s": down_s}


def temporal_floor(folder: Path, timeout_s: float = 120.0) -> float:
    """Seconds from spawning the platform's own Temporal command until the namespace answers."""
    ports = LocalPorts.free()
    platform_dir = folder / "platform"
    platform_dir.mkdir(parents=True, exist_ok=True)
    temporal = next(
        p for p in programs(ports, LocalOptions(), platform_dir, {}) if p.name == "temporal"
    )
    http = f"http://127.0.0.1:{ports.temporal_http}"
    started = time.perf_counter()
    proc = subprocess.Popen(
        temporal.command, cwd=platform_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not temporal_ready(http, timeout_s=1.0):
            if proc.poll() is not None:
                raise SystemExit(f"temporal server start-dev exited with code {proc.returncode}")
            if time.perf_counter() - started > timeout_s:
                raise SystemExit(
                    f"temporal server start-dev was not ready within {timeout_s:.0f} s"
                )
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        stop_process(proc)


def import_time() -> float:
    """Seconds a fresh Python takes to import one service (the saga worker: temporalio, httpx,
    redis, FastAPI): `up` starts eleven such processes on the machine's cores."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import system_under_test.saga.worker"], cwd=ROOT, check=True
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    bench = Bench("coldstart", args.quick, args.out.resolve())
    bench.settings.update(repeat=repeat)
    runs: list[dict[str, Any]] = []
    try:
        for i in range(repeat):  # interleaved: floor, then the real thing
            folder = Path(tempfile.mkdtemp(prefix="sagaquake-bench-cold-"))
            try:
                bench.quiet(f"cold start {i + 1}")
                floor = temporal_floor(folder / "floor")
                run = {
                    "temporal_floor_s": floor,
                    "service_import_s": import_time(),
                    **up_and_down(folder / "stack"),
                }
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            runs.append(run)
            console.print(
                f"  run {i + 1}: up {run['up_s']:.2f} s, down {run['down_s']:.2f} s, "
                f"temporal alone {floor:.2f} s"
            )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    up_s = median(r["up_s"] for r in runs)
    down_s = median(r["down_s"] for r in runs)
    floor_s = median(r["temporal_floor_s"] for r in runs)
    import_s = median(r["service_import_s"] for r in runs)
    print_table(
        f"cold start, median of {repeat}",
        ["measure", "seconds", "x temporal alone", "runs"],
        [
            ("sagaquake up → ready", up_s, up_s / floor_s, ", ".join(f"{r['up_s']:.2f}" for r in runs)),
            ("sagaquake down", down_s, down_s / floor_s, ", ".join(f"{r['down_s']:.2f}" for r in runs)),
            ("temporal server start-dev → ready (floor)", floor_s, 1.0,
             ", ".join(f"{r['temporal_floor_s']:.2f}" for r in runs)),
            ("context: one service's imports (python -c import ...saga.worker)", import_s,
             import_s / floor_s, ", ".join(f"{r['service_import_s']:.2f}" for r in runs)),
        ],
    )  # fmt: skip
    definitions = {
        "up": "wall time of `python -m harness.cli up` (fresh state and reports folders, free ports) until it exits 0: every replica answered its readiness check",
        "down": "wall time of `python -m harness.cli down` on that stack",
        "service imports": "context, not a floor: a fresh `python -c 'import system_under_test.saga.worker'`; up starts 11 such processes",
        "floor": "the platform's own `temporal server start-dev` command alone (same flags, fresh SQLite file) until GET /api/v1/namespaces/default answers 200",
    }
    results = {
        "up_s": up_s,
        "down_s": down_s,
        "temporal_floor_s": floor_s,
        "service_import_s": import_s,
        "runs": runs,
    }
    head = [
        headline("sagaquake up → ready", up_s, "s", "temporal start-dev alone", floor_s),
        headline("sagaquake down", down_s, "s"),
    ]
    bench.finish(results, head, definitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
