"""The stack verbs of `sagaquake`, on either platform: up, down, status, endpoints, heal, render.

harness/cli.py owns the command line (every flag, its variable, the one error format); it calls
these with the parsed arguments. Each returns the exit code; errors are HarnessErrors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from harness.errors import PlatformError, StackNotRunningError
from harness.platforms import attach
from harness.platforms.base import Endpoints
from harness.platforms.local import LocalPlatform, clean_stale_stack
from harness.runs import new_run_dir
from harness.settings import LocalOptions, LocalPorts, state_dir

if TYPE_CHECKING:
    from harness.platforms.kubernetes.platform import KubernetesPlatform

__all__ = [
    "UP_TIMEOUT_S",
    "down_command",
    "endpoints_command",
    "heal_command",
    "render_command",
    "start_local",
    "status_command",
    "up_command",
]

# seconds `up` waits for readiness when --timeout is not given: pods are pulled and scheduled
UP_TIMEOUT_S = {"local": 120.0, "k8s": 300.0}


def _kubernetes(args: argparse.Namespace) -> KubernetesPlatform:
    """The Kubernetes platform the flags name (what `up`, `down`, `heal` and `render` act on:
    they need no running stack, so they do not attach)."""
    from harness.platforms.kubernetes.platform import KubernetesPlatform

    return KubernetesPlatform(
        state_dir() / "k8s",
        context=getattr(args, "context", None),
        overlay=getattr(args, "overlay", None),
        image=getattr(args, "image", None),
        pod_exec=getattr(args, "pod_exec", None),
    )


def _print_endpoints(console: Console, e: Endpoints, extra: list[tuple[str, str]]) -> None:
    rows = [
        ("order API", e.order_api),
        ("Temporal Web UI", e.temporal_ui),
        ("Temporal", e.temporal_address),
        ("Redis", e.redis_url),
        *extra,
    ]
    for name, value in rows:
        console.print(f"  {name:<16} {value}", soft_wrap=True)


# -- up / down --------------------------------------------------------------------------------


def start_local(
    console: Console, run_dir: Path | None, replicas: dict[str, int], timeout_s: float
) -> LocalPlatform:
    """Start the local stack and say where everything is."""
    ports, options = LocalPorts.from_env(), LocalOptions.from_env()  # refused before a folder
    run_dir = run_dir or new_run_dir("stack")
    run_dir.mkdir(parents=True, exist_ok=True)
    platform = LocalPlatform(run_dir, ports=ports, options=options, replicas=replicas)
    note = clean_stale_stack()
    if note:
        console.print(f"[yellow]{note}[/]")
    with console.status("starting redis, temporal and the services…"):
        platform.up(timeout_s=timeout_s)
    console.print("[bold green]stack is up[/] (every service ready)")
    extra = [("logs", str(platform.logs_dir)), ("run folder", str(run_dir))]
    _print_endpoints(console, platform.endpoints(), extra)
    console.print("stop it with [bold]sagaquake down[/]")
    return platform


def up_command(args: argparse.Namespace, console: Console) -> int:
    timeout_s = args.timeout if args.timeout is not None else UP_TIMEOUT_S[args.platform]
    if args.platform == "local":
        replicas = {
            "order-service": args.order_replicas,
            "payment-service": args.payment_replicas,
            "saga-worker": args.worker_replicas,
        }
        run_dir = Path(args.run_dir) if args.run_dir else None
        start_local(console, run_dir, replicas, timeout_s)
        return 0
    platform = _kubernetes(args)
    with console.status("applying the stack and waiting for every rollout…"):
        platform.up(timeout_s)
    console.print(
        f"[bold green]stack is up[/] in namespace {platform.namespace!r} of the context "
        f"{platform.clients.context!r} (overlay {platform.overlay}, image {platform.image})",
        soft_wrap=True,
    )
    _print_endpoints(console, platform.endpoints(), [])
    console.print("stop it with [bold]sagaquake down --platform k8s[/]")
    return 0


def down_command(args: argparse.Namespace, console: Console) -> int:
    if args.platform == "k8s":
        platform = _kubernetes(args)
        with console.status(f"deleting namespace {platform.namespace!r}…"):
            platform.down()
        console.print(
            f"stack deleted: namespace {platform.namespace!r} of the context "
            f"{platform.clients.context!r}, volumes included; the cluster stays",
            soft_wrap=True,
        )
        return 0
    try:
        local = LocalPlatform.attach()
    except StackNotRunningError:
        note = clean_stale_stack()
        console.print(note or "no stack is running")
        return 0
    with console.status("stopping every process…"):
        local.down()
    console.print(f"stack stopped; its logs stay in {local.logs_dir}")
    return 0


# -- status / endpoints -----------------------------------------------------------------------


def _uptime(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def status_command(args: argparse.Namespace, console: Console) -> int:
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


def endpoints_command(args: argparse.Namespace, console: Console) -> int:
    print(json.dumps(attach(args.platform).endpoints().as_dict(), indent=2))
    return 0


# -- heal / render ----------------------------------------------------------------------------


def heal_command(args: argparse.Namespace, console: Console) -> int:
    """Undo every fault a run left (partitions, lost replies, frozen replicas); print what."""
    found: dict[str, Any]
    if args.platform == "k8s":
        found = _kubernetes(args).sweep()
    else:
        note = clean_stale_stack()  # the tables and processes of stacks that no longer run
        try:
            found = LocalPlatform.attach().sweep()
        except StackNotRunningError:
            found = {"healed": [], "resumed": [], "errors": []}
        found["stale"] = note
    print(json.dumps(found, indent=2))
    return 1 if found["errors"] else 0


def render_command(args: argparse.Namespace, console: Console) -> int:
    """Print the manifests `up --platform k8s` would apply; touches nothing (it reads the
    kubeconfig only to pick the overlay when --overlay is not given)."""
    import yaml

    try:
        docs = _kubernetes(args).manifests()
    except PlatformError as exc:  # no kubeconfig to pick the overlay from
        raise PlatformError(f"{exc}; or name the overlay: --overlay kind|minikube") from None
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0
