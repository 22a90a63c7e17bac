"""`sagaquake load`: the flags (each with its environment variable) and the command.

harness/cli.py owns the command line; it calls `add_load_arguments(parser)` on the `load`
sub-parser and, with the stack's endpoints and the run folder, `load_command(args, endpoints,
run_dir)`, which returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from harness.durations import format_duration, parse_duration
from harness.flags import env_flag
from harness.load.profile_loader import available_profiles
from harness.load.runner import LoadProgress, LoadResult, run_load
from harness.load.settings import DEFAULTS, ENV
from harness.platforms.base import Endpoints
from harness.runs import RunFolder

__all__ = ["add_load_arguments", "load_command", "print_result"]


def _flag(group: Any, name: str, key: str, text: str, **kw: Any) -> None:
    """`--name`, whose default is the variable of setting `key`, else its default."""
    env_flag(group, name, env=ENV[key], default=getattr(DEFAULTS, key), help=text, **kw)


def add_load_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the load flags; every default comes from its SAGAQUAKE_* variable, then DEFAULTS."""
    g = parser.add_argument_group("load")
    profiles = ", ".join(available_profiles())
    _flag(
        g, "--profile", "profile", f"profile name ({profiles}) or a .yaml path; default %(default)s"
    )
    _flag(g, "--compress", "compress", "time compression: production seconds per wall second "
          "(24 = a day in an hour); default the profile's")  # fmt: skip
    _flag(g, "--duration", "duration",
          "how long to load: 90s, 10m, 1h; default a whole day at the compression")  # fmt: skip
    _flag(g, "--start-hour", "start_hour",
          'where in the day the run starts: 8, 7.5 or "15:00"; default the profile\'s')  # fmt: skip
    _flag(g, "--processes", "processes",
          "Locust processes (master + N workers when > 1); default %(default)s")  # fmt: skip
    _flag(g, "--seed", "seed", "seed of the arrivals and the order mix; default %(default)s")  # fmt: skip
    _flag(g, "--arrivals", "arrivals",
          "poisson (real customers) or uniform (evenly spaced); default the profile's",
          choices=("poisson", "uniform"))  # fmt: skip
    _flag(g, "--max-users", "max_users", "cap of the user pool per Locust process; default "
          "%(default)s")  # fmt: skip
    _flag(g, "--web", "web", "open Locust's web UI (with the Saga ledger tab) instead of running "
          "headless", action="store_true")  # fmt: skip
    _flag(g, "--web-host", "web_host", "web UI address; default %(default)s")
    _flag(g, "--web-port", "web_port", "web UI port; default %(default)s")
    _flag(g, "--autostart", "autostart", "with --web: start the run at once instead of waiting "
          "for the Start button", action="store_true")  # fmt: skip
    return parser


def _progress(out: TextIO):
    def show(p: LoadProgress) -> None:
        o = p.outcomes
        due = f" of {p.target_so_far:,.0f} due" if p.target_so_far is not None else ""
        out.write(
            f"load {format_duration(p.elapsed_s):>7}: {p.orders:,} orders in the ledger{due}; "
            f"attempts ok {o.get('ok', 0):,} failed {o.get('failed', 0):,} unknown {o.get('unknown', 0):,}\n"
        )
        out.flush()

    return show


def print_result(result: LoadResult, out: TextIO = sys.stdout) -> None:
    s, plan = result.summary, result.plan
    f = s.final_outcomes
    out.write(
        f"load {plan.profile} at {plan.compress:g}x for {format_duration(plan.duration_s)}"
        f"{' (interrupted)' if result.interrupted else ''}: {s.orders:,} orders, "
        f"{result.achieved_rate:.2f}/s against {result.target_rate:.2f}/s planned ({result.rate_error:+.1%})\n"
        f"  orders: ok {f.get('ok', 0):,}, failed {f.get('failed', 0):,}, unknown {f.get('unknown', 0):,}; "
        f"{s.attempts:,} attempts; duplicates in ledger: {s.duplicates}\n"
    )
    if s.lag:
        out.write(
            f"  arrival lag: p99 {s.lag['lag_p99_s']:.3f} s, max {s.lag['lag_max_s']:.3f} s, "
            f"{s.lag['late_1s']:,} sent over 1 s late\n"
        )
    for path in s.files:
        out.write(f"  ledger: {path}\n")
    out.write(f"  locust report: {RunFolder(result.run_dir).locust_report}\n")


def load_command(
    args: argparse.Namespace, endpoints: Endpoints, run_dir: Path, out: TextIO = sys.stdout
) -> int:
    """Run the load the flags describe against the stack.

    Returns 0 when Locust ran to its end (or, with --web, was closed with Ctrl-C), 130 when a
    headless run was interrupted, 1 when Locust failed.
    """
    duration_s = (
        parse_duration(args.duration, "--duration", positive=True) if args.duration else None
    )
    if args.web:
        out.write(
            f"locust web ui: http://{args.web_host}:{args.web_port}/?tab=saga-ledger "
            f"(profile {args.profile}; Ctrl-C to stop)\n"
        )
        out.flush()
    result = run_load(
        run_dir,
        endpoints.order_api,
        args.profile,
        compress=args.compress,
        duration_s=duration_s,
        processes=args.processes,
        seed=args.seed,
        web=args.web,
        redis_url=endpoints.redis_url,
        start_hour=args.start_hour,
        arrivals=args.arrivals,
        web_host=args.web_host,
        web_port=args.web_port,
        autostart=args.autostart,
        max_users=args.max_users,
        on_progress=None if args.web else _progress(out),
    )
    print_result(result, out)
    if result.interrupted and not args.web:
        return 130  # stopped by Ctrl-C before the profile's end
    return 0 if result.exit_code in (0, 1) or result.interrupted else 1
