"""`verify_run` and `verify_history`: a run's verdict from its history (see the package's doc).

Why apart from `__init__.py`: the package imports its names lazily, so that a process that
needs one pandas-free module of it (the snapshot's reader child, `system_side.py`) does not
import every check, and pandas with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.runs import existing_run_folder
from harness.verify.facts import universe
from harness.verify.history import History
from harness.verify.invariants import check_all
from harness.verify.memory import release_free_memory
from harness.verify.reader import load_snapshot
from harness.verify.replay import code_to_replay
from harness.verify.results import InvariantResult
from harness.verify.snapshot import load_live
from harness.verify.timeliness import validate_thresholds
from harness.verify.values import no_gc
from harness.verify.verdict import (
    Verdict,
    compose,
)

__all__ = ["LiveSource", "check_inputs", "verify_history", "verify_run"]


@dataclass(frozen=True)
class LiveSource:
    """Where `verify --live` reads the system's side of the history."""

    redis_url: str
    temporal_address: str
    namespace: str = "default"


def check_inputs(run_dir: Path | str | None, replay_against: str | None = None) -> None:
    """ConfigError for a run folder that does not exist or code to replay against that does not
    (a path without system_under_test/, a ref git does not know): what `verify_run` refuses,
    checked by `sagaquake verify --live` before it looks for a stack."""
    if run_dir is not None:
        existing_run_folder(run_dir)
    if replay_against:
        with code_to_replay(replay_against):  # a git ref is extracted, and removed again
            pass


def verify_run(
    run_dir: Path | str | None,
    *,
    live: LiveSource | None = None,
    thresholds: dict[str, Any] | None = None,
    replay_against: str | None = None,
) -> Verdict:
    """The verdict of one run. Raises ConfigError for a bad threshold or a missing run folder,
    StackNotRunningError when `live` names a Redis that does not answer; every other problem
    (a missing file, a crashing check) becomes an `unknown` invariant in the verdict. Writes
    nothing: the caller writes verdict.json with `write_verdict`. `replay_against` (a folder or
    a git ref) is the code the histories are replayed on instead of the current one."""
    limits = validate_thresholds(thresholds)
    check_inputs(run_dir, replay_against)
    if live is None and run_dir is None:
        raise ConfigError("verify needs a run folder, or a live stack to read from")
    with no_gc():
        if live is not None:
            h = load_live(run_dir, live.redis_url, live.temporal_address, live.namespace)
        else:
            h = load_snapshot(run_dir)  # type: ignore[arg-type]
        release_free_memory()  # what loading freed (memory.py)
        return verify_history(h, thresholds=limits, replay_against=replay_against)


def verify_history(
    h: History, *, thresholds: dict[str, Any] | None = None, replay_against: str | None = None
) -> Verdict:
    """The verdict of a history already loaded (tests and benchmarks build their own)."""
    with no_gc():
        results = check_all(h, thresholds=thresholds, replay_against=replay_against)
    timely = next((r for r in results if r.name == "timeliness"), None)
    metrics: dict[str, Any] = {}
    threshold_checks: list[dict[str, Any]] = []
    if timely is not None:
        metrics = {k: v for k, v in timely.metrics.items() if k != "thresholds"}
        threshold_checks = list(timely.metrics.get("thresholds") or [])
    return compose(
        results,
        source=h.source,
        incomplete=bool(h.run.get("incomplete", False)),
        counts=_counts(h, results),
        metrics=metrics,
        thresholds=threshold_checks,
        missing=h.missing,
        notes=h.notes,
    )


def _counts(h: History, results: list[InvariantResult]) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    lost = next((r for r in results if r.name == "no_lost_order"), None)
    if lost is not None and "accepted" in lost.counts:
        counts["orders_accepted"] = lost.counts["accepted"]
    if h.events is not None:
        counts["events"] = len(h.events)
        counts["orders"] = universe(h).n_events
    for name, frame in (
        ("ledger_records", h.ledger),
        ("payments_entries", h.payments),
        ("inventory_entries", h.inventory_ledger),
        ("notifications", h.notifications),
        ("workflow_runs", h.temporal),
        ("read_model_rows", h.readmodel),
        ("faults", h.faults),
    ):
        if frame is not None:
            counts[name] = len(frame)
    return counts
