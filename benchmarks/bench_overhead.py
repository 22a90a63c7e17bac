"""Harness overhead: CPU seconds per 1,000 orders of the load generator (Locust, which also writes
the client ledger) and of the verifier (snapshot + verify_run), against the system's own.

Why CPU seconds and not wall time: on a shared 2-core machine the harness and the system compete
for the same cores, so every CPU second the harness burns is one the system under test does not
get. Per 1,000 orders, so runs of any length compare; against the system's own CPU in the same
run, so the machine cancels out.

One fresh local stack; a flat load (10 orders/s, 60 s) through run_load; then the drain (every
saga finished, the projection caught up). CPU is counted exactly where it can be:
- load generator: getrusage(RUSAGE_CHILDREN) of this process across run_load (Locust is its only
  child reaped in that time; its ledger writes are its own CPU). Its fixed part (Python and
  Locust starting, the user pool spawned, the reports written at exit) is measured apart, before
  the load: run_load at the same rate for too short a time for one arrival (no order is sent, so
  the system and the verifier never see it). The run's CPU less that is the per-order cost;
- system: psutil CPU times of every process of the stack (those carrying its marker, and the
  pids supervisord reports: supervisord, redis, Temporal, every service replica), from before
  the load until the drain ended; the idle rate measured just before the load is shown too;
- verifier: this process's CPU (and its child processes': the snapshot's reader, the replay)
  for export_snapshot, then verify_run, on that run folder; Redis's and Temporal's CPU while
  serving the export are shown apart.

    .venv/bin/python benchmarks/bench_overhead.py
    .venv/bin/python benchmarks/bench_overhead.py --quick     # 20 s of load
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Bench, children_cpu, console, headline, print_table
from harness.load.runner import run_load
from harness.platforms.local import LocalPlatform
from harness.platforms.stackstate import marked_processes
from harness.run.drain import drain
from harness.runs import update_run_json
from harness.settings import LocalOptions, LocalPorts
from harness.verify import export_snapshot, verify_run

__all__ = ["main"]

FLAT_RATE = 36000 / 86400  # the flat profile's orders/s at --compress 1
NO_ORDER_SHARE = 0.25  # the start-up run lasts this many mean inter-arrival times: the flat
# profile's arrivals are uniform, the first is due after half of one, so it sends none


class StackCpu:
    """CPU seconds of the stack's processes, by service (supervisord on its own line)."""

    def __init__(self, platform: LocalPlatform) -> None:
        names = {r.pid: r.service for r in platform.status() if r.pid}
        # supervisord's pids too: redis-server rewrites its process title over its environment,
        # so the stack's marker cannot be read from it
        pids = {p.pid for p in marked_processes(platform.stack_id)} | set(names)
        self.procs: list[tuple[str, psutil.Process]] = []
        for pid in sorted(pids):
            with contextlib.suppress(psutil.Error):
                self.procs.append((names.get(pid, "supervisord"), psutil.Process(pid)))

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for service, proc in self.procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[service] = out.get(service, 0.0) + t.user + t.system
        return out

    @staticmethod
    def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before.get(k, 0.0) for k in after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--rate", type=float, default=10.0, help="orders/s (flat profile)")
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU measured first")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration_s, args.idle_s = 20.0, 3.0
    bench = Bench("overhead", args.quick, args.out.resolve())
    bench.settings.update(rate=args.rate, duration_s=args.duration_s, idle_s=args.idle_s)
    common.isolate_stack_state()
    run_dir = Path(tempfile.mkdtemp(prefix="sagaquake-bench-overhead-"))
    platform = LocalPlatform(run_dir, LocalPorts.free(), LocalOptions())
    measured: dict[str, Any] = {}
    try:
        bench.quiet("bringing the stack up")
        platform.up(timeout_s=180)
        e = platform.endpoints()
        stack = StackCpu(platform)

        bench.quiet("the load generator's start-up (a run of no orders)")
        startup = _startup_cpu(e.order_api, e.redis_url, args.rate)
        time.sleep(2.0)  # let the start-up's last readiness calls finish
        idle0, t_idle = stack.read(), time.time()
        time.sleep(args.idle_s)
        idle_rate = sum(StackCpu.delta(stack.read(), idle0).values()) / (time.time() - t_idle)

        bench.quiet("the load")
        cpu0, kids0, t0 = stack.read(), children_cpu(), time.time()
        result = run_load(
            run_dir, e.order_api, "flat", compress=args.rate / FLAT_RATE,
            duration_s=args.duration_s, seed=1, redis_url=e.redis_url,
        )  # fmt: skip
        if result.interrupted:
            raise KeyboardInterrupt
        load_cpu = children_cpu() - kids0
        t_load = time.time()
        drained = drain(e, 180)
        system = StackCpu.delta(stack.read(), cpu0)
        t1 = time.time()
        update_run_json(
            run_dir,
            run_id=run_dir.name,
            started_at=t0,
            drain_deadline_s=180,
            incomplete=False,
            phases=[{"name": "load", "started_at": t0, "ended_at": t_load}],
        )

        bench.quiet("the verifier")
        srv0, p0 = stack.read(), time.process_time()
        export_snapshot(run_dir, e.redis_url, e.temporal_address, e.temporal_namespace)
        export_cpu = time.process_time() - p0
        export_server = sum(StackCpu.delta(stack.read(), srv0).values())
        p1, kids1 = time.process_time(), children_cpu()
        verdict = verify_run(run_dir)
        verify_cpu = time.process_time() - p1 + children_cpu() - kids1
        measured = {
            "orders": result.summary.orders,
            "accepted": result.summary.final_outcomes.get("ok", 0),
            "achieved_rate": result.achieved_rate,
            "target_rate": result.target_rate,
            "load_wall_s": t_load - t0,
            "drain_wall_s": t1 - t_load,
            "drained": drained.drained,
            "idle_system_cpu_per_s": idle_rate,
            "load_generator_cpu_s": load_cpu,
            "load_generator_startup_cpu_s": startup,
            "system_cpu_s": sum(system.values()),
            "system_cpu_by_service_s": {k: round(v, 3) for k, v in system.items()},
            "system_idle_cpu_s": idle_rate * (t1 - t0),
            "snapshot_cpu_s": export_cpu,
            "snapshot_server_cpu_s": export_server,
            "verify_cpu_s": verify_cpu,
            "verdict_ok": verdict.ok,
        }
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the stack[/]")
        return 130
    finally:
        with common.shielded():
            platform.down()
            shutil.rmtree(run_dir, ignore_errors=True)
    return _report(bench, measured)


def _startup_cpu(order_api: str, redis_url: str, rate: float) -> float:
    """CPU seconds of a run_load that sends no order (same rate, so the same user pool): what
    every load run pays once, whatever its length."""
    probe_dir = Path(tempfile.mkdtemp(prefix="sagaquake-bench-overhead-startup-"))
    try:
        kids0 = children_cpu()
        result = run_load(
            probe_dir, order_api, "flat", compress=rate / FLAT_RATE,
            duration_s=NO_ORDER_SHARE / rate, seed=1, redis_url=redis_url,
        )  # fmt: skip
        cpu = children_cpu() - kids0
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.summary.orders:
        raise RuntimeError(
            f"the start-up run sent {result.summary.orders} orders; it must send none"
        )
    return cpu


def _report(bench: Bench, m: dict[str, Any]) -> int:
    per_k = 1000.0 / max(1, m["orders"])
    load_k = m["load_generator_cpu_s"] * per_k
    system_k = m["system_cpu_s"] * per_k
    verifier_k = (m["snapshot_cpu_s"] + m["verify_cpu_s"]) * per_k
    startup = m["load_generator_startup_cpu_s"]
    steady = max(0.0, m["load_generator_cpu_s"] - startup)
    load_ms = steady * per_k  # CPU ms per order, start-up apart (s per 1,000 = ms per order)
    system_ms = system_k
    print_table(
        f"CPU seconds per 1,000 orders ({m['orders']:,} orders at {m['achieved_rate']:.2f}/s)",
        ["who", "CPU s", "CPU s / 1,000 orders", "x the system"],
        [
            ("load generator + ledger (Locust)", m["load_generator_cpu_s"], load_k, load_k / system_k),
            ("  of which start-up + shut-down (a run of no orders)", startup, None, None),
            ("  of which per order (the run less its start-up)", steady, load_ms, load_ms / system_k),
            ("system under test (all its processes)", m["system_cpu_s"], system_k, 1.0),
            ("  of which idle (before the load, x the same time)", m["system_idle_cpu_s"],
             m["system_idle_cpu_s"] * per_k, m["system_idle_cpu_s"] / m["system_cpu_s"]),
            ("verifier: snapshot (export)", m["snapshot_cpu_s"], m["snapshot_cpu_s"] * per_k,
             m["snapshot_cpu_s"] * per_k / system_k),
            ("verifier: verify_run", m["verify_cpu_s"], m["verify_cpu_s"] * per_k,
             m["verify_cpu_s"] * per_k / system_k),
            ("verifier total", m["snapshot_cpu_s"] + m["verify_cpu_s"], verifier_k, verifier_k / system_k),
            ("  (redis + temporal serving the export)", m["snapshot_server_cpu_s"],
             m["snapshot_server_cpu_s"] * per_k, None),
        ],
    )  # fmt: skip
    print_table(
        "system CPU by service over the load and drain",
        ["service", "CPU s", "CPU s / 1,000 orders"],
        [(k, v, v * per_k) for k, v in sorted(m["system_cpu_by_service_s"].items(), key=lambda kv: -kv[1])],
    )  # fmt: skip
    if m["verdict_ok"] is not True:
        text = f"the run's verdict was {m['verdict_ok']!r}: the counts may include retries"
        console.print(f"[yellow]warning:[/] {text}")
        bench.warnings.append(text)
    definitions = {
        "orders": "distinct idempotency keys in the client ledger (orders sent)",
        "load generator": "getrusage(RUSAGE_CHILDREN) across run_load: the Locust process, its users and its ledger writes",
        "load generator start-up": "getrusage(RUSAGE_CHILDREN) across a run_load at the same rate, before the load, too short for one arrival (no order sent): Python and Locust starting, the user pool spawned, the reports written at exit",
        "load generator per order": "(load generator CPU - its start-up) / orders, in CPU ms; its ratio is to the system's CPU ms per order (the same as CPU s per 1,000 orders)",
        "system": "psutil CPU times of every process of the stack (its marker, and supervisord's pids), from the load's start until the drain ended (idle included; the idle rate is measured before the load)",
        "verifier": "this process's CPU (plus its children: the snapshot's reader and the replay) for export_snapshot + verify_run on the run folder",
        "ratio": "harness CPU per 1,000 orders / system CPU per 1,000 orders, same run",
    }
    results = {
        **m,
        "load_generator_cpu_s_per_1k": load_k,
        "system_cpu_s_per_1k": system_k,
        "verifier_cpu_s_per_1k": verifier_k,
        "load_generator_over_system": load_k / system_k if system_k else None,
        "load_generator_steady_cpu_s": steady,
        "load_generator_cpu_ms_per_order": load_ms,
        "system_cpu_ms_per_order": system_ms,
        "load_generator_per_order_over_system": load_ms / system_ms if system_ms else None,
        "verifier_over_system": verifier_k / system_k if system_k else None,
    }
    head = [
        headline("load generator CPU / 1k orders", load_k, "CPU s", "system CPU / 1k orders", system_k),
        headline("load generator CPU / order, start-up apart", load_ms, "CPU ms", "system CPU / order", system_ms,
                 "<= 5% of the system's", load_ms <= 0.05 * system_ms if system_ms else None),
        headline("load generator start-up (once per run)", startup, "CPU s"),
        headline("verifier CPU / 1k orders", verifier_k, "CPU s", "system CPU / 1k orders", system_k),
    ]  # fmt: skip
    bench.finish(results, head, definitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
