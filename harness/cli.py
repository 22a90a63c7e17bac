"""The `sagaquake` command: every verb of the harness. Every flag also reads an environment
variable (shown in --help); every verb that touches a stack takes `--platform local|k8s`.

Errors the user can act on (HarnessError, and a flag argparse refuses) print one line,
`error: …`, and exit with their code (3); Ctrl-C exits 130 after the command's own clean-up.
A command checks its own inputs (a profile, a number, a duration) before it looks for a stack.
The `python -m` forms (`harness.cli`, `harness.report`, `harness.platforms.kubernetes`,
`harness.chaos.runner`, `harness.verify.histories`) call `main` too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from harness import __version__, stack_cli
from harness.errors import ConfigError, HarnessError, StackNotRunningError
from harness.flags import env_flag as _flag
from harness.flags import whole as _whole
from harness.platforms import PLATFORMS, attach
from harness.runs import RunFolder
from harness.settings import env_text

__all__ = ["build_parser", "main"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


# -- flags ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the one error format of the command."""

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):
            # argparse reads a value that starts with '-' (e.g. "--duration -5m") as a flag
            message += "; a value starting with '-' is given as --flag=VALUE"
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def _only_on(platform: str, *, switch: bool = False) -> type[argparse.Action]:
    """An action that stores the value and remembers that the flag, which means something on
    `platform` only, was given on the command line (a value from its variable is not checked)."""

    class OnlyOn(argparse.Action):
        def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
            super().__init__(option_strings, dest, **({"nargs": 0, **kw} if switch else kw))

        def __call__(
            self, parser: Any, namespace: Any, values: Any, option_string: str | None = None
        ) -> None:
            setattr(namespace, self.dest, True if switch else values)
            given = dict(getattr(namespace, "only_on", None) or {})
            given[option_string or self.dest] = platform
            namespace.only_on = given

    return OnlyOn


def _seconds(text: str) -> float:
    """A duration longer than 0: 90, 90s, 10m, 1h30m."""
    from harness.durations import parse_duration

    try:
        return parse_duration(text, "duration", positive=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("duration: ")) from None


def _folder(text: str) -> str:
    """A run folder: one that exists, or a path where one can be made (not a file)."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file: give a folder (made when missing)")
    return text


def _key_value(text: str) -> tuple[str, str]:
    """KEY=VALUE."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _context_flag(parser: argparse.ArgumentParser) -> None:
    _flag(parser, "--context", env="SAGAQUAKE_K8S_CONTEXT", action=_only_on("k8s"),
          help="with --platform k8s: the kubeconfig context (default: the current one)")  # fmt: skip


def _platform_flags(parser: argparse.ArgumentParser, *, default: str | None = "local") -> None:
    """`--platform` and `--context`: the same two on every verb that touches a stack."""
    where = f"default {default}" if default else "default: the suite's, else local"
    _flag(parser, "--platform", env="SAGAQUAKE_PLATFORM", default=default, choices=PLATFORMS,
          help=f"where the stack runs: local (supervised processes) or k8s ({where})")  # fmt: skip
    _context_flag(parser)


def _k8s_stack_flags(parser: argparse.ArgumentParser | Any) -> None:
    """What `up --platform k8s` applies (and `render` prints)."""
    from harness.platforms.kubernetes.manifests import DEFAULT_IMAGE, OVERLAYS

    k8s = _only_on("k8s")
    _flag(parser, "--overlay", env="SAGAQUAKE_K8S_OVERLAY", choices=OVERLAYS, action=k8s,
          help="the k8s/overlays/ folder to apply (default: from the context's name)")  # fmt: skip
    _flag(parser, "--image", env="SAGAQUAKE_K8S_IMAGE", action=k8s,
          help=f"the image of every container (default {DEFAULT_IMAGE})")  # fmt: skip
    parser.add_argument(
        "--pod-exec", action=_only_on("k8s", switch=True), default=None,
        help="also let the chaos identity exec into pods, which pause and kills mid-request "
        "need (k8s/base/chaos-rbac-exec.yaml) [env SAGAQUAKE_K8S_POD_EXEC]",
    )  # fmt: skip


def _check_platform(args: argparse.Namespace) -> None:
    """The platform named (by flag or variable) is one we know, and no flag of the other one
    was given."""
    kind = getattr(args, "platform", None)
    if kind == "kubernetes":
        kind = args.platform = "k8s"
    if kind is not None and kind not in PLATFORMS:
        raise ConfigError(
            f"unknown platform {kind!r} (--platform or SAGAQUAKE_PLATFORM); use one of: "
            + ", ".join(PLATFORMS)
        )
    for flag, only in (getattr(args, "only_on", None) or {}).items():
        if kind is not None and kind != only:
            raise ConfigError(
                f"{flag} is for --platform {only}, and this command runs on {kind}: "
                f"drop it, or add --platform {only}"
            )
    if getattr(args, "context", None):  # what chaos, load and run attach to in turn
        os.environ["SAGAQUAKE_K8S_CONTEXT"] = args.context


# -- the verbs --------------------------------------------------------------------------------

# up, down, status, endpoints, heal, render are in harness/stack_cli.py, load's work in
# harness/load/cli.py, chaos's in harness/chaos/runner.py.

Command = Callable[[argparse.Namespace], int]


def _stack(command: Callable[[argparse.Namespace, Console], int]) -> Command:
    return lambda args: command(args, console)


def cmd_load(args: argparse.Namespace) -> int:
    from harness.durations import parse_duration
    from harness.load.cli import load_command
    from harness.load.runner import plan_load

    duration_s = (
        parse_duration(args.duration, "--duration", positive=True) if args.duration else None
    )
    plan_load(  # the profile and every number, before the stack is looked for
        args.profile, compress=args.compress, duration_s=duration_s, start_hour=args.start_hour,
        arrivals=args.arrivals, seed=args.seed, processes=args.processes,
    )  # fmt: skip
    try:
        platform = attach(args.platform)
    except StackNotRunningError:
        if not args.web or args.platform != "local":
            raise
        console.print(
            "no stack is running: starting one for the web UI (it stays up; `sagaquake down` stops it)"
        )
        replicas = {"order-service": 2, "payment-service": 2, "saga-worker": 2}
        stack_cli.start_local(console, None, replicas, 180.0)
        platform = attach(args.platform)
    run_dir = Path(args.run_dir) if args.run_dir else platform.run_dir
    return load_command(args, platform.endpoints(), run_dir)


def cmd_chaos(args: argparse.Namespace) -> int:
    from harness.chaos.runner import chaos_command

    return chaos_command(args)


def _show_histories(args: argparse.Namespace) -> int:
    """`verify --show-histories`: a run folder's workflow histories, as Temporal's JSON."""
    from harness.verify import check_inputs
    from harness.verify.histories import print_histories

    if args.live:
        raise ConfigError("--show-histories reads a run folder's snapshot: drop --live")
    if not args.run_dir:
        raise ConfigError("--show-histories needs a run folder (e.g. reports/latest)")
    check_inputs(args.run_dir)
    print_histories(Path(args.run_dir), args.show_histories or None, sys.stdout)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.verify import (
        LiveSource,
        check_inputs,
        exit_code,
        render_summary,
        verify_run,
        write_verdict,
    )

    if args.show_histories is not None:
        return _show_histories(args)
    folder = Path(args.run_dir) if args.run_dir else None
    check_inputs(folder, args.replay_against or None)  # before looking for a stack
    live = None
    if args.live:
        platform = attach(args.platform)
        e = platform.endpoints()
        live = LiveSource(e.redis_url, e.temporal_address, e.temporal_namespace)
        run_dir = folder or platform.run_dir
    elif folder is not None:
        run_dir = folder
    else:
        raise HarnessError(
            "verify needs a run folder (e.g. reports/latest), or --live for the running stack"
        )
    verdict = verify_run(run_dir, live=live, replay_against=args.replay_against or None)
    path = write_verdict(run_dir, verdict)
    render_summary(verdict, console)
    console.print(f"verdict: {path}")
    return exit_code(verdict)


def cmd_reprocess(args: argparse.Namespace) -> int:
    from harness.reprocess import check_request, request_reprocess, wait_reprocess

    check_request(
        args.from_id, args.to_id, args.percent_bp, args.batch_size, args.batches_per_run,
        args.correction_id or None,
    )  # fmt: skip
    platform = attach(args.platform)
    run_dir = Path(args.run_dir) if args.run_dir else platform.run_dir
    e = platform.endpoints()
    request = request_reprocess(
        e, run_dir, correction_id=args.correction_id or None, from_id=args.from_id,
        to_id=args.to_id, percent_bp=args.percent_bp, batch_size=args.batch_size,
        batches_per_run=args.batches_per_run,
    )  # fmt: skip
    console.print(
        f"reprocess [bold]{request.workflow_id}[/]: orders completed in "
        f"[{request.from_}, {request.to}] of orders:events, {request.percent_bp} bp refunded "
        f"(recorded in {RunFolder(run_dir).reprocess})"
    )
    if args.no_wait:
        return 0
    with console.status("reprocessing…"):
        status = wait_reprocess(e, request.workflow_id, args.timeout)
    totals = (status.get("result") or {}).get("totals") or {}
    console.print(
        f"{status['last_status'] or 'unknown'} after {status['runs']} run(s): "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
    )
    return 0 if status["last_status"] == "COMPLETED" else 1


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render_report

    paths = render_report(Path(args.run_dir))
    console.print(f"{paths.status}: {paths.line}", markup=False, soft_wrap=True)
    console.print(
        f"report: {paths.html}\nsummary: {paths.summary}\njunit: {paths.junit}",
        markup=False,
        soft_wrap=True,
    )
    return 1 if args.strict and paths.status != "PASS" else 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.orchestrator import run_suite
    from harness.run.suite import load_suite

    suite = load_suite(args.suite)
    kind = args.platform or suite.platform or "local"
    # a cancelled CI job sends SIGTERM: clean up as for Ctrl-C (roll back, tear down, report)
    signal.signal(signal.SIGTERM, _terminate)
    outcome = run_suite(suite, kind, console, processes=args.processes)
    return outcome.exit_code


def cmd_selftest(args: argparse.Namespace) -> int:
    from harness.selftest import SelftestOptions, list_catalogue, run_selftest

    only = [n.strip() for n in str(args.only or "").split(",") if n.strip()]
    if args.only is not None and not only:  # else every mutation would run
        raise ConfigError(f"--only {args.only!r} names no mutation: give names, comma-separated")
    options = SelftestOptions(
        only=only,
        quick=args.quick,
        control=not args.no_control,
        keep_copies=args.keep_copies,
        catalogue=Path(args.catalogue) if args.catalogue else None,
    )
    if args.list:
        return list_catalogue(options, console)
    signal.signal(signal.SIGTERM, _terminate)  # a cancelled CI job: clean up as for Ctrl-C
    return run_selftest(options, console)


# -- wiring -----------------------------------------------------------------------------------


def _stack_verbs(sub: Any, commands: dict[str, Command]) -> None:
    """up, down, status, endpoints, heal, render."""
    from harness.platforms.local_config import MAX_REPLICAS

    up = sub.add_parser(
        "up",
        help="start the whole stack (here, or on Kubernetes with --platform k8s) and wait until "
        "every service is ready",
    )
    _platform_flags(up)
    _flag(up, "--timeout", env="SAGAQUAKE_READY_TIMEOUT_S", type=_seconds,
          help="how long to wait for readiness (default 120s locally, 300s on k8s)")  # fmt: skip
    local = up.add_argument_group("--platform local")
    only_local = _only_on("local")
    _flag(local, "--run-dir", env="SAGAQUAKE_RUN_DIR", type=_folder, action=only_local,
          help="run folder (default: a new one under reports/)")  # fmt: skip
    replicas = _whole(1, MAX_REPLICAS)
    for service, env in (("order", "ORDER"), ("payment", "PAYMENT"), ("worker", "WORKER")):
        name = "saga-worker" if service == "worker" else f"{service}-service"
        _flag(local, f"--{service}-replicas", env=f"SAGAQUAKE_{env}_REPLICAS", default="2",
              type=replicas, action=only_local, help=f"{name} replicas")  # fmt: skip
    _k8s_stack_flags(up.add_argument_group("--platform k8s"))
    commands["up"] = _stack(stack_cli.up_command)

    down = sub.add_parser(
        "down",
        help="stop everything the harness started (also a stale stack; on k8s the namespace)",
    )
    _platform_flags(down)
    commands["down"] = _stack(stack_cli.down_command)

    status = sub.add_parser("status", help="every process: replicas, pid, uptime, restarts, ready")
    status.add_argument("--json", action="store_true", help="machine-readable, with every endpoint")
    _platform_flags(status)
    commands["status"] = _stack(stack_cli.status_command)

    endpoints = sub.add_parser("endpoints", help="where the running stack answers, as JSON")
    _platform_flags(endpoints)
    commands["endpoints"] = _stack(stack_cli.endpoints_command)

    heal = sub.add_parser(
        "heal",
        help="undo every fault a run left (partitions, lost replies, frozen replicas), as JSON",
    )
    _platform_flags(heal)
    commands["heal"] = _stack(stack_cli.heal_command)

    render = sub.add_parser(
        "render",
        help="print the Kubernetes manifests `up --platform k8s` applies (touches nothing)",
    )
    _context_flag(render)
    _k8s_stack_flags(render)
    commands["render"] = _stack(stack_cli.render_command)


def _work_verbs(sub: Any, commands: dict[str, Command]) -> None:
    """load, chaos, reprocess."""
    from harness.chaos.runner import list_experiments
    from harness.load.cli import add_load_arguments

    load = sub.add_parser(
        "load", help="drive the running stack with a load profile (headless or web UI)"
    )
    add_load_arguments(load)
    _platform_flags(load)
    _flag(load, "--run-dir", env="SAGAQUAKE_RUN_DIR", type=_folder,
          help="run folder for the ledger and Locust files (default: the stack's)")  # fmt: skip
    commands["load"] = cmd_load

    chaos = sub.add_parser("chaos", help="run a Chaos Toolkit experiment against the running stack")
    chaos.add_argument(
        "experiment", nargs="?",
        help=f"an experiment file, or a name in scenarios/chaos ({', '.join(list_experiments())})",
    )  # fmt: skip
    _platform_flags(chaos)
    _flag(chaos, "--run-dir", env="SAGAQUAKE_RUN_DIR", type=_folder,
          help="run folder for the journal and fault windows (default: the stack's)")  # fmt: skip
    _flag(chaos, "--compress", env="SAGAQUAKE_COMPRESS",
          help="production seconds per wall second for fault durations (default: run.json's, "
          "else 1)")  # fmt: skip
    chaos.add_argument("--var", action="append", default=[], type=_key_value, metavar="KEY=VALUE",
                       help="set a configuration key of the experiment (repeatable)")  # fmt: skip
    chaos.add_argument("--validate", action="store_true",
                       help="only check the experiment file, run nothing")  # fmt: skip
    chaos.add_argument(
        "--list", action="store_true", help="list the experiments of scenarios/chaos"
    )
    commands["chaos"] = cmd_chaos

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
          default="20",
          help="batches before the workflow continues as new")  # fmt: skip
    _flag(reprocess, "--timeout", env="SAGAQUAKE_REPROCESS_TIMEOUT_S", default="600",
          type=_seconds, help="how long to wait for it")  # fmt: skip
    _flag(reprocess, "--no-wait", env="SAGAQUAKE_REPROCESS_NO_WAIT", action="store_true",
          help="start it and return")  # fmt: skip
    _flag(reprocess, "--run-dir", env="SAGAQUAKE_RUN_DIR", type=_folder,
          help="run folder where the request is recorded (default: the stack's)")  # fmt: skip
    _platform_flags(reprocess)
    commands["reprocess"] = cmd_reprocess


def _proof_verbs(sub: Any, commands: dict[str, Command]) -> None:
    """verify, report, run, selftest."""
    verify = sub.add_parser("verify", help="prove the invariants from a run folder's history")
    verify.add_argument("run_dir", nargs="?", help="the run folder (e.g. reports/latest)")
    verify.add_argument(
        "--live", action="store_true", help="read the running stack instead of the snapshot"
    )
    _platform_flags(verify)
    _flag(
        verify,
        "--replay-against",
        env="SAGAQUAKE_REPLAY_AGAINST",
        metavar="REF_OR_PATH",
        help="replay the run's workflow histories on this code instead of the current one: a git "
        "ref (a branch, tag or commit) or a folder holding system_under_test/",
    )
    verify.add_argument(
        "--show-histories", nargs="?", const="", metavar="WORKFLOW_ID",
        help="print the run folder's saga workflow histories (only WORKFLOW_ID's if given) as "
        "Temporal's JSON, and verify nothing",
    )  # fmt: skip
    commands["verify"] = cmd_verify

    report = sub.add_parser(
        "report", help="render report.html, summary.md and junit.xml for a run folder"
    )
    report.add_argument(
        "run_dir", nargs="?", default=env_text("SAGAQUAKE_RUN_DIR") or "reports/latest",
        help="the run folder (default reports/latest) [env SAGAQUAKE_RUN_DIR]",
    )  # fmt: skip
    _flag(report, "--strict", env="SAGAQUAKE_REPORT_STRICT", action="store_true",
          help="exit 1 unless the verdict is PASS (by default the exit code says whether the "
          "report was written, whatever the verdict)")  # fmt: skip
    commands["report"] = cmd_report

    run = sub.add_parser(
        "run", help="the whole run: up, load, chaos, drain, verify, report, down; exit code = gate"
    )
    _flag(run, "--suite", env="SAGAQUAKE_SUITE", default="default",
          help="suite file or name in scenarios/suites")  # fmt: skip
    _platform_flags(run, default=None)
    _flag(run, "--processes", env="SAGAQUAKE_PROCESSES",
          help="Locust processes (default: the suite's)")  # fmt: skip
    commands["run"] = cmd_run

    selftest = sub.add_parser(
        "selftest",
        help="plant each mutation of scenarios/mutations in a copy of the system; the gate must "
        "catch it (on the local platform)",
    )
    _flag(selftest, "--only", env="SAGAQUAKE_SELFTEST_ONLY", metavar="NAME",
          help="run only this mutation (several: comma-separated)")  # fmt: skip
    _flag(selftest, "--quick", env="SAGAQUAKE_SELFTEST_QUICK", action="store_true",
          help="only the mutations marked quick (the CI subset)")  # fmt: skip
    _flag(selftest, "--no-control", env="SAGAQUAKE_SELFTEST_NO_CONTROL", action="store_true",
          help="skip the unmutated control runs (then the exit code is 2 at best)")  # fmt: skip
    _flag(selftest, "--keep-copies", env="SAGAQUAKE_SELFTEST_KEEP_COPIES", action="store_true",
          help="keep the mutated copies of the project (in the temp folder)")  # fmt: skip
    _flag(selftest, "--catalogue", env="SAGAQUAKE_SELFTEST_CATALOGUE",
          help="folder of mutation files (default: scenarios/mutations)")  # fmt: skip
    _flag(selftest, "--list", env="SAGAQUAKE_SELFTEST_LIST", action="store_true",
          help="list the catalogue and exit")  # fmt: skip
    commands["selftest"] = cmd_selftest


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = _Parser(
        prog="sagaquake",
        description="Chaos and load testing for event-sourced order sagas (Temporal + Redis "
        "Streams). The stack: up, down, status, endpoints, heal, render. The work: load, chaos, "
        "reprocess. The proof: verify, report; run does it all, selftest proves the gate.",
    )
    parser.add_argument("--version", action="version", version=f"sagaquake {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)
    commands: dict[str, Command] = {}
    _stack_verbs(sub, commands)
    _work_verbs(sub, commands)
    _proof_verbs(sub, commands)
    return parser, commands


def _print_error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    try:
        parser, commands = build_parser()
        args = parser.parse_args(argv)
        _check_platform(args)
        return commands[args.command](args)
    except HarnessError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
