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
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.runs import RunFolder, read_json_or_empty, write_json

__all__ = ["read_state", "state_path", "updating"]

_LOCK = threading.Lock()


def state_path(run_dir: Path) -> Path:
    return RunFolder(run_dir).chaos_state


def read_state(run_dir: Path) -> dict[str, Any]:
    """The saved state (empty when there is none or it cannot be read)."""
    return read_json_or_empty(state_path(run_dir))


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
            write_json(path, state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
