"""Where a running process spends its CPU: py-spy attached by pid, summarised per function and
per package.

Why py-spy: it samples a live process from the outside (no restart, no code change, no
instrumentation overhead inside the process), so the saga workers can be profiled at the very
rate the ceiling was measured at. Records are py-spy's `raw` format (collapsed stacks, one
`frame;frame;... count` line each), which flame-graph tools and speedscope read as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PySpy", "py_spy_binary", "summarise"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass
class PySpy:
    """One `py-spy record` running against one pid, into `output` (raw collapsed stacks)."""

    name: str
    pid: int
    output: Path
    proc: subprocess.Popen[bytes] | None = None
    error: str | None = None

    def start(self, duration_s: float, rate_hz: int = 100) -> PySpy:
        binary = py_spy_binary()
        if binary is None:
            self.error = "py-spy is not installed (pip install py-spy; it is in the dev extras)"
            return self
        self.output.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            binary, "record", "--pid", str(self.pid), "--duration", str(max(1, round(duration_s))),
            "--rate", str(rate_hz), "--format", "raw", "--output", str(self.output),
            "--nonblocking",  # never pauses the process: the profile does not slow what it measures
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        return self

    def wait(self, timeout_s: float) -> PySpy:
        if self.proc is None:
            return self
        try:
            _, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        if self.proc.returncode != 0 and not self.output.exists():
            self.error = (err or b"").decode(errors="replace").strip()[-500:] or (
                f"py-spy exited with {self.proc.returncode}"
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _package(path: str) -> str:
    """`temporalio/worker/_workflow.py` → temporalio; `asyncio/events.py` → asyncio;
    `system_under_test/saga/activities.py` → system_under_test/saga (py-spy's short paths)."""
    parts = path.replace("\\", "/").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif path.startswith("/"):
        return parts[-1].removesuffix(".py")
    if parts[0] in ("system_under_test", "harness", "benchmarks") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py") if parts else "?"


def summarise(raw_file: Path, top: int = 12) -> dict[str, Any]:
    """Samples, and the functions and packages with the most self samples (share of all)."""
    self_by_func: Counter[str] = Counter()
    self_by_package: Counter[str] = Counter()
    total_by_func: Counter[str] = Counter()
    samples = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        seen = set()
        for frame in frames:
            key = _short(frame)
            if key not in seen:
                total_by_func[key] += count
                seen.add(key)
        leaf = frames[-1]
        self_by_func[_short(leaf)] += count
        match = _FRAME.match(leaf)
        self_by_package[_package(match.group("file")) if match else "?"] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "share": round(n / samples, 4) if samples else 0.0}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": samples,
        "self_by_function": share(self_by_func),
        "self_by_package": share(self_by_package),
        "total_by_function": share(total_by_func),
    }


def _short(frame: str) -> str:
    """`run (site-packages/temporalio/worker/_workflow.py:123)` → `run (temporalio/worker/_workflow.py)`."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file").replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    for marker in ("system_under_test/", "harness/"):
        if marker in path:
            path = marker + path.split(marker, 1)[1]
    return f"{match.group('func')} ({path})"
