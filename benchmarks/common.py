"""What every benchmark shares: the machine it ran on, a quiet-machine check, medians, the
`--quick` / `--out` flags, a table printer, and `reports/bench/<name>.json`.

Why one module: each figure is a ratio against a baseline measured in the same run on the same
machine, and a reader can only trust it next to the machine (cores, model, memory, load
average) and the moment it was taken; writing both the same way in every script keeps the
results comparable and lets `run_all.py` summarise them without knowing each script.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.metadata as md
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "Bench",
    "add_common_args",
    "children_cpu",
    "console",
    "headline",
    "isolate_stack_state",
    "machine_info",
    "median",
    "print_table",
    "quiet_check",
    "shielded",
    "start_redis",
    "stop_process",
    "write_json",
]

QUIET_LOAD = 1.0  # a 1-minute load average above this is a busy machine
DEFAULT_OUT = ROOT / "reports" / "bench"

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """`--quick` (CI-size, env SAGAQUAKE_BENCH_QUICK=1) and `--out` (env SAGAQUAKE_BENCH_DIR)."""
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("SAGAQUAKE_BENCH_QUICK", "") not in ("", "0"),
        help="CI size: runs to completion in seconds to minutes; the figures mean little",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("SAGAQUAKE_BENCH_DIR", str(DEFAULT_OUT))),
        help="where <name>.json goes (default reports/bench)",
    )


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (
        (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else None
    )


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, load average and the versions that shape the numbers."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("temporalio", "redis", "hiredis", "locust", "pandas", "numpy", "orjson"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    temporal = Path(sys.executable).parent / "temporal"
    versions["temporal_cli"] = _first_line(
        [str(temporal) if temporal.exists() else "temporal", "--version"]
    )
    versions["redis_server"] = _first_line(["redis-server", "--version"])
    mem = psutil.virtual_memory()
    return {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_gb": round(mem.total / 2**30, 1),
        "memory_available_gb": round(mem.available / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "node": platform.node(),
        "versions": versions,
    }


def quiet_check(what: str, warnings: list[str] | None = None) -> float:
    """Warn (never fail) when the machine is busy before a measurement; return the load average."""
    load = os.getloadavg()[0]
    if load > QUIET_LOAD:
        text = (
            f"the machine is busy before {what}: 1-minute load average {load:.2f} > {QUIET_LOAD:.1f} "
            "(other work shares the cores; ratios hold better than absolute figures)"
        )
        console.print(f"[yellow]warning:[/] {text}")
        if warnings is not None:
            warnings.append(text)
    return load


def median(values: Iterable[float]) -> float:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else float("nan")


def print_table(
    title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1
) -> None:
    """A rich table; the first `left` columns are text (left-aligned), the rest numbers."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "—"
        return (
            f"{value:,.0f}"
            if abs(value) >= 1000
            else f"{value:.3g}"
            if abs(value) < 10
            else f"{value:.1f}"
        )
    return str(value)


def write_json(path: Path, data: Any) -> Path:
    """Atomically: a half-written result file would be worse than none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")
    tmp.replace(path)
    return path


@dataclass
class Bench:
    """One benchmark run: its machine and start time, warnings, and its JSON at the end."""

    name: str
    quick: bool
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def __post_init__(self) -> None:
        _sigterm_is_ctrl_c()
        m = self.machine
        console.print(
            f"[bold]{self.name}[/]{' (quick)' if self.quick else ''}: {m['cpu_model']}, "
            f"{m['cores']} cores, {m['memory_gb']} GB, load average {m['load_average'][0]:.2f}"
        )

    def quiet(self, what: str) -> float:
        return quiet_check(what, self.warnings)

    def finish(
        self,
        results: dict[str, Any],
        headline: list[dict[str, Any]],
        definitions: dict[str, str] | None = None,
    ) -> Path:
        """Write <out>/<name>.json; `headline` rows are what run_all's summary shows."""
        data = {
            "benchmark": self.name,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "started_at": self.started,
            "took_s": round(time.time() - self.started, 1),
            "quick": self.quick,
            "machine": self.machine,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "settings": self.settings,
            "definitions": definitions or {},
            "warnings": self.warnings,
            "headline": headline,
            "results": results,
        }
        path = write_json(self.out / f"{self.name}.json", data)
        console.print(f"wrote {path}")
        return path


def headline(
    figure: str,
    value: float | None,
    unit: str,
    baseline: str | None = None,
    baseline_value: float | None = None,
    target: str | None = None,
    met: bool | None = None,
) -> dict[str, Any]:
    """One row of the summary: a figure, its baseline, their ratio, and the target if any."""
    ratio = value / baseline_value if value is not None and baseline_value else None
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def _sigterm_is_ctrl_c() -> None:
    """SIGTERM (run_all, a CI timeout) runs the same clean-up as Ctrl-C: `finally` blocks."""

    def handler(*_: object) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not in the main thread
        signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def shielded(what: str = "stopping what this benchmark started") -> Iterator[None]:
    """During clean-up a second Ctrl-C (or SIGTERM) is acknowledged and ignored, so that the
    clean-up finishes and nothing is left running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(*_: object) -> None:
        console.print(f"[yellow]still {what}; one moment…[/]")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def isolate_stack_state() -> Path:
    """Point SAGAQUAKE_STATE_DIR at a fresh folder: a benchmark's stack never meets a user's
    `sagaquake up` stack (which would refuse ours, or be taken for ours)."""
    folder = Path(tempfile.mkdtemp(prefix="sagaquake-bench-state-"))
    os.environ["SAGAQUAKE_STATE_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (Locust once run_load returned, a forked
    reader once it exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop_process(proc: subprocess.Popen[Any] | None, grace_s: float = 10.0) -> None:
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL after `grace_s`."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=grace_s)


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throw-away redis-server on a free port (no persistence, files in `folder`), once it
    answers PING; its process and URL."""
    import redis

    from harness.settings import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server", "--port", str(port),
            "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no",
            "--daemonize", "no",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    wait_answering(
        proc, answers, 30,
        exited=lambda: f"redis-server exited with code {proc.returncode} on port {port}",
        late=f"redis-server did not answer on port {port} within 30 s",
    )  # fmt: skip
    return proc, url


def wait_answering(
    proc: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    timeout_s: float,
    exited: Callable[[], str],
    late: str,
) -> None:
    """Until a process we started `answers()` (every 0.1 s): SystemExit(`exited()`) when it
    exits first, and SystemExit(`late`) when `timeout_s` pass first (it is stopped then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(exited())
        if answers():
            return
        time.sleep(0.1)
    stop_process(proc)
    raise SystemExit(late)
