"""Replay a run's workflow histories against a copy of the system's code, in a process of its own.

Run as a script, never imported by the verifier: `python replay_child.py --histories FILE --code
ROOT [--part J/K]`. It puts ROOT first on sys.path, imports every `workflows` module of ROOT's
`system_under_test` package (the one place the verifier's side meets the system's code: replaying
needs the workflow code), and replays each history of FILE (`history/workflows.jsonl.gz`, see
harness/verify/histories.py; with --part, only the lines i with i % K == J) with
`temporalio.worker.Replayer`. It prints one JSON object: how many were replayed, which workflow
types the code registers, and every replay failure (by its line in FILE) with the error's type
and message.

Each activation runs inline on the child's event loop (the Replayer's `debug_mode`) instead of
being handed to a thread and back: the hand-over was a quarter of the CPU of a replay (~5 of
~19 ms a saga). Inline, the SDK's deadlock detection (an activation that does not yield within
2 s fails its task) is off, so the child watches the time itself: when a history takes longer
than SLOW_S, or none finishes within it, the child stops and exits with SLOW_EXIT, and its part
is replayed again with `--threaded` (the SDK's own way, deadlock detection on). The answer is
then exactly the one the threaded replay gives; fast histories cannot have hit the detector.

A process of its own because the code replayed against may be another version of the system
(`sagaquake verify --replay-against <ref or path>`): its modules must not meet the ones this
interpreter already imported, and the verifier itself never imports `system_under_test`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import importlib
import inspect
import json
import logging
import os
import pkgutil
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

SLOW_S = 1.0  # below the SDK's 2 s deadlock time-out: a history this slow is replayed threaded
SLOW_EXIT = 75  # the exit status that asks for the part again with --threaded


def _workflows(root: Path) -> list[type]:
    """Every workflow class of every `workflows` module under ROOT/system_under_test."""
    sys.path.insert(0, str(root))
    import temporalio.workflow

    package = importlib.import_module("system_under_test")
    if not str(Path(package.__file__ or "").resolve()).startswith(str(root.resolve())):
        raise RuntimeError(f"system_under_test was imported from {package.__file__}, not {root}")
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(package.__path__, "system_under_test."):
        if info.name.rsplit(".", 1)[-1] != "workflows":
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            defn = temporalio.workflow._Definition.from_class(obj)
            if defn is not None and defn.name and obj.__module__ == module.__name__:
                found.setdefault(defn.name, obj)
    return list(found.values())


def _records(path: Path, part: int, parts: int) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of every line of the file that falls to this part of the work."""
    out = []
    with gzip.open(path, "rb") as lines:
        for i, line in enumerate(lines):
            if i % parts == part and line.strip():
                try:
                    out.append((i, json.loads(line)))
                except ValueError:
                    continue  # a torn last line
    return out


class _Watchdog:
    """Ends the process with SLOW_EXIT when the history in flight has taken longer than SLOW_S
    (an activation that loops or blocks, inline, would otherwise hang the child); `end` says
    whether the history that just finished took longer than that."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def begin(self) -> None:
        self._started = time.monotonic()

    def end(self) -> bool:
        started, self._started = self._started, None
        return started is not None and time.monotonic() - started > SLOW_S

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(SLOW_S / 4):
            started = self._started
            if started is not None and time.monotonic() - started > SLOW_S:
                os._exit(SLOW_EXIT)


async def _replay(
    path: Path, workflows: list[type], part: int, parts: int, threaded: bool = False
) -> dict[str, Any]:
    from temporalio.api.history.v1 import History
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    records = _records(path, part, parts)
    known = {temporalio_name(w) for w in workflows}
    failures: list[dict[str, Any]] = []
    replayable: list[tuple[int, dict[str, Any]]] = []
    for i, record in records:
        if record.get("workflow_type") not in known:
            failures.append(
                _failure(i, record, "NotRegistered", "the code has no workflow of this type")
            )
        else:
            replayable.append((i, record))

    watchdog = None if threaded else _Watchdog()

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _, record in replayable:
            history = History.FromString(base64.b64decode(record.pop("history")))
            if watchdog is not None:
                watchdog.begin()
            yield WorkflowHistory(record["workflow_id"], history.events)

    started = time.perf_counter()
    if replayable:
        replayer = Replayer(workflows=workflows, debug_mode=not threaded)
        async with replayer.workflow_replay_iterator(histories()) as results:
            n = 0
            async for result in results:
                if watchdog is not None and watchdog.end():
                    os._exit(SLOW_EXIT)
                i, record = replayable[n]
                n += 1
                error = result.replay_failure
                if error is not None:
                    failures.append(_failure(i, record, type(error).__name__, str(error)))
            if watchdog is not None:
                watchdog.begin()  # the worker's shutdown runs the last eviction inline too
    if watchdog is not None:
        watchdog.stop()
    return {
        "histories": len(records),
        "replayed": len(replayable),
        "workflow_types": sorted(known),
        "took_s": round(time.perf_counter() - started, 3),
        "failures": sorted(failures, key=lambda f: f["index"]),
    }


def temporalio_name(cls: type) -> str:
    import temporalio.workflow

    defn = temporalio.workflow._Definition.must_from_class(cls)
    return str(defn.name)


def _failure(i: int, record: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
    return {
        "index": i,
        "workflow_id": record.get("workflow_id"),
        "run_id": record.get("run_id"),
        "workflow_type": record.get("workflow_type"),
        "status": record.get("status"),
        "error_type": kind,
        "message": message[:2000],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--histories", required=True, type=Path)
    parser.add_argument(
        "--code", required=True, type=Path, help="the folder holding system_under_test/"
    )
    parser.add_argument("--part", default="0/1", help="J/K: replay the lines i with i % K == J")
    parser.add_argument(
        "--threaded",
        action="store_true",
        help="activations on the SDK's thread (deadlock detection)",
    )
    args = parser.parse_args()

    logging.disable(logging.WARNING)  # a failing replay logs its task failure; we report it
    workflows = _workflows(args.code)
    part, parts = (int(x) for x in args.part.split("/"))
    out = asyncio.run(_replay(args.histories, workflows, part, parts, args.threaded))
    out["code"] = str(args.code)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # Leave without finalizing the interpreter: the SDK's Rust threads may still run while
    # Python tears down, which crashes the process now and then (seen 1 in 15 runs).
    os._exit(0)


if __name__ == "__main__":
    main()
