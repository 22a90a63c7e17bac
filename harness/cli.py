"""The `sagaquake` command. Every flag also reads an environment variable (shown in --help).

Errors the user can act on (HarnessError) print one or two lines and exit with their code;
Ctrl-C exits 130 after the command's own clean-up has run.
"""

from __future__ import annotations

import argparse
import json
import os
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

    for register in _extensions():
        register(sub, commands)
    return parser, commands


def _extensions() -> list[Callable[[argparse._SubParsersAction, dict[str, Command]], None]]:  # type: ignore[type-arg]
    """Commands that live beside their layer (load, chaos, verify, report, run)."""
    return []


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
