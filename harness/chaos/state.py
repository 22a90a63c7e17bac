"""What a fault changed and must be undone, kept where a rollback in another process finds it.

`<run_dir>/chaos/state.json` holds, for instance, Redis's original `maxmemory` while an action
has lowered it, and the fault windows still open. A `chaos run` interrupted with SIGKILL leaves
this file behind, and the next rollback (`chaos run` of the same experiment, or
`sagaquake chaos`) reads it and puts the stack back. Every update takes an exclusive lock on
`state.json.lock` and replaces the file atomically, so two processes (or the safeguard thread
and the method) never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["read_state", "state_path", "updating"]

_LOCK = threading.Lock()


def state_path(run_dir: Path) -> Path:
    return Path(run_dir) / "chaos" / "state.json"


def read_state(run_dir: Path) -> dict[str, Any]:
    """The saved state (empty when there is none or it cannot be read)."""
    try:
        data = json.loads(state_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def updating(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Yield the state to change in place; it is written back when the block ends normally."""
    path = state_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path.with_name("state.json.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = read_state(run_dir)
            yield state
            tmp = path.with_name(f"state.json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
            tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
