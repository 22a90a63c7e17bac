"""One run of a suite: up → warm-up → load with the experiments on their schedule → drain →
snapshot → verify → gate → report → down. The exit code is the gate.

Whatever happens in the middle (Ctrl-C, a crashed phase), the clean-up runs: the load stops,
every fault is rolled back, the history that exists is snapshotted, the stack comes down, and
the verdict and report are written, marked incomplete.
"""

from __future__ import annotations

import logging
import os
import platform as host
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from harness import __version__, keys
from harness.chaos.context import CONFIG_KEYS
from harness.errors import ConfigError, HarnessError
from harness.live import LiveMonitor, connect, monitor_for
from harness.load.runner import LoadProgress, LoadResult, load_summary, plan_load, run_load
from harness.platforms.base import Platform
from harness.platforms.local import local_unsupported
from harness.run.drain import count_sagas, drain
from harness.run.gate import ThresholdResult, decide, evaluate, metrics_from, write_gate
from harness.run.progress import Progress, RunState
from harness.run.suite import Suite
from harness.runs import RunFolder, new_run_dir, update_run_json

__all__ = ["RunOutcome", "check_suite", "make_platform", "run_suite"]

log = logging.getLogger("sagaquake.run")
EXIT_INTERRUPTED = 130


@dataclass
class RunOutcome:
    run_dir: Path
    exit_code: int
    verdict_ok: bool | str | None = None
    failed_thresholds: list[ThresholdResult] = field(default_factory=list)
    failed_experiments: list[str] = field(default_factory=list)
    incomplete: bool = False
    problem: str | None = None


def make_platform(kind: str, run_dir: Path) -> Platform:
    if kind == "local":
        from harness.platforms.local import LocalPlatform

        return LocalPlatform(run_dir)
    if kind == "k8s":
        from harness.platforms.kubernetes.platform import KubernetesPlatform

        return KubernetesPlatform(run_dir)
    raise ConfigError(f"unknown platform {kind!r}; use local or k8s")


def check_suite(suite: Suite, processes: int | None = None, platform_kind: str = "local") -> Any:
    """Everything checked before anything starts: the profile, every experiment, and (locally)
    that every fault primitive the experiments use can run on this machine."""
    from harness.chaos.control import primitives_needed
    from harness.chaos.runner import check_experiment, load_experiment_file

    plan = plan_load(
        suite.profile, suite.compress, suite.warmup_s + suite.duration_s, suite.start_hour,
        seed=suite.seed, processes=processes or suite.processes,
    )  # fmt: skip
    for scheduled in suite.experiments:
        experiment = load_experiment_file(scheduled.path)
        try:
            check_experiment(
                experiment, {**scheduled.configuration, CONFIG_KEYS["compress"]: plan.compress}
            )
        except ConfigError as exc:
            raise ConfigError(f"{suite.source}: experiment {scheduled.name!r}: {exc}") from None
        if platform_kind == "local":  # on Kubernetes the cluster answers, once it is reached
            for primitive in primitives_needed(experiment):
                why = local_unsupported(primitive)
                if why:
                    raise ConfigError(
                        f"{suite.source}: experiment {scheduled.name!r} needs "
                        f"{primitive.replace('_', ' ')}, which cannot run here: {why}"
                    )
    return plan


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {"sagaquake": __version__, "python": host.python_version()}
    for dist in ("temporalio", "redis", "locust", "chaostoolkit-lib", "pandas"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return found


class _Load:
    """The load generator in a background thread (Chaos Toolkit wants the main thread)."""

    def __init__(self, state: RunState, **kwargs: Any) -> None:
        self.result: LoadResult | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._state = state
        self._kwargs = kwargs
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def _progress(self, p: LoadProgress) -> None:
        self._state.sent = p.orders
        self._state.target_so_far = p.target_so_far

    def _run(self) -> None:
        try:
            self.result = run_load(
                **self._kwargs, on_progress=self._progress, progress_every_s=2.0, stop=self._stop
            )
        except BaseException as exc:  # reported by the orchestrator
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def run_suite(
    suite: Suite,
    platform_kind: str,
    console: Console,
    *,
    processes: int | None = None,
    run_dir: Path | None = None,
) -> RunOutcome:
    plan = check_suite(suite, processes, platform_kind)
    run_dir = run_dir or new_run_dir(suite.name)
    update_run_json(
        run_dir,
        platform=platform_kind,
        suite=str(suite.source),
        suite_spec=suite.as_dict(),
        profile=suite.profile,
        compress=plan.compress,
        seed=suite.seed,
        drain_deadline_s=suite.drain_deadline_s,
        incomplete=True,  # until the run gets to its end
        versions=_versions(),
        machine={"platform": host.platform(), "cores": os.cpu_count(), "node": host.node()},
    )
    console.print(f"run folder: [bold]{run_dir}[/]")
    state = RunState(
        run_dir=str(run_dir), load_duration_s=plan.duration_s, target_rate=plan.target_rate
    )
    platform = make_platform(platform_kind, run_dir)
    phases: list[dict[str, Any]] = []
    failed_experiments: list[str] = []
    problem: str | None = None
    interrupted = False
    stack_up = False
    load: _Load | None = None
    monitor: LiveMonitor | None = None
    monitor_client: redis.Redis | None = None

    def phase(name: str) -> None:
        now = time.time()
        if phases:
            phases[-1]["ended_at"] = now
        phases.append({"name": name, "started_at": now})
        state.phase = name
        update_run_json(run_dir, phases=phases)

    with Progress(state, console) as progress:
        try:
            phase("up")
            platform.up(timeout_s=180)
            stack_up = True
            _ensure_empty(platform, progress)
            endpoints = platform.endpoints()
            update_run_json(run_dir, endpoints=endpoints.as_dict())
            monitor_client = connect(endpoints.redis_url, timeout_s=3.0)
            monitor = monitor_for(run_dir).start(
                monitor_client, on_update=lambda snap: setattr(state, "watch", snap)
            )

            phase("warm-up" if suite.warmup_s else "load")
            load = _Load(
                state, run_dir=run_dir, order_api=endpoints.order_api, profile=suite.profile,
                compress=plan.compress, duration_s=plan.duration_s, processes=plan.processes,
                seed=suite.seed, redis_url=endpoints.redis_url, start_hour=suite.start_hour,
            )  # fmt: skip
            load.start()
            state.load_started = time.time()
            chaos_start = state.load_started + suite.warmup_s
            if suite.warmup_s:
                _sleep_until(chaos_start, load)
                phase("load + chaos" if suite.experiments else "load")
            failed_experiments = _run_experiments(
                suite, platform_kind, run_dir, plan.compress, chaos_start, load, state, progress
            )
            phase("load")
            load.wait()
            if load.error is not None:
                raise load.error
            phase("drain")
            result = drain(
                endpoints,
                suite.drain_deadline_s,
                on_tick=lambda running, lag, waited: setattr(
                    state,
                    "note",
                    f"draining: {running} sagas running, projection lag {lag}, {waited:.0f} s",
                ),
            )
            state.note = ""
            if not result.drained:
                progress.log(
                    f"[yellow]drain deadline passed with {result.running} sagas still running[/]"
                )
            update_run_json(
                run_dir,
                drain={
                    "drained": result.drained,
                    "waited_s": result.waited_s,
                    "running": result.running,
                },
            )
        except KeyboardInterrupt:
            interrupted = True
            problem = "interrupted (Ctrl-C)"
            progress.log(
                f"[yellow]interrupted during {state.phase}: rolling back and tearing down…[/]"
            )
        except HarnessError as exc:
            problem = f"{state.phase}: {exc}"
            progress.log(f"[red]{problem}[/]")
        except Exception as exc:
            problem = f"{state.phase}: {type(exc).__name__}: {exc}"
            RunFolder(run_dir).harness_error.write_text(traceback.format_exc())
            progress.log(f"[red]{problem}[/] (traceback in {RunFolder(run_dir).harness_error})")
        finally:
            with _sigint_deferred(progress):
                phase("clean-up")
                if load is not None:
                    load.stop()
                if stack_up:
                    _roll_back_faults(platform_kind, run_dir, progress)
                    _snapshot(platform, run_dir, progress)
                if monitor is not None:
                    monitor.stop()
                if monitor_client is not None:
                    monitor_client.close()
                if stack_up or platform_kind == "local":
                    _tear_down(platform, run_dir, progress)
                phases[-1]["ended_at"] = time.time()
    incomplete = problem is not None
    update_run_json(
        run_dir, phases=phases, ended_at=time.time(), incomplete=incomplete, problem=problem
    )
    outcome = _judge(suite, run_dir, console, failed_experiments, incomplete, problem)
    if interrupted:
        outcome.exit_code = EXIT_INTERRUPTED
    return outcome


def _history_left(platform: Platform) -> str | None:
    """What an earlier run left in this stack's Redis or Temporal (None when it is empty)."""
    e = platform.endpoints()
    client = redis.Redis.from_url(e.redis_url, socket_timeout=10)
    try:
        events = int(client.xlen(keys.EVENTS))  # 0 when the stream does not exist
    finally:
        client.close()
    sagas = count_sagas(e, "WorkflowType='OrderSaga'")
    if sagas < 0:
        raise HarnessError(
            f"temporal at {e.temporal_address} did not answer: cannot tell whether the stack is empty"
        )
    if events or sagas:
        return f"{events} order events in Redis, {sagas} OrderSaga workflows in Temporal"
    return None


def _ensure_empty(platform: Platform, progress: Progress) -> None:
    """A run's history must be this run's alone: orders an earlier run (or a test) left would be
    phantoms to the verifier. A local stack is always new; a cluster may be re-used, so a stack
    with history is torn down (volumes included) and brought up again, once."""
    left = _history_left(platform)
    if left is None:
        return
    progress.log(f"[yellow]the stack holds an earlier history ({left}): starting it afresh[/]")
    platform.down()
    platform.up(timeout_s=300)
    left = _history_left(platform)
    if left is not None:
        raise HarnessError(f"the stack still holds an earlier history after a fresh start ({left})")


def _sleep_until(deadline: float, load: _Load) -> None:
    while time.time() < deadline and load.alive():
        time.sleep(min(0.2, max(deadline - time.time(), 0)))


def _run_experiments(
    suite: Suite, kind: str, run_dir: Path, compress: float, chaos_start: float, load: _Load,
    state: RunState, progress: Progress,
) -> list[str]:  # fmt: skip
    """Run each experiment at its time; return the names of those that failed."""
    from harness.chaos.runner import run_experiment_file

    failed = []
    for scheduled in suite.experiments:
        _sleep_until(chaos_start + scheduled.at_s, load)
        if not load.alive():
            progress.log(f"[yellow]the load ended before {scheduled.name} was due; not run[/]")
            failed.append(scheduled.name)
            continue
        slip = time.time() - (chaos_start + scheduled.at_s)
        state.active_fault = scheduled.name
        progress.log(
            f"experiment [bold]{scheduled.name}[/] starts"
            + (f" ({slip:.0f} s late)" if slip > 2 else "")
        )
        journal = run_experiment_file(
            scheduled.path,
            run_dir,
            kind,
            {**scheduled.configuration, CONFIG_KEYS["compress"]: compress},
        )
        if journal.get("status") == "interrupted":
            # Chaos Toolkit caught the Ctrl-C, rolled the experiment back and returned: the user
            # meant the whole run (a safeguard abort is "aborted", and the run goes on)
            state.experiments.append((scheduled.name, "interrupted"))
            raise KeyboardInterrupt
        status = (
            "completed"
            if journal.get("status") == "completed" and not journal.get("deviated")
            else str(journal.get("status"))
        )
        if journal.get("deviated"):
            status = "deviated"
        state.experiments.append((scheduled.name, status))
        state.active_fault = ""
        if status != "completed":
            failed.append(scheduled.name)
        progress.log(
            f"experiment [bold]{scheduled.name}[/]: [{'green' if status == 'completed' else 'red'}]{status}[/]"
        )
    return failed


class _sigint_deferred:
    """During clean-up a second Ctrl-C must not leave faults and processes behind: say so, go on."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def _handler(self, *_: object) -> None:
        self._progress.log(
            "[yellow]still cleaning up (rolling back faults, stopping processes); one moment…[/]"
        )

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _roll_back_faults(kind: str, run_dir: Path, progress: Progress) -> None:
    """Undo what an interrupted experiment may have left: frozen processes, network rules,
    memory limit, stopped services."""
    from harness.chaos.faults import close_open_windows
    from harness.chaos.rollbacks import (
        ensure_stack_ready,
        heal_network,
        restore_redis_maxmemory,
        resume_services,
    )

    configuration = {"sagaquake_platform": kind, "sagaquake_run_dir": str(run_dir)}
    # frozen and cut-off services first: a frozen Redis could not have its limit restored
    for step in (resume_services, heal_network, restore_redis_maxmemory, ensure_stack_ready):
        try:
            step(configuration=configuration)
        except Exception as exc:
            progress.log(f"[red]roll-back step {step.__name__} failed: {exc}[/]")
    try:
        close_open_windows(run_dir)
    except Exception as exc:
        progress.log(f"[red]could not close open fault windows: {exc}[/]")


def _snapshot(platform: Platform, run_dir: Path, progress: Progress) -> None:
    from harness.verify import export_snapshot

    e = platform.endpoints()
    try:
        export_snapshot(run_dir, e.redis_url, e.temporal_address, e.temporal_namespace)
    except Exception as exc:
        progress.log(f"[red]snapshot failed: {exc}; the verdict will say what is missing[/]")


def _tear_down(platform: Platform, run_dir: Path, progress: Progress) -> None:
    try:
        platform.collect_logs(RunFolder(run_dir).logs_dir)
    except Exception as exc:
        progress.log(f"[yellow]could not collect every log: {exc}[/]")
    try:
        platform.down()
    except Exception as exc:
        progress.log(f"[red]tear-down failed: {exc}; run `sagaquake down`[/]")


def _judge(
    suite: Suite,
    run_dir: Path,
    console: Console,
    failed_experiments: list[str],
    incomplete: bool,
    problem: str | None,
) -> RunOutcome:
    """Verify the snapshot (verdict.json, the verifier's alone), decide the gate with the
    suite's thresholds (gate.json), render the report; the exit code is the gate's."""
    from harness.report import render_report
    from harness.verify import render_summary, verify_run, write_verdict

    verdict = verify_run(run_dir)
    write_verdict(run_dir, verdict)
    summary = load_summary(run_dir)
    results = evaluate(suite.thresholds, metrics_from(verdict.to_dict(), summary.as_dict()))
    gate = decide(verdict.status, results, failed_experiments, incomplete, problem, suite.name)
    write_gate(run_dir, gate)
    try:
        paths = render_report(run_dir)
        report_line = f"report: [bold]{paths.html}[/]"
    except Exception as exc:
        report_line = f"[red]report could not be rendered: {exc}[/]"
    render_summary(verdict, console)
    failed_thresholds = [r for r in results if not r.ok]
    for r in failed_thresholds:
        console.print(f"[red]threshold failed:[/] {r.threshold.spec} (measured {_fmt(r.value)})")
    for name in failed_experiments:
        console.print(f"[red]experiment failed:[/] {name} (see {RunFolder.journal_rel(name)})")
    if problem:
        console.print(f"[yellow]run incomplete:[/] {problem}")
    console.print(report_line)
    word = {"pass": "[bold green]PASS[/]", "fail": "[bold red]FAIL[/]"}
    console.print(f"gate: {word.get(gate.status, '[bold yellow]UNKNOWN[/]')}  ({run_dir})")
    return RunOutcome(
        run_dir, gate.exit_code, verdict.ok, failed_thresholds, failed_experiments, incomplete,
        problem,
    )  # fmt: skip


def _fmt(value: float | None) -> str:
    return "not measured" if value is None else f"{value:g}"
