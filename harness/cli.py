"""The `sagaquake` command. Every flag also reads an environment variable (shown in --help).

Errors the user can act on (HarnessError) print one or two lines and exit with their code;
Ctrl-C exits 130 after the command's own clean-up has run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import __version__
from harness.errors import HarnessError, StackNotRunningError
from harness.platforms import attach
from harness.platforms.local import LocalPlatform, clean_stale_stack
from harness.runs import new_run_dir
from harness.settings import LocalOptions

__all__ = ["main"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _flag(
    parser: argparse.ArgumentParser, *names: str, env: str, default: object = None, **kw: object
) -> None:
    """A flag whose default comes from the environment variable `env`."""
    help_text = str(kw.pop("help", ""))
    value = os.environ.get(env, default)
    parser.add_argument(*names, default=value, help=f"{help_text} [env {env}]", **kw)  # type: ignore[arg-type]


# -- up / down / status -----------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    options = LocalOptions.from_env()
    run_dir = Path(args.run_dir) if args.run_dir else new_run_dir("stack")
    run_dir.mkdir(parents=True, exist_ok=True)
    replicas = {
        "order-service": int(args.order_replicas),
        "payment-service": int(args.payment_replicas),
        "saga-worker": int(args.worker_replicas),
    }
    platform = LocalPlatform(run_dir, options=options, replicas=replicas)
    note = clean_stale_stack()
    if note:
        console.print(f"[yellow]{note}[/]")
    with console.status("starting redis, temporal and the services…"):
        platform.up(timeout_s=float(args.timeout))
    e = platform.endpoints()
    console.print("[bold green]stack is up[/] (every service ready)")
    rows = [
        ("order API", e.order_api),
        ("Temporal Web UI", e.temporal_ui),
        ("Temporal", e.temporal_address),
        ("Redis", e.redis_url),
        ("logs", str(platform.logs_dir)),
        ("run folder", str(run_dir)),
    ]
    for name, value in rows:
        console.print(f"  {name:<16} {value}")
    console.print("stop it with [bold]sagaquake down[/]")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    try:
        platform = LocalPlatform.attach()
    except StackNotRunningError:
        note = clean_stale_stack()
        console.print(note or "no stack is running")
        return 0
    with console.status("stopping every process…"):
        platform.down()
    console.print(f"stack stopped; its logs stay in {platform.logs_dir}")
    return 0


def _uptime(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def cmd_status(args: argparse.Namespace) -> int:
    platform = attach(args.platform)
    replicas = platform.status()
    endpoints = platform.endpoints()
    if args.json:
        payload = {
            "platform": platform.name,
            "run_dir": str(platform.run_dir),
            "ready": all(r.ready for r in replicas),
            "endpoints": endpoints.as_dict(),
            "processes": [r.as_dict() for r in replicas],
        }
        print(json.dumps(payload, indent=2))
        return 0
    per_service: dict[str, int] = {}
    for r in replicas:
        per_service[r.service] = per_service.get(r.service, 0) + 1
    table = Table(title=f"sagaquake stack ({platform.name}) — {platform.run_dir}")
    for column in ("process", "replicas", "pid", "state", "uptime", "restarts", "ready"):
        table.add_column(column)
    seen: dict[str, int] = {}
    for r in replicas:
        seen[r.service] = seen.get(r.service, 0) + 1
        table.add_row(
            r.name,
            f"{seen[r.service]}/{per_service[r.service]}",
            str(r.pid or "-"),
            r.state,
            _uptime(r.uptime_s) if r.uptime_s else "-",
            str(r.restarts),
            "[green]yes[/]" if r.ready else "[red]no[/]",
        )
    console.print(table)
    console.print(
        f"order API {endpoints.order_api}   Temporal UI {endpoints.temporal_ui}   Redis {endpoints.redis_url}"
    )
    return 0 if all(r.ready for r in replicas) else 1


# -- load / chaos / verify / report / run -----------------------------------------------------


def cmd_load(args: argparse.Namespace) -> int:
    from harness.load.cli import load_command

    try:
        platform = attach(args.platform)
    except StackNotRunningError:
        if not args.web or args.platform != "local":
            raise
        console.print(
            "no stack is running: starting one for the web UI (it stays up; `sagaquake down` stops it)"
        )
        cmd_up(
            argparse.Namespace(
                run_dir=None,
                order_replicas="2",
                payment_replicas="2",
                worker_replicas="2",
                timeout="180",
            )
        )
        platform = attach(args.platform)
    run_dir = Path(args.run_dir) if args.run_dir else platform.run_dir
    return load_command(args, platform.endpoints(), run_dir)


def cmd_chaos(args: argparse.Namespace) -> int:
    from harness.chaos.runner import chaos_command

    return chaos_command(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.verify import LiveSource, exit_code, render_summary, verify_run, write_verdict

    live = None
    run_dir = Path(args.run_dir) if args.run_dir else None
    if args.live:
        platform = attach(args.platform)
        e = platform.endpoints()
        live = LiveSource(e.redis_url, e.temporal_address, e.temporal_namespace)
        run_dir = run_dir or platform.run_dir
    if run_dir is None:
        raise HarnessError(
            "verify needs a run folder (e.g. reports/latest), or --live for the running stack"
        )
    verdict = verify_run(run_dir, live=live, replay_against=args.replay_against or None)
    path = write_verdict(run_dir, verdict)
    render_summary(verdict, console)
    console.print(f"verdict: {path}")
    return exit_code(verdict)


def cmd_reprocess(args: argparse.Namespace) -> int:
    from harness.reprocess import request_reprocess, wait_reprocess

    platform = attach(args.platform)
    run_dir = Path(args.run_dir) if args.run_dir else platform.run_dir
    e = platform.endpoints()
    request = request_reprocess(
        e, run_dir, correction_id=args.correction_id or None, from_id=args.from_id,
        to_id=args.to_id, percent_bp=int(args.percent_bp), batch_size=int(args.batch_size),
        batches_per_run=int(args.batches_per_run),
    )  # fmt: skip
    console.print(
        f"reprocess [bold]{request.workflow_id}[/]: orders completed in "
        f"[{request.from_}, {request.to}] of orders:events, {request.percent_bp} bp refunded "
        f"(recorded in {run_dir / 'history' / 'reprocess.jsonl'})"
    )
    if _truthy(args.no_wait):
        return 0
    with console.status("reprocessing…"):
        status = wait_reprocess(e, request.workflow_id, float(args.timeout))
    totals = (status.get("result") or {}).get("totals") or {}
    console.print(
        f"{status['last_status'] or 'unknown'} after {status['runs']} run(s): "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
    )
    return 0 if status["last_status"] == "COMPLETED" else 1


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render_report

    paths = render_report(Path(args.run_dir))
    console.print(paths.line)
    console.print(f"report: {paths.html}\nsummary: {paths.summary}\njunit: {paths.junit}")
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.orchestrator import run_suite
    from harness.run.suite import load_suite

    suite = load_suite(args.suite)
    kind = args.platform or suite.platform or "local"
    # a cancelled CI job sends SIGTERM: clean up as for Ctrl-C (roll back, tear down, report)
    signal.signal(signal.SIGTERM, _terminate)
    outcome = run_suite(
        suite, kind, console, processes=int(args.processes) if args.processes else None
    )
    return outcome.exit_code


def _truthy(value: object) -> bool:
    """A flag that may come from its environment variable as text: 1, true, yes, on."""
    return value is True or str(value or "").strip().lower() in ("1", "true", "yes", "on")


def cmd_selftest(args: argparse.Namespace) -> int:
    from harness.selftest import SelftestOptions, list_catalogue, run_selftest

    only = [n.strip() for n in str(args.only or "").split(",") if n.strip()]
    options = SelftestOptions(
        only=only,
        quick=_truthy(args.quick),
        control=not _truthy(args.no_control),
        keep_copies=_truthy(args.keep_copies),
        catalogue=Path(args.catalogue) if args.catalogue else None,
    )
    if _truthy(args.list):
        return list_catalogue(options, console)
    signal.signal(signal.SIGTERM, _terminate)  # a cancelled CI job: clean up as for Ctrl-C
    return run_selftest(options, console)


# -- wiring -----------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace], int]


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(
        prog="sagaquake",
        description="Chaos and load testing for event-sourced order sagas (Temporal + Redis Streams).",
    )
    parser.add_argument("--version", action="version", version=f"sagaquake {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    commands: dict[str, Command] = {}

    up = sub.add_parser(
        "up", help="start the whole stack locally and wait until every service is ready"
    )
    _flag(
        up,
        "--run-dir",
        env="SAGAQUAKE_RUN_DIR",
        help="run folder (default: a new one under reports/)",
    )
    _flag(
        up,
        "--order-replicas",
        env="SAGAQUAKE_ORDER_REPLICAS",
        default="2",
        help="order-service replicas",
    )
    _flag(
        up,
        "--payment-replicas",
        env="SAGAQUAKE_PAYMENT_REPLICAS",
        default="2",
        help="payment-service replicas",
    )
    _flag(
        up,
        "--worker-replicas",
        env="SAGAQUAKE_WORKER_REPLICAS",
        default="2",
        help="saga-worker replicas",
    )
    _flag(
        up,
        "--timeout",
        env="SAGAQUAKE_READY_TIMEOUT_S",
        default="120",
        help="seconds to wait for readiness",
    )
    commands["up"] = cmd_up

    sub.add_parser("down", help="stop everything the harness started (also a stale stack)")
    commands["down"] = cmd_down

    status = sub.add_parser("status", help="every process: replicas, pid, uptime, restarts, ready")
    status.add_argument("--json", action="store_true", help="machine-readable, with every endpoint")
    _flag(
        status,
        "--platform",
        env="SAGAQUAKE_PLATFORM",
        default="local",
        choices=["local", "k8s"],
        help="platform",
    )
    commands["status"] = cmd_status

    from harness.chaos.runner import add_chaos_arguments
    from harness.load.cli import add_load_arguments

    load = sub.add_parser(
        "load", help="drive the running stack with a load profile (headless or web UI)"
    )
    add_load_arguments(load)
    _flag(
        load,
        "--platform",
        env="SAGAQUAKE_PLATFORM",
        default="local",
        choices=["local", "k8s"],
        help="platform",
    )
    _flag(
        load,
        "--run-dir",
        env="SAGAQUAKE_RUN_DIR",
        help="run folder for the ledger and Locust files (default: the stack's)",
    )
    commands["load"] = cmd_load

    chaos = sub.add_parser("chaos", help="run a Chaos Toolkit experiment against the running stack")
    add_chaos_arguments(chaos)
    commands["chaos"] = cmd_chaos

    verify = sub.add_parser("verify", help="prove the invariants from a run folder's history")
    verify.add_argument("run_dir", nargs="?", help="the run folder (e.g. reports/latest)")
    verify.add_argument(
        "--live", action="store_true", help="read the running stack instead of the snapshot"
    )
    _flag(
        verify,
        "--platform",
        env="SAGAQUAKE_PLATFORM",
        default="local",
        choices=["local", "k8s"],
        help="platform",
    )
    _flag(
        verify,
        "--replay-against",
        env="SAGAQUAKE_REPLAY_AGAINST",
        metavar="REF_OR_PATH",
        help="replay the run's workflow histories on this code instead of the current one: a git "
        "ref (a branch, tag or commit) or a folder holding system_under_test/",
    )
    commands["verify"] = cmd_verify

    reprocess = sub.add_parser(
        "reprocess",
        help="correct every order completed in a range of orders:events (ReprocessOrders)",
    )
    _flag(reprocess, "--from", dest="from_id", env="SAGAQUAKE_REPROCESS_FROM", default="-",
          help="first stream id of the range ('-': the start)")  # fmt: skip
    _flag(reprocess, "--to", dest="to_id", env="SAGAQUAKE_REPROCESS_TO", default="+",
          help="last stream id of the range ('+': the end of the stream now)")  # fmt: skip
    _flag(reprocess, "--percent-bp", env="SAGAQUAKE_REPROCESS_PERCENT_BP", default="500",
          help="the price correction: basis points of each order's amount refunded")  # fmt: skip
    _flag(reprocess, "--correction-id", env="SAGAQUAKE_REPROCESS_CORRECTION_ID",
          help="names the correction (it applies once); default c<epoch ms>")  # fmt: skip
    _flag(reprocess, "--batch-size", env="SAGAQUAKE_REPROCESS_BATCH_SIZE", default="200",
          help="orders per batch")  # fmt: skip
    _flag(reprocess, "--batches-per-run", env="SAGAQUAKE_REPROCESS_BATCHES_PER_RUN",
          default="20", help="batches before the workflow continues as new")  # fmt: skip
    _flag(reprocess, "--timeout", env="SAGAQUAKE_REPROCESS_TIMEOUT_S", default="600",
          help="seconds to wait for it")  # fmt: skip
    _flag(reprocess, "--no-wait", env="SAGAQUAKE_REPROCESS_NO_WAIT", action="store_true",
          help="start it and return")  # fmt: skip
    _flag(reprocess, "--run-dir", env="SAGAQUAKE_RUN_DIR",
          help="run folder where the request is recorded (default: the stack's)")  # fmt: skip
    _flag(reprocess, "--platform", env="SAGAQUAKE_PLATFORM", default="local",
          choices=["local", "k8s"], help="platform")  # fmt: skip
    commands["reprocess"] = cmd_reprocess

    report = sub.add_parser(
        "report", help="render report.html, summary.md and junit.xml for a run folder"
    )
    report.add_argument("run_dir", help="the run folder (e.g. reports/latest)")
    commands["report"] = cmd_report

    run = sub.add_parser(
        "run", help="the whole run: up, load, chaos, drain, verify, report, down; exit code = gate"
    )
    _flag(
        run,
        "--suite",
        env="SAGAQUAKE_SUITE",
        default="default",
        help="suite file or name in scenarios/suites",
    )
    _flag(
        run,
        "--platform",
        env="SAGAQUAKE_PLATFORM",
        choices=["local", "k8s"],
        help="platform (default: the suite's, else local)",
    )
    _flag(
        run,
        "--processes",
        env="SAGAQUAKE_LOAD_PROCESSES",
        help="Locust processes (default: the suite's)",
    )
    commands["run"] = cmd_run

    selftest = sub.add_parser(
        "selftest",
        help="plant each mutation of scenarios/mutations in a copy of the system; the gate must catch it",
    )
    _flag(
        selftest,
        "--only",
        env="SAGAQUAKE_SELFTEST_ONLY",
        metavar="NAME",
        help="run only this mutation (several: comma-separated)",
    )
    _flag(
        selftest,
        "--quick",
        env="SAGAQUAKE_SELFTEST_QUICK",
        action="store_true",
        help="only the mutations marked quick (the CI subset)",
    )
    _flag(
        selftest,
        "--no-control",
        env="SAGAQUAKE_SELFTEST_NO_CONTROL",
        action="store_true",
        help="skip the unmutated control runs (then the exit code is 2 at best)",
    )
    _flag(
        selftest,
        "--keep-copies",
        env="SAGAQUAKE_SELFTEST_KEEP_COPIES",
        action="store_true",
        help="keep the mutated copies of the project (in the temp folder)",
    )
    _flag(
        selftest,
        "--catalogue",
        env="SAGAQUAKE_SELFTEST_CATALOGUE",
        help="folder of mutation files (default: scenarios/mutations)",
    )
    _flag(
        selftest,
        "--list",
        env="SAGAQUAKE_SELFTEST_LIST",
        action="store_true",
        help="list the catalogue and exit",
    )
    commands["selftest"] = cmd_selftest
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
