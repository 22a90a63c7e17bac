"""Run Locust against the stack as a child process, and read back what the run did.

`run_load` checks the profile before anything starts, writes the run's plan to
`<run>/locust/load.json`, starts `python -m locust` (headless, or the web UI) in a process group of
its own, reports progress from the client ledger, and stops it cleanly on Ctrl-C: SIGINT, then
SIGTERM, then SIGKILL to the whole group, so no Locust process (nor a `--processes` worker) is
ever left behind. `load_summary` (harness.load.summary, re-exported here) reads a run folder's
ledger again later, with no Locust.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.errors import ConfigError, PlatformError, PortInUseError
from harness.load.ledger import LedgerTail
from harness.load.profile_loader import load_profile, parse_hour
from harness.load.profiles import Profile
from harness.load.settings import DEFAULTS, ENV
from harness.load.summary import LoadSummary, load_summary, plan_curve
from harness.numbers import number, whole_number
from harness.runs import RunFolder, write_json
from harness.settings import free_port

__all__ = [
    "LOCUSTFILE",
    "LoadPlan",
    "LoadProgress",
    "LoadResult",
    "LoadSummary",
    "load_summary",
    "plan_load",
    "resolver_env",
    "run_load",
]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "scenarios" / "load" / "locustfile.py"


@dataclass(frozen=True)
class LoadPlan:
    """What a run will do, resolved from the profile and the flags (`locust/load.json`)."""

    profile: str
    profile_path: str
    compress: float
    start_hour: float
    duration_s: float
    arrivals: str
    seed: int
    processes: int
    order_api: str
    target_orders: float
    target_rate: float  # mean orders per second over the run
    peak_rate: float
    drain_s: float  # the longest one order can take (every attempt timing out)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadProgress:
    elapsed_s: float
    orders: int  # first attempts sent so far
    attempts: int
    outcomes: dict[str, int]  # attempts by outcome
    target_so_far: float | None  # what the schedule had due by now (None in the web UI)


@dataclass
class LoadResult:
    run_dir: Path
    plan: LoadPlan
    summary: LoadSummary
    exit_code: int | None
    interrupted: bool

    @property
    def achieved_rate(self) -> float:
        return self.summary.achieved_rate or 0.0

    @property
    def target_rate(self) -> float:
        return (
            self.plan.target_rate if self.summary.target_rate is None else self.summary.target_rate
        )

    @property
    def rate_error(self) -> float:
        """(achieved - target) / target over the window that ran."""
        return self.summary.rate_error or 0.0

    @property
    def ledger_files(self) -> list[Path]:
        return self.summary.files


def plan_load(
    profile: str | Path | Profile,
    compress: float | None = None,
    duration_s: float | None = None,
    start_hour: float | str | None = None,
    arrivals: str | None = None,
    seed: int = DEFAULTS.seed,
    processes: int = 1,
    order_api: str = DEFAULTS.order_api,
) -> LoadPlan:
    """Check everything a run needs before anything starts; ConfigError says what is wrong."""
    p = profile if isinstance(profile, Profile) else load_profile(profile)
    if start_hour is None:
        hour = p.start_hour
    else:
        try:
            hour = parse_hour(start_hour)
        except (ValueError, TypeError):
            raise ConfigError(
                f'start hour {start_hour!r} is not an hour in [0, 24) or "HH:MM"'
            ) from None
    c = number(p.compress if compress is None else compress, "compress", above=0)
    curve = p.curve(c, hour)
    d = p.full_day_s(c) if duration_s is None else float(duration_s)
    if d <= 0:
        raise ConfigError(f"duration '{duration_s}' must be longer than 0 seconds")
    mode = arrivals or p.arrivals
    if mode not in ("poisson", "uniform"):
        raise ConfigError(f"arrivals '{mode}' is not one of poisson, uniform")
    processes = whole_number(processes, "processes", minimum=1)
    target = curve.expected_orders(d)
    return LoadPlan(
        profile=p.name,
        profile_path=str(Path(p.source).resolve()) if Path(p.source).exists() else p.source,
        compress=c,
        start_hour=hour,
        duration_s=d,
        arrivals=mode,
        seed=int(seed),
        processes=int(processes),
        order_api=order_api,
        target_orders=target,
        target_rate=target / d,
        peak_rate=curve.max_rate(0.0, d),
        drain_s=p.retry.worst_case_s + 5.0,
    )


def _needs_no_dns(url: str) -> bool:
    """Whether the URL's host is an IP address (or localhost, read from /etc/hosts)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolver_env(urls: list[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """gevent's resolver for the Locust processes: `block` when every host they reach is an IP
    address, as on the local platform.

    Every order opens a new connection (`Connection: close`), and gevent's default resolver hands
    each of its getaddrinfo calls to a thread and back, even for "127.0.0.1": about a tenth of the
    client's CPU per order. A blocking lookup of an address is instant; of a DNS name it could
    stall every user, so names keep the default. A GEVENT_RESOLVER already set is left alone.
    """
    environ = os.environ if environ is None else environ
    if "GEVENT_RESOLVER" in environ or not all(_needs_no_dns(u) for u in urls):
        return {}
    return {"GEVENT_RESOLVER": "block"}


def _check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise PortInUseError(
                f"port {port} on {host} is in use, so the locust web ui cannot start there; "
                f"stop what uses it or pick another with --web-port / {ENV['web_port']}"
            ) from None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is still in the group."""
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


class _WebStarter:
    """Presses the web UI's Start once it is up (and, with workers, once they are all ready)."""

    def __init__(self, base_url: str, processes: int, give_up_s: float = 120.0) -> None:
        self.base_url = base_url
        self.processes = processes
        self.give_up_s = give_up_s
        self.done = False

    def poll(self, elapsed_s: float) -> None:
        if self.done:
            return
        if elapsed_s > self.give_up_s:
            self.done = True
            sys.stderr.write(
                f"could not start the run through {self.base_url}; press Start in the ui\n"
            )
            return
        try:
            with urllib.request.urlopen(f"{self.base_url}/stats/requests", timeout=2) as r:
                stats = json.load(r)
            if self.processes > 1 and int(stats.get("worker_count") or 0) < self.processes:
                return
            req = urllib.request.Request(f"{self.base_url}/swarm", data=b"", method="POST")
            with urllib.request.urlopen(req, timeout=5) as r:
                self.done = bool(json.load(r).get("success"))
        except (OSError, ValueError):
            return  # not up yet


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGINT (Locust quits, writing its reports), then SIGTERM, then SIGKILL the whole group."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0)):
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:  # --processes workers exit last
        time.sleep(0.1)
    if _group_alive(pgid) or proc.poll() is None:
        _kill_group(proc)


def run_load(
    run_dir: Path,
    order_api: str,
    profile: str | Path | Profile,
    compress: float | None = None,
    duration_s: float | None = None,
    processes: int = 1,
    seed: int = DEFAULTS.seed,
    web: bool = False,
    redis_url: str | None = None,
    *,
    start_hour: float | str | None = None,
    arrivals: str | None = None,
    web_host: str = DEFAULTS.web_host,
    web_port: int = DEFAULTS.web_port,
    autostart: bool = False,
    max_users: int | None = None,
    locustfile: Path = LOCUSTFILE,
    on_progress: Callable[[LoadProgress], None] | None = None,
    progress_every_s: float = 10.0,
    extra_env: dict[str, str] | None = None,
    allow_existing_ledger: bool = False,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Drive the stack at `order_api` with the profile; return achieved vs target and the ledger.

    Headless runs end by themselves after `duration_s` plus the drain of in-flight orders; the web
    UI runs until Ctrl-C. Ctrl-C (KeyboardInterrupt), or `stop` set from another thread, stops Locust cleanly and still returns the
    result of what ran (`interrupted=True`).
    """
    plan = plan_load(
        profile, compress, duration_s, start_hour, arrivals, seed, processes, order_api
    )
    run_dir = Path(run_dir).resolve()
    folder = RunFolder(run_dir)
    if folder.client_ledgers() and not allow_existing_ledger:
        raise ConfigError(
            f"the run folder '{run_dir}' already holds a client ledger "
            f"({folder.client_ledgers()[0].name}); load into a new run folder, so that its ledger "
            "is this run's alone"
        )
    if not Path(plan.profile_path).is_file():
        raise ConfigError(
            f"profile '{plan.profile}' has no file ({plan.profile_path}) for locust to read; "
            "pass a profile name or a .yaml path"
        )
    if web:
        _check_port(web_host, web_port)
    locust_dir = folder.locust_dir
    locust_dir.mkdir(parents=True, exist_ok=True)
    folder.ledger_dir.mkdir(parents=True, exist_ok=True)
    write_json(folder.load_plan, plan.as_dict())

    env = {
        **os.environ,
        ENV["profile"]: plan.profile_path,
        ENV["compress"]: repr(plan.compress),
        ENV["duration_s"]: repr(plan.duration_s),
        ENV["start_hour"]: repr(plan.start_hour),
        ENV["arrivals"]: plan.arrivals,
        ENV["seed"]: str(plan.seed),
        ENV["run_dir"]: str(run_dir),
        ENV["order_api"]: order_api,
        ENV["processes"]: str(plan.processes),
        "PYTHONUNBUFFERED": "1",
        **resolver_env([order_api, *([redis_url] if redis_url else [])]),
        **({ENV["redis_url"]: redis_url} if redis_url else {}),
        **({ENV["max_users"]: str(max_users)} if max_users else {}),
        **(extra_env or {}),
    }
    env.pop(ENV["duration"], None)  # the seconds above are what counts
    cmd = [
        sys.executable, "-m", "locust",
        "-f", str(locustfile),
        "--host", order_api,
        "--stop-timeout", str(math.ceil(plan.drain_s)),
        "--csv", str(locust_dir / "stats"),
        "--html", str(folder.locust_report),
        "--exit-code-on-error", "0",
        "--loglevel", "INFO",
    ]  # fmt: skip
    if web:
        # not Locust's --autostart: with a shape it swallows the first Ctrl-C and keeps running;
        # the run is started through the UI's own /swarm instead (see _WebStarter)
        cmd += ["--web-host", web_host, "--web-port", str(web_port)]
    else:
        cmd += ["--headless", "--only-summary"]
    if plan.processes > 1:
        port = free_port()
        cmd += [
            "--processes", str(plan.processes),
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--master-host", "127.0.0.1", "--master-port", str(port),
        ]  # fmt: skip

    log_path = locust_dir / "locust.log"
    interrupted = hung = False
    stopped_at: float | None = None
    curve = plan_curve(plan.as_dict())
    started = time.time()
    deadline = None if web else started + plan.duration_s + plan.drain_s + 120.0
    tail = LedgerTail(run_dir)
    outcomes: Counter[str] = Counter()
    orders = attempts = 0
    next_progress = started + progress_every_s
    starter = (
        _WebStarter(f"http://{web_host}:{web_port}", plan.processes) if web and autostart else None
    )
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            while proc.poll() is None:
                time.sleep(0.25)
                if stop is not None and stop.is_set():  # the caller's Ctrl-C, from another thread
                    raise KeyboardInterrupt
                now = time.time()
                if deadline is not None and now > deadline:
                    raise TimeoutError
                if starter is not None:
                    starter.poll(now - started)
                if on_progress is not None and now >= next_progress:
                    next_progress = now + progress_every_s
                    for line in tail.read_new():
                        attempts += 1
                        orders += line.get("attempt") == 1
                        outcomes[str(line.get("outcome"))] += 1
                    elapsed = now - started
                    due = (
                        None
                        if web or curve is None
                        else curve.cumulative(min(elapsed, plan.duration_s))
                    )
                    on_progress(LoadProgress(elapsed, orders, attempts, dict(outcomes), due))
        except KeyboardInterrupt:
            interrupted = True
            stopped_at = time.time()
        except TimeoutError:
            hung = True
        finally:
            try:
                _stop(proc, grace_s=plan.drain_s + 15.0)
            except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
                interrupted = True
                _kill_group(proc)
    if hung:
        raise PlatformError(
            f"locust did not finish {plan.drain_s + 120:.0f} s after the planned end and was stopped; "
            f"its last lines ({log_path}):\n{_tail(log_path)}"
        )
    if proc.returncode not in (0, 1) and not interrupted:
        raise PlatformError(
            f"locust exited with code {proc.returncode}; its last lines ({log_path}):\n{_tail(log_path)}"
        )
    return LoadResult(
        run_dir=run_dir,
        plan=plan,
        summary=load_summary(run_dir, until=stopped_at),
        exit_code=proc.returncode,
        interrupted=interrupted,
    )
