"""Verifier speed: `verify_run` on a 1M-event snapshot against draining the same entries from Redis.

Why this baseline: the verifier cannot be faster than reading its input, and the fastest way to
read orders:events is XRANGE pages through hiredis. So the same run's 1M entries are loaded
(pipelined XADD of the exact ids and fields) into a real `redis-server` started on a free port,
and, in the same run, interleaved, median of 3:

- **drain**: `load_events_from_redis` (XRANGE pages of 10K through hiredis, into the events
  frame the checks read), and
- **verify**: `verify_run` on the snapshot folder (every file loaded, every invariant checked).

Each measurement runs in a fresh child process that reports its own wall time (around the call
only, not the imports), CPU time and peak RSS (getrusage's RUSAGE_SELF, and the VmHWM of the
verifier's reader child, sampled), so the two peaks are separable and neither inherits the
other's heap. The figure is verify events/s / drain events/s (target >= 50%).

    .venv/bin/python benchmarks/bench_verify.py --events 1000000
    .venv/bin/python benchmarks/bench_verify.py --quick          # 100K events, one run each

The run folder is generated once per (events, seed, generator text) under --cache by gen_history.py (in a child
process, so its memory does not count) and reused. `--profile` prints a cProfile of one
in-process verification (load and checks timed apart).

The generated folder has no Temporal histories (history/workflows.jsonl.gz), so `verify_run`
above leaves `no_nondeterminism` and `replays_deterministically` unknown. Their cost is measured
apart (`--replay N`, default 1,000; 200 with --quick): N sagas' histories (real recorded ones of
tests/data/histories, 80 % completed, the rest declined, out of stock and refunded, each under
its own workflow id) replayed by `replays_deterministically` against the current code, once with
one child process and once with the default (two on two cores or more), and scanned by
`no_nondeterminism`; reported in seconds per 1,000 sagas.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import (
    Bench,
    children_cpu,
    console,
    headline,
    median,
    print_table,
    start_redis,
    stop_process,
)
from harness.verify import verify_history
from harness.verify.reader import load_snapshot
from harness.verify.values import no_gc

__all__ = ["ensure_run", "load_into_redis", "main", "once"]

HERE = Path(__file__).resolve().parent
STREAM = "orders:events"
TARGET_RATIO = 0.50


def ensure_run(events: int, seed: int, cache: Path) -> Path:
    """The generated folder, keyed by the generator's own text: a changed generator is re-run."""
    generator = HERE / "gen_history.py"
    digest = hashlib.sha256(generator.read_bytes()).hexdigest()[:12]
    run_dir = cache / f"run-{events}-{seed}-{digest}"
    if not (run_dir / "run.json").exists():
        cmd = [sys.executable, str(generator), str(run_dir)]
        subprocess.run([*cmd, "--events", str(events), "--seed", str(seed)], check=True)
    return run_dir


def once(run_dir: Path, workers: int | None) -> dict[str, float]:
    """One in-process verification, load and checks timed apart (for --profile)."""
    gc.collect()
    wall0, cpu0, kids0 = time.perf_counter(), time.process_time(), children_cpu()
    with no_gc():  # as verify_run does
        h = load_snapshot(run_dir, workers=workers)
        wall1 = time.perf_counter()
        verdict = verify_history(h)
        n = len(h.events) if h.events is not None else 0
        wall_checked = time.perf_counter()
        del h  # freeing the history is part of the cost of a verify
    wall2, cpu2, kids2 = time.perf_counter(), time.process_time(), children_cpu()
    _require_ok(verdict)
    return {
        "events": n,
        "wall_s": wall2 - wall0,
        "cpu_s": cpu2 - cpu0,
        "worker_cpu_s": kids2 - kids0,
        "load_wall_s": wall1 - wall0,
        "check_wall_s": wall_checked - wall1,
        "free_wall_s": wall2 - wall_checked,
    }


# The generated folder has no Temporal histories: these two are measured apart (--replay).
_HISTORY_CHECKS = ("no_nondeterminism", "replays_deterministically")


def _require_ok(verdict: Any) -> None:
    bad = [
        (r.name, r.status, r.error or (r.first or {}).get("why"))
        for r in verdict.invariants
        if r.status != "pass"
        and not (r.name in _HISTORY_CHECKS and "workflows.jsonl.gz is missing" in str(r.error))
    ]
    if bad:
        raise SystemExit(f"the generated history should verify ok: {bad}")


# -- replaying Temporal's histories ---------------------------------------------------------------

_PATHS = ("completed",) * 8 + ("payment_declined", "refunded")
_ODD = ("out_of_stock",)


def saga_histories(n: int) -> list[dict[str, Any]]:
    """`n` records of history/workflows.jsonl.gz made of recorded OrderSaga histories."""
    from temporalio.api.history.v1 import History as HistoryProto
    from temporalio.client import WorkflowHistory

    from harness.verify.histories import encode

    recorded = HERE.parent / "tests" / "data" / "histories"
    encoded = {
        name: encode(HistoryProto(events=WorkflowHistory.from_json(name, (recorded / f"{name}.json").read_text()).events))
        for name in (*set(_PATHS), *_ODD)
    }  # fmt: skip
    out = []
    for i in range(n):
        name = _ODD[0] if i % 20 == 19 else _PATHS[i % len(_PATHS)]
        out.append(
            {
                "workflow_id": f"ord-{i:024x}",
                "run_id": f"run-{i:08d}",
                "workflow_type": "OrderSaga",
                "status": "COMPLETED",
                "history": encoded[name],
            }
        )
    return out


def replay_cost(n: int, folder: Path) -> dict[str, Any]:
    """Seconds per 1,000 sagas: replaying `n` histories (one child process, then the default
    number) and scanning them for failed workflow tasks."""
    from harness.verify.histories import scan_failures, write_histories
    from harness.verify.replay import code_to_replay, replay_histories, replay_processes

    path = folder / "workflows.jsonl.gz"
    write_histories(path, saga_histories(n))
    out: dict[str, Any] = {"sagas": n, "file_mb": path.stat().st_size / 2**20}
    with code_to_replay(None) as code:
        for label, parts in (("one_process", 1), ("default", replay_processes(n))):
            wall0, kids0 = time.perf_counter(), children_cpu()
            answer = replay_histories(path, code, parts)
            wall = time.perf_counter() - wall0
            if answer["failures"] or answer["replayed"] != n:
                raise SystemExit(f"the recorded histories should replay: {answer['failures'][:2]}")
            out[label] = {
                "processes": parts,
                "wall_s": wall,
                "cpu_s": children_cpu() - kids0,
                "s_per_1000": 1000 * wall / n,
                "cpu_s_per_1000": 1000 * (children_cpu() - kids0) / n,
            }
    wall0 = time.perf_counter()
    run_ids, failing = scan_failures(path)
    scan = time.perf_counter() - wall0
    assert len(run_ids) == n and not failing
    out["scan"] = {"wall_s": scan, "s_per_1000": 1000 * scan / n}
    return out


# -- the two measurements, each in a child process ----------------------------------------------


def _child(kind: str, target: str, workers: int | None) -> int:
    """Run one measurement in this (fresh) process; print one JSON line with what it cost."""
    import os

    import psutil

    from harness.verify import verify_run
    from harness.verify.snapshot import load_events_from_redis

    if workers is not None:
        os.environ["SAGAQUAKE_VERIFY_WORKERS"] = str(workers)
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    reader_peak = _ChildrenPeak()
    wall0, cpu0, kids0 = time.perf_counter(), time.process_time(), children_cpu()
    if kind == "drain":
        frame = load_events_from_redis(target, STREAM)
        events = len(frame)
        del frame
    else:
        verdict = verify_run(target)
        _require_ok(verdict)
        events = int(verdict.counts.get("events", 0))
        del verdict
    wall = time.perf_counter() - wall0
    reader_peak.stop()
    self_ru = resource.getrusage(resource.RUSAGE_SELF)
    kids_ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "kind": kind,
                "events": events,
                "wall_s": wall,
                "cpu_s": time.process_time() - cpu0,
                "worker_cpu_s": children_cpu() - kids0,
                "rss_before_mb": rss_before / 2**20,
                "peak_rss_mb": self_ru.ru_maxrss / 1024,  # KiB on Linux
                "worker_peak_rss_mb": reader_peak.kib / 1024,
                "worker_ru_maxrss_mb": kids_ru.ru_maxrss / 1024,
            }
        )
    )
    return 0


class _ChildrenPeak:
    """The largest VmHWM (peak RSS) of this process's children, sampled every 10 ms until
    `stop`. Not RUSAGE_CHILDREN: a child started with fork (or vfork) and exec keeps, as its
    ru_maxrss, the parent's peak at the fork, so a reader child of 30 MB started from a verifier
    of 105 MB would read 105 MB. VmHWM only grows, so a sample after a child's peak holds it;
    what a child adds in its last 10 ms is missed."""

    def __init__(self) -> None:
        import threading

        self.kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.wait(0.01):
            for child in me.children(recursive=True):
                try:
                    with open(f"/proc/{child.pid}/status") as f:
                        status = f.read()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _measure(kind: str, target: str, workers: int | None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, target]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(
            f"the {kind} measurement failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- a real redis-server holding the same entries ------------------------------------------------


def load_into_redis(url: str, run_dir: Path, batch: int = 5000) -> dict[str, Any]:
    """XADD every entry of the snapshot's orders:events with its own id and fields, pipelined."""
    r = redis.Redis.from_url(url, socket_timeout=120)
    started, n = time.perf_counter(), 0
    pipe = r.pipeline(transaction=False)
    with open(run_dir / "history" / "streams" / "orders.events.jsonl", "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            entry = orjson.loads(raw)
            pipe.xadd(STREAM, entry["fields"], id=entry["id"])
            n += 1
            if n % batch == 0:
                pipe.execute()
    pipe.execute()
    length = int(r.xlen(STREAM))
    used = int(r.info("memory")["used_memory"])
    r.close()
    if length != n:
        raise SystemExit(f"redis holds {length} entries of {STREAM}, the snapshot {n}")
    return {"entries": n, "load_s": time.perf_counter() - started, "redis_used_mb": used / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sagaquake-bench"))
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run")
    parser.add_argument(
        "--workers", type=int, default=None, help="1: the verifier reads everything in one process"
    )
    parser.add_argument(
        "--replay", type=int, default=None, help="sagas whose histories are replayed (default 1000)"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child[0], args.child[1], args.workers)
    events, repeat = (100_000, 1) if args.quick else (args.events, args.repeat)
    bench = Bench("verify", args.quick, args.out.resolve())
    replays = args.replay or (200 if args.quick else 1000)
    bench.settings.update(
        events=events, repeat=repeat, seed=args.seed, workers=args.workers, replay_sagas=replays
    )
    run_dir = ensure_run(events, args.seed, args.cache)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile(time.process_time)
        prof.runcall(once, run_dir, args.workers)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)

    folder = Path(tempfile.mkdtemp(prefix="sagaquake-bench-redis-"))
    server: subprocess.Popen[bytes] | None = None
    runs: dict[str, list[dict[str, Any]]] = {"drain": [], "verify": []}
    try:
        server, url = start_redis(folder)
        loaded = load_into_redis(url, run_dir)
        console.print(
            f"loaded {loaded['entries']:,} entries into redis in {loaded['load_s']:.1f} s "
            f"({loaded['redis_used_mb']:,.0f} MB in redis)"
        )
        for i in range(repeat):  # interleaved: a drift of the machine hits both alike
            for kind, target in (("drain", url), ("verify", str(run_dir))):
                bench.quiet(f"{kind} run {i + 1}")
                runs[kind].append(_measure(kind, target, args.workers))
                r = runs[kind][-1]
                console.print(
                    f"  {kind:6} {r['wall_s']:6.2f} s  {r['events'] / r['wall_s']:>10,.0f} events/s"
                )
        bench.quiet("replay")
        replay = replay_cost(replays, folder)
        console.print(
            f"  replay {replays:,} sagas: {replay['one_process']['s_per_1000']:.1f} s per 1,000 "
            f"in one process, {replay['default']['s_per_1000']:.1f} s per 1,000 in "
            f"{replay['default']['processes']}; scan {replay['scan']['s_per_1000']:.2f} s per 1,000"
        )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    finally:
        stop_process(server)
        shutil.rmtree(folder, ignore_errors=True)
    return _report(bench, run_dir, loaded, runs, repeat, replay)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    wall = median(r["wall_s"] for r in runs)
    n = runs[0]["events"]
    return {
        "events": n,
        "median_wall_s": wall,
        "events_per_s": n / wall,
        "best_wall_s": min(r["wall_s"] for r in runs),
        "cpu_s": median(r["cpu_s"] for r in runs),
        "worker_cpu_s": median(r["worker_cpu_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in runs),
        "rss_before_mb": median(r["rss_before_mb"] for r in runs),
        "runs_wall_s": [round(r["wall_s"], 3) for r in runs],
    }


def _report(
    bench: Bench,
    run_dir: Path,
    loaded: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    repeat: int,
    replay: dict[str, Any],
) -> int:
    drain, verify = _summary(runs["drain"]), _summary(runs["verify"])
    ratio = verify["events_per_s"] / drain["events_per_s"]
    rows = [
        (name, s["events"], s["median_wall_s"], s["events_per_s"],
         f"{s['cpu_s']:.2f} + {s['worker_cpu_s']:.2f}",
         f"{s['peak_rss_mb']:,.0f} + {s['worker_peak_rss_mb']:,.0f}",
         ", ".join(f"{w:.2f}" for w in s["runs_wall_s"]))
        for name, s in (("drain: XRANGE via hiredis → frame", drain), ("verify_run: load + every check", verify))
    ]  # fmt: skip
    print_table(
        f"{run_dir.name}: median of {repeat}",
        ["measure", "events", "wall s", "events/s", "CPU s (proc + worker)", "peak RSS MB (proc + worker)", "runs (wall s)"],
        rows,
    )  # fmt: skip
    met = ratio >= TARGET_RATIO
    console.print(
        f"verify / drain: [bold]{ratio:.2f}[/] of the raw drain rate (target >= {TARGET_RATIO:.0%}: "
        f"{'[green]met[/]' if met else '[red]not met[/]'}); verify peak memory "
        f"{verify['peak_rss_mb']:,.0f} MB + {verify['worker_peak_rss_mb']:,.0f} MB (reader worker)"
    )
    definitions = {
        "drain": "load_events_from_redis: orders:events by XRANGE pages of 10K through hiredis, into the events frame",
        "verify": "verify_run(run_dir): every history file loaded, every invariant checked, the history freed",
        "events/s": "orders:events entries / median wall time of the call (imports excluded), each in a fresh child process",
        "peak RSS": "ru_maxrss of the child (RUSAGE_SELF) + the VmHWM of its reader child, sampled every 10 ms (RUSAGE_CHILDREN, worker_ru_maxrss_mb, counts the verifier's peak at the fork); includes the interpreters and libraries (rss_before_mb)",
        "ratio": "verify events/s / drain events/s, both measured in the same run, interleaved",
        "replay": "replays_deterministically's replay of N recorded OrderSaga histories against the current code, wall seconds per 1,000 sagas (one child process, and the default); scan: no_nondeterminism's read of the same file",
    }
    results = {
        "run_dir": str(run_dir),
        "redis": loaded,
        "drain": drain,
        "verify": verify,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": met,
        "runs": runs,
        "replay": replay,
    }
    head = [
        headline("verify_run", verify["events_per_s"], "events/s", "XRANGE drain (hiredis)",
                 drain["events_per_s"], f">= {TARGET_RATIO:.0%} of drain", met),
        headline("verify peak RSS", verify["peak_rss_mb"] + verify["worker_peak_rss_mb"], "MB",
                 "drain peak RSS", drain["peak_rss_mb"]),
        headline("replay per 1,000 sagas", replay["default"]["s_per_1000"], "s",
                 "in one process", replay["one_process"]["s_per_1000"]),
    ]  # fmt: skip
    bench.finish(results, head, definitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
