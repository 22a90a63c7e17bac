"""The pointer to the running local stack, and finding what a crashed harness left behind.

`up` writes `.sagaquake/stack.json`; every process it starts (supervisord and its children)
carries SAGAQUAKE_STACK_ID in its environment. A process with that marker whose stack has no
live supervisord is a leftover: `down` and the next `up` find and stop it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.settings import state_dir

__all__ = ["StackState", "kill_processes", "live_stack_ids", "marked_processes", "orphans"]

MARKER = "SAGAQUAKE_STACK_ID"


@dataclass
class StackState:
    stack_id: str
    run_dir: str
    supervisord_pid: int
    socket: str
    ports: dict[str, int]
    options: dict[str, Any]
    replicas: dict[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    @staticmethod
    def path() -> Path:
        return state_dir() / "stack.json"

    def save(self) -> None:
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls) -> StackState | None:
        path = cls.path()
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            return (
                None  # a torn or foreign file: treated as no stack (its processes are still swept)
            )

    @classmethod
    def clear(cls) -> None:
        cls.path().unlink(missing_ok=True)

    def supervisord_alive(self) -> bool:
        try:
            proc = psutil.Process(self.supervisord_pid)
            return (
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and _marker(proc) == self.stack_id
            )
        except psutil.Error:
            return False


def _marker(proc: psutil.Process) -> str | None:
    with contextlib.suppress(psutil.Error):
        return proc.environ().get(MARKER)
    return None


def marked_processes(stack_id: str | None = None) -> list[psutil.Process]:
    """Every process carrying the marker (of `stack_id`, or of any stack)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        marker = _marker(proc)
        if marker and (stack_id is None or marker == stack_id):
            found.append(proc)
    return found


def _is_supervisord(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return any("supervisord" in part for part in proc.cmdline()[:3])
    return False


def _live_stacks(procs: list[psutil.Process]) -> set[str]:
    live = set()
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if _is_supervisord(proc) and proc.status() != psutil.STATUS_ZOMBIE:
                live.add(_marker(proc))
    return {m for m in live if m}


def live_stack_ids() -> set[str]:
    """Ids of the stacks whose supervisord runs (on this machine, whatever their state dir)."""
    return _live_stacks(marked_processes())


def orphans() -> list[psutil.Process]:
    """Marked processes whose stack's supervisord is gone: left behind by a crash."""
    procs = marked_processes()
    live_stacks = _live_stacks(procs)
    return [p for p in procs if _marker(p) not in live_stacks]


def kill_processes(procs: list[psutil.Process], timeout_s: float = 10.0) -> int:
    """TERM, then KILL what is still there; return how many were stopped. A frozen process
    (a paused fault) is let go first, or it could not handle its TERM."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.resume()
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout_s)
    return len(procs)
