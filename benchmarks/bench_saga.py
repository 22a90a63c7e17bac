"""Saga throughput ceiling against a bare Temporal workflow, on one Temporal dev server, in one run.

Why side by side: an absolute "orders per second" says more about the machine than about us.
The bare workflow (benchmarks/bare_workflow.py: 6 do-nothing local activities, OrderSaga's
options, 2 worker processes like our 2 saga-worker replicas) is what the same Temporal server
on the same cores does with none of our work; the ratio is our cost.

One fresh local stack (LocalPlatform, free ports, a temp run folder). First the bare ladders, on
the stack's own Temporal server, with the stack's Python services stopped (the server and Redis
stay up, idle); then the services come back and the saga ladder runs through the whole system:
Locust (flat profile) → order-service → Temporal → saga workers → payment, inventory,
notification services, Redis streams → projection. Bare first on purpose: the saga then runs on
a server database that already holds the bare runs, which can only lower our ratio. Last, one
step at the saga's ceiling with py-spy attached to a saga worker, the order-service and the
projection: where our CPU goes. How a ceiling is found: benchmarks/ladder.py.

    .venv/bin/python benchmarks/bench_saga.py            # ~25-35 min on 2 cores
    .venv/bin/python benchmarks/bench_saga.py --quick    # one short step per ladder
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import functools
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.bare_workflow import WORKFLOW_TYPES, WORKFLOWS, start_at_rate
from benchmarks.common import Bench, children_cpu, console, stop_process
from benchmarks.ladder import Ladder, Step, climb, judge
from benchmarks.profiling import PySpy, summarise
from benchmarks.saga_probes import Counts, LagSampler, LoopThread
from benchmarks.saga_report import print_step, report
from harness.chaos.observe import group_backlog
from harness.load.runner import run_load
from harness.platforms.local import LocalPlatform
from harness.runs import RunFolder, read_jsonl
from harness.settings import LocalOptions, LocalPorts

__all__ = ["FLAT_RATE", "main"]

HERE = Path(__file__).resolve().parent
FLAT_RATE = 36000 / 86400  # the flat profile's orders/s at --compress 1
PY_SERVICES = (
    "order-service", "payment-service", "inventory-service", "notification-service",
    "saga-worker", "projection",
)  # fmt: skip
PROFILED = ("saga-worker_00", "order-service_00", "projection_00")


class SagaRun:
    """The stack, the bare workers and the clocks of one run of this benchmark."""

    def __init__(self, args: argparse.Namespace, bench: Bench, run_dir: Path) -> None:
        self.args = args
        self.bench = bench
        self.run_dir = run_dir
        self.platform = LocalPlatform(run_dir, LocalPorts.free(), LocalOptions())
        self.loop = LoopThread()
        self.workers: list[subprocess.Popen[bytes]] = []
        self.counts: Counts | None = None
        self.procs: dict[str, list[psutil.Process]] = {}
        self.task_queue = f"bare-{int(time.time())}"
        self.bare_steps = 0

    # -- processes and their CPU -------------------------------------------------------------

    def refresh_processes(self) -> None:
        """Group the stack's processes (and the bare workers) for per-group CPU seconds."""
        groups: dict[str, list[psutil.Process]] = {}
        for replica in self.platform.status():
            if replica.pid and replica.state == "RUNNING":
                with contextlib.suppress(psutil.Error):
                    groups.setdefault(replica.service, []).append(psutil.Process(replica.pid))
        for proc in self.workers:
            if proc.poll() is None:
                groups.setdefault("bare-worker", []).append(psutil.Process(proc.pid))
        self.procs = groups

    def cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for group, procs in self.procs.items():
            total = 0.0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[group] = total
        return out

    @staticmethod
    def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, 0.0), 3) for k in after}

    # -- the bare workers --------------------------------------------------------------------

    def start_workers(self, count: int, timeout_s: float = 90.0) -> None:
        address = self.platform.endpoints().temporal_address
        readies = []
        for i in range(count):
            ready = self.run_dir / f"bare-worker-{i}.ready"
            readies.append(ready)
            cmd = [
                sys.executable, str(HERE / "bare_workflow.py"), "--address", address,
                "--task-queue", self.task_queue, "--ready-file", str(ready),
            ]  # fmt: skip
            with open(self.run_dir / f"bare-worker-{i}.log", "wb") as log:
                self.workers.append(
                    subprocess.Popen(
                        cmd,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,  # our Ctrl-C handling stops them, by pid
                    )
                )
        deadline = time.monotonic() + timeout_s
        while not all(r.exists() for r in readies):
            dead = [i for i, p in enumerate(self.workers) if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                text = (self.run_dir / f"bare-worker-{dead[0] if dead else 0}.log").read_text()
                raise RuntimeError(f"a bare worker did not start; its log:\n{text[-2000:]}")
            time.sleep(0.2)

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop_process(proc)
        self.workers = []

    # -- steps -------------------------------------------------------------------------------

    def settle(self, wf_type: str, redis_url: str | None) -> float:
        """Wait until nothing of `wf_type` runs (and the projection caught up); seconds waited."""
        assert self.counts is not None
        started = time.monotonic()
        r = redis.Redis.from_url(redis_url, decode_responses=True) if redis_url else None
        try:
            while True:
                running = self.counts.running(wf_type)
                lag = group_backlog(r) if r is not None else 0
                waited = time.monotonic() - started
                if running == 0 and lag == 0:
                    return waited
                if waited > self.args.settle_s:
                    text = f"{wf_type}: {running} still running, projection lag {lag} after {waited:.0f} s; measuring anyway"
                    console.print(f"[yellow]warning:[/] {text}")
                    self.bench.warnings.append(text)
                    return waited
                time.sleep(0.5)
        finally:
            if r is not None:
                r.close()

    def _measure(
        self, system: str, wf_type: str, rate: float, t0: float, begin: float, sent: list[float]
    ) -> Step:
        """Completed rate and backlog in the step's window (see ladder.py)."""
        assert self.counts is not None
        w0, w1 = t0 + self.args.warmup_s, t0 + self.args.step_s
        time.sleep(max(0.0, w1 + 1.5 - time.time()))  # visibility records land a moment later
        sent = sorted(sent)

        def backlog(t: float) -> int:
            return bisect.bisect_right(sent, t) - self.counts.closed(wf_type, begin, t)  # type: ignore[union-attr]

        window = w1 - w0
        in_window = bisect.bisect_left(sent, w1) - bisect.bisect_left(sent, w0)
        return Step(
            system=system,
            offered_rate=round(rate, 3),
            window_s=round(window, 2),
            sent_rate=round(in_window / window, 3),
            completed_rate=round(self.counts.closed(wf_type, w0, w1) / window, 3),
            backlog_start=backlog(w0),
            backlog_end=backlog(w1),
            orders_sent=len(sent),
        )

    def bare_step(self, kind: str, rate: float) -> Step:
        assert self.counts is not None
        wf_type = WORKFLOW_TYPES[kind]
        self.settle(wf_type, None)
        self.bare_steps += 1
        index = self.bare_steps
        begin, cpu0, own0 = time.time(), self.cpu(), time.process_time()
        log = self.loop.run(
            start_at_rate(
                self.counts.client, kind, rate, self.args.step_s, self.task_queue,
                prefix=f"{self.task_queue}-{kind}-{index:02d}",
            ),
            timeout_s=self.args.step_s + 300,
        )  # fmt: skip
        cpu = self.delta(self.cpu(), cpu0)
        cpu["starter (benchmark process)"] = round(time.process_time() - own0, 3)
        wall = time.time() - begin
        step = self._measure(f"bare-{kind}", wf_type, rate, log.t0, begin, log.sent)
        step.send_lag_p99_s = round(log.lag_p99_s, 3)
        step.failed_sends = log.failed
        step.cpu_s, step.wall_s = cpu, round(wall, 2)
        if log.errors:
            step.extra["start_errors"] = log.errors
        return judge(step)

    def saga_step(self, rate: float) -> Step:
        endpoints = self.platform.endpoints()
        self.settle("OrderSaga", endpoints.redis_url)
        index = len(list((self.run_dir / "steps").glob("saga-*"))) + 1
        step_dir = self.run_dir / "steps" / f"saga-{index:02d}"
        begin, cpu0, kids0 = time.time(), self.cpu(), children_cpu()
        sampler = LagSampler(endpoints.redis_url).start()
        try:
            result = run_load(
                step_dir, endpoints.order_api, "flat", compress=rate / FLAT_RATE,
                duration_s=self.args.step_s, seed=index,
                redis_url=endpoints.redis_url,
            )  # fmt: skip
        finally:
            sampler.stop()
        if result.interrupted:
            raise KeyboardInterrupt
        cpu = self.delta(self.cpu(), cpu0)
        cpu["load generator (locust)"] = round(children_cpu() - kids0, 3)
        wall = time.time() - begin
        sent = [
            float(line["sent_at"])
            for path in RunFolder(step_dir).client_ledgers()
            for line in read_jsonl(path).records
            if line.get("attempt") == 1
        ]
        t0 = result.summary.t0 or (min(sent) if sent else begin)
        step = self._measure("saga", "OrderSaga", result.plan.target_rate, t0, begin, sent)
        step.projection_lag_end = sampler.at(t0 + self.args.step_s)
        step.send_lag_p99_s = result.summary.lag.get("lag_p99_s")
        step.failed_sends = result.summary.orders - result.summary.final_outcomes.get("ok", 0)
        step.cpu_s, step.wall_s = cpu, round(wall, 2)
        return judge(step)

    def profile_step(self, rate: float) -> dict[str, Any]:
        """A saga step at `rate` with py-spy on a saga worker, the order-service, the projection."""
        endpoints = self.platform.endpoints()
        self.settle("OrderSaga", endpoints.redis_url)
        pids = {r.name: r.pid for r in self.platform.status() if r.pid}
        folder = self.args.out / "saga-profile"
        if folder.exists():
            shutil.rmtree(folder)
        duration = self.args.warmup_s + self.args.profile_s + 3.0
        outcome: dict[str, Any] = {}
        stop = threading.Event()

        def load() -> None:
            try:
                outcome["result"] = run_load(
                    self.run_dir / "steps" / "profile", endpoints.order_api, "flat",
                    compress=rate / FLAT_RATE, duration_s=duration, seed=999,
                    redis_url=endpoints.redis_url, stop=stop,
                )  # fmt: skip
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=load, name="profile-load", daemon=True)
        spies: list[PySpy] = []
        thread.start()
        try:
            time.sleep(self.args.warmup_s + 2.0)  # Locust's start-up, then the warm-up
            spies = [
                PySpy(name, pids[name], folder / f"{name}.raw.txt").start(self.args.profile_s)
                for name in PROFILED
                if name in pids
            ]
            for spy in spies:
                spy.wait(self.args.profile_s + 60)
            thread.join(duration + 120)
        except BaseException:
            stop.set()
            for spy in spies:
                spy.stop()
            thread.join(60)
            raise
        if "error" in outcome:
            raise outcome["error"]
        profiles: dict[str, Any] = {"rate": round(rate, 3), "seconds": self.args.profile_s}
        for spy in spies:
            if spy.error or not spy.output.exists():
                profiles[spy.name] = {"error": spy.error or "no output"}
            else:
                profiles[spy.name] = {"file": str(spy.output), **summarise(spy.output)}
        return profiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--step-s", type=float, default=40.0, help="seconds per step")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="unmeasured start of a step")
    parser.add_argument("--start-rate", type=float, default=5.0, help="first step, orders/s")
    parser.add_argument("--factor", type=float, default=1.25, help="climb by this factor")
    parser.add_argument("--refine", type=int, default=2, help="bisections after the climb")
    parser.add_argument("--max-rate", type=float, default=400.0)
    parser.add_argument("--settle-s", type=float, default=180.0, help="max wait between steps")
    parser.add_argument("--variants", default="local,regular", help="bare variants: local,regular")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--profile-s", type=float, default=30.0, help="py-spy seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp run folder")
    args = parser.parse_args(argv)
    max_steps = 30
    if args.quick:
        args.step_s, args.warmup_s, args.start_rate, args.refine = 10.0, 3.0, 4.0, 0
        args.profile_s, max_steps = 4.0, 1
    args.out = args.out.resolve()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if set(variants) - set(WORKFLOWS):
        parser.error(f"--variants: expected some of {', '.join(WORKFLOWS)}, got {args.variants!r}")
    bench = Bench("saga", args.quick, args.out)
    bench.settings.update({k: v for k, v in vars(args).items() if k not in ("out", "quick")})
    common.isolate_stack_state()
    run_dir = Path(tempfile.mkdtemp(prefix="sagaquake-bench-saga-"))
    ctx = SagaRun(args, bench, run_dir)
    ladders: dict[str, Ladder] = {}
    profile: dict[str, Any] | None = None
    ok, status = False, 130
    try:
        bench.quiet("bringing the stack up")
        ctx.platform.up(timeout_s=180)
        endpoints = ctx.platform.endpoints()
        ctx.counts = Counts(ctx.loop, endpoints.temporal_address)
        replicas = ctx.platform.replicas.get("saga-worker", 2)
        console.print(
            f"stack up ({run_dir}); bare phase: the stack's services stop, {replicas} bare workers start"
        )
        for service in PY_SERVICES:
            ctx.platform.stop(service)
        ctx.start_workers(replicas)
        ctx.refresh_processes()
        for kind in variants:
            bench.quiet(f"the bare-{kind} ladder")
            console.print(f"[bold]bare-{kind}[/] ladder")
            ladders[f"bare-{kind}"] = climb(
                f"bare-{kind}", functools.partial(ctx.bare_step, kind), args.start_rate,
                args.factor, args.refine, args.max_rate, max_steps, on_step=print_step,
            )  # fmt: skip
        ctx.stop_workers()
        for service in PY_SERVICES:
            ctx.platform.start(service, wait_s=180)
        ctx.refresh_processes()
        bench.quiet("the saga ladder")
        console.print("[bold]saga[/] ladder (the whole system)")
        ladders["saga"] = climb(
            "saga", ctx.saga_step, args.start_rate, args.factor,
            args.refine, args.max_rate, max_steps, on_step=print_step,
        )  # fmt: skip
        if args.profile:
            top = ladders["saga"].ceiling or max(
                ladders["saga"].steps, key=lambda s: s.offered_rate
            )
            console.print(f"profiling one saga step at {top.offered_rate:.2f}/s with py-spy")
            profile = ctx.profile_step(top.offered_rate)
        ok = True
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping everything this benchmark started[/]")
    except Exception:  # what was measured so far is still worth its JSON
        console.print_exception()
        bench.warnings.append("the benchmark failed: " + traceback.format_exc(limit=3))
        status = 1
    finally:
        with common.shielded():
            ctx.stop_workers()
            with contextlib.suppress(Exception):
                ctx.loop.close()
            ctx.platform.down()
            if args.keep or not ok:
                console.print(f"run folder kept: {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
    code = report(bench, ladders, profile, variants, complete=ok)
    return code if ok else status


if __name__ == "__main__":
    sys.exit(main())
