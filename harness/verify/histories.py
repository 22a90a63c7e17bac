"""Temporal's own history of every workflow run of a run: read from the stack, kept in the run
folder, and scanned for failed workflow tasks.

Why keep them: the list of runs (`temporal.jsonl`) says how each saga ended, not what its
workflow tasks went through. A saga whose code changed under it without a patch does not end:
its workflow task fails with a non-determinism error and is retried every ~10 s, forever, and
only its history says why. The histories are also what `replays_deterministically` replays
against the code, later and elsewhere, so they are part of the snapshot:
`history/workflows.jsonl.gz`, one gzip'd JSON line per run:

    {"workflow_id": "ord-…", "run_id": "…", "workflow_type": "OrderSaga", "status": "COMPLETED",
     "history": {"events": [… Temporal's JSON of each event, as `temporal workflow show -o json` …]}}

Reading them is read-only: Temporal's list and fetch-history calls.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "HISTORIES_FILE",
    "HistoryRecords",
    "aexport_histories",
    "aread_histories",
    "iter_histories",
    "scan_failures",
    "write_histories",
]

HISTORIES_FILE = "history/workflows.jsonl.gz"
# A part of the history: the file of the snapshot, or the records themselves (live, tests).
HistoryRecords = Path | Sequence[Mapping[str, Any]]
_FAILED = b"EVENT_TYPE_WORKFLOW_TASK_FAILED"
_RUN_ID = re.compile(rb'"run_id":"([^"]+)"')
_CONCURRENCY = 16  # histories fetched at once: the dev server answers ~16 in parallel on 2 cores


def iter_histories(records: HistoryRecords) -> Iterator[Mapping[str, Any]]:
    """Every run's record, from the file (read line by line, a torn last line skipped) or the
    records given."""
    if not isinstance(records, Path):
        yield from records
        return
    with gzip.open(records, "rb") as lines:
        for line in lines:
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line: its run is counted as missing by the checks


def scan_failures(
    records: HistoryRecords,
) -> tuple[list[str], list[tuple[Mapping[str, Any], list[dict[str, Any]]]]]:
    """The run id of every history, and (run record, its failed workflow tasks) for every run
    with at least one: each failure's event id, time, cause (`WORKFLOW_TASK_FAILED_CAUSE_…`),
    message and worker identity. Lines of the file without a failed task are not parsed."""
    run_ids: list[str] = []
    failing: list[tuple[Mapping[str, Any], list[dict[str, Any]]]] = []
    if not isinstance(records, Path):
        for record in records:
            run_ids.append(str(record.get("run_id")))
            found = _failures(record)
            if found:
                failing.append((record, found))
        return run_ids, failing
    with gzip.open(records, "rb") as lines:
        for line in lines:
            run_id = _RUN_ID.search(line, 0, 400)
            if run_id is None:
                continue  # a torn last line (or not a record)
            if _FAILED in line:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                failing.append((record, _failures(record)))
            run_ids.append(run_id.group(1).decode())
    return run_ids, failing


def _failures(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for event in (record.get("history") or {}).get("events") or []:
        if event.get("eventType") != "EVENT_TYPE_WORKFLOW_TASK_FAILED":
            continue
        attrs = event.get("workflowTaskFailedEventAttributes") or {}
        out.append(
            {
                "event_id": int(event.get("eventId") or 0),
                "time": event.get("eventTime"),
                "cause": str(attrs.get("cause") or ""),
                "message": str((attrs.get("failure") or {}).get("message") or ""),
                "identity": str(attrs.get("identity") or ""),
            }
        )
    return out


def write_histories(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write the records gzip'd, atomically; return how many."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    with gzip.open(tmp, "wb", compresslevel=3) as out:
        for record in records:
            out.write(orjson.dumps(record) + b"\n")
            n += 1
    tmp.replace(path)
    return n


async def _each_history(address: str, namespace: str, query: str) -> AsyncIterator[dict[str, Any]]:
    """Every run matching `query` (all runs when empty) with its history, as a record of this
    module's format, `_CONCURRENCY` fetched at a time (in the order they arrive)."""
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)

    async def one(wf: Any) -> dict[str, Any]:
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        return {
            "workflow_id": wf.id,
            "run_id": wf.run_id,
            "workflow_type": wf.workflow_type,
            "status": wf.status.name if wf.status is not None else None,
            "history": history.to_json_dict(),
        }

    pending: set[asyncio.Task[dict[str, Any]]] = set()
    async for wf in client.list_workflows(query or None, page_size=1000):
        pending.add(asyncio.create_task(one(wf)))
        if len(pending) >= _CONCURRENCY:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            yield task.result()


async def aread_histories(
    address: str, namespace: str = "default", query: str = ""
) -> list[dict[str, Any]]:
    """The history of every workflow run matching `query` (all runs when empty), in memory."""
    return [record async for record in _each_history(address, namespace, query)]


async def aexport_histories(
    path: Path, address: str, namespace: str = "default", query: str = ""
) -> int:
    """Write the history of every workflow run matching `query` into `path` (this module's
    format) as they arrive, never holding them all; return how many runs."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    with gzip.open(tmp, "wb", compresslevel=3) as out:
        async for record in _each_history(address, namespace, query):
            out.write(orjson.dumps(record) + b"\n")
            n += 1
    tmp.replace(path)
    return n
