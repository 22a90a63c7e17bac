"""Fault windows: when a fault started and ended, what it hit, and the proof that it landed.

Each window becomes one line of `<run_dir>/history/faults.jsonl` (docs/run-folder.md) when its
fault ends, written in one `write(2)` and fsynced, so the verifier and the report see it even
if the harness dies right after. While a fault is on, its window is also kept open in
`chaos/state.json`: if the action's process dies before the fault ends, the rollback (maybe in
another process) closes it, so no fault goes unrecorded.

An action that cannot prove its fault raises `FaultNotLanded`: the activity fails, the
sagaquake control fails the experiment, and the window is written with `"landed": false`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from harness.chaos.state import updating
from harness.errors import HarnessError
from harness.runs import RunFolder, append_jsonl, read_jsonl

__all__ = [
    "FaultNotLanded",
    "FaultWindow",
    "append_fault",
    "close_open_windows",
    "ensure_faults_file",
    "read_faults",
]


class FaultNotLanded(HarnessError):
    """An action could not prove that its fault took effect; the experiment must not pass."""


def ensure_faults_file(run_dir: Path) -> Path:
    """Create an empty faults.jsonl: a chaos run that injected nothing still says so."""
    path = RunFolder(run_dir).faults
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    return path


def append_fault(run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append one window line; it is on disk when this returns."""
    append_jsonl(RunFolder(run_dir).faults, record)
    return record


def read_faults(run_dir: Path) -> list[dict[str, Any]]:
    """Every window line, by the run folder's torn-line rule (harness.runs)."""
    return read_jsonl(RunFolder(run_dir).faults).records


class FaultWindow:
    """One fault, from injection to its end. Use as a context manager around the action:

    ```
    with FaultWindow(run_dir, experiment, "outage", "payment-service") as window:
        platform.stop(...)
        window.land(down=[...])          # the proof; without it the window says landed: false
        ...                              # hold, then undo the fault
    ```

    Leaving the block writes the line (also on an error or Ctrl-C, noting which)."""

    def __init__(
        self, run_dir: Path, experiment: str, action: str, target: str, **evidence: Any
    ) -> None:
        self.run_dir = Path(run_dir)
        self.id = uuid.uuid4().hex[:12]
        self.record: dict[str, Any] = {
            "experiment": experiment,
            "action": action,
            "target": target,
            "started_at": None,
            "ended_at": None,
            "landed": False,
            "evidence": dict(evidence),
        }
        self.closed = False

    @property
    def evidence(self) -> dict[str, Any]:
        evidence: dict[str, Any] = self.record["evidence"]
        return evidence

    @property
    def landed(self) -> bool:
        return bool(self.record["landed"])

    def open(self, started_at: float | None = None) -> FaultWindow:
        """Mark the fault as started (now, unless given) and keep the window open in state.json."""
        self.record["started_at"] = time.time() if started_at is None else started_at
        with updating(self.run_dir) as state:
            state.setdefault("open_windows", {})[self.id] = self.record
        return self

    def land(self, **evidence: Any) -> None:
        """The fault is proven to have taken effect; `evidence` says how."""
        self.evidence.update(evidence)
        self.record["landed"] = True
        with updating(self.run_dir) as state:
            state.setdefault("open_windows", {})[self.id] = self.record

    def close(self, ended_at: float | None = None, **evidence: Any) -> dict[str, Any]:
        """Write the window line (once) and forget the open window."""
        if self.closed:
            return self.record
        self.evidence.update(evidence)
        if self.record["started_at"] is None:
            self.record["started_at"] = time.time()
        self.record["ended_at"] = time.time() if ended_at is None else ended_at
        with updating(self.run_dir) as state:
            state.get("open_windows", {}).pop(self.id, None)
        append_fault(self.run_dir, self.record)
        self.closed = True
        return self.record

    def __enter__(self) -> FaultWindow:
        if self.record["started_at"] is None:
            self.open()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            interrupted = type(exc).__name__ in ("InterruptExecution", "ExperimentExitedException")
            key = "error" if isinstance(exc, Exception) and not interrupted else "interrupted"
            self.evidence.setdefault(key, f"{type(exc).__name__}: {exc}".rstrip(": "))
        self.close()


def close_open_windows(
    run_dir: Path,
    target: str | None = None,
    note: str = "",
    exclude: str | None = None,
    skip_actions: tuple[str, ...] = (),
    only_actions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Write the windows a dead or interrupted action left open (those of `target`, or all;
    only those of `only_actions` when given; never `exclude` nor those of `skip_actions`),
    ending now; `note` says who closed them. Returns the lines written."""
    now = time.time()
    closed = []
    with updating(run_dir) as state:
        windows = state.get("open_windows", {})
        for key in [
            k
            for k, w in windows.items()
            if target in (None, w.get("target"))
            and k != exclude
            and w.get("action") not in skip_actions
            and (not only_actions or w.get("action") in only_actions)
        ]:
            record = windows.pop(key)
            record["ended_at"] = now
            record.setdefault("evidence", {})["closed_by"] = note or "rollback"
            closed.append(record)
    for record in closed:
        append_fault(run_dir, record)
    return closed
