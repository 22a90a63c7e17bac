"""Replay a run's workflow histories against a copy of the system's code, in a process of its own.

Run as a script, never imported by the verifier: `python replay_child.py --histories FILE --code
ROOT [--part J/K]`. It puts ROOT first on sys.path, imports every `workflows` module of ROOT's
`system_under_test` package (the one place the verifier's side meets the system's code: replaying
needs the workflow code), and replays each history of FILE (`history/workflows.jsonl.gz`, see
harness/verify/histories.py; with --part, only the lines i with i % K == J) with
`temporalio.worker.Replayer`. It prints one JSON object: how many were replayed, which workflow
types the code registers, and every replay failure (by its line in FILE) with the error's type
and message.

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
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


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


async def _replay(path: Path, workflows: list[type], part: int, parts: int) -> dict[str, Any]:
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

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _, record in replayable:
            history = History.FromString(base64.b64decode(record.pop("history")))
            yield WorkflowHistory(record["workflow_id"], history.events)

    started = time.perf_counter()
    if replayable:
        replayer = Replayer(workflows=workflows)
        async with replayer.workflow_replay_iterator(histories()) as results:
            n = 0
            async for result in results:
                i, record = replayable[n]
                n += 1
                error = result.replay_failure
                if error is not None:
                    failures.append(_failure(i, record, type(error).__name__, str(error)))
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
    args = parser.parse_args()

    logging.disable(logging.WARNING)  # a failing replay logs its task failure; we report it
    workflows = _workflows(args.code)
    part, parts = (int(x) for x in args.part.split("/"))
    out = asyncio.run(_replay(args.histories, workflows, part, parts))
    out["code"] = str(args.code)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # Leave without finalizing the interpreter: the SDK's Rust threads may still run while
    # Python tears down, which crashes the process now and then (seen 1 in 15 runs).
    os._exit(0)


if __name__ == "__main__":
    main()
