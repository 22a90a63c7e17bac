"""Temporal's own history of every workflow run of a run: read from the stack, kept in the run
folder, and scanned for failed workflow tasks.

Why keep them: the list of runs (`temporal.jsonl`) says how each saga ended, not what its
workflow tasks went through. A saga whose code changed under it without a patch does not end:
its workflow task fails with a non-determinism error and is retried every ~10 s, forever, and
only its history says why. The histories are also what `replays_deterministically` replays
against the code, later and elsewhere, so they are part of the snapshot:
`history/workflows.jsonl.gz`, one gzip'd JSON line per run:

    {"workflow_id": "ord-…", "run_id": "…", "workflow_type": "OrderSaga", "status": "COMPLETED",
     "history": "<base64 of the temporal.api.history.v1.History protobuf>"}

The history is Temporal's own protobuf, not its JSON: parsing the JSON form costs ~5 ms a history
(protobuf's pure-Python json_format), the binary form ~10 µs, and the replay reads every one.
`sagaquake verify <run folder> --show-histories [workflow id]` prints them as Temporal's JSON
(the format of `temporal workflow show --output json`); `python -m harness.verify.histories <run
folder> [workflow id]` is a shim over it.

Reading them is read-only: Temporal's list and fetch-history calls.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import re
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History as HistoryProto

from harness.errors import ConfigError
from harness.runs import RunFolder, iter_jsonl

__all__ = [
    "HistoryRecords",
    "aexport_histories",
    "aread_histories",
    "decode",
    "encode",
    "iter_histories",
    "print_histories",
    "scan_failures",
    "write_histories",
]

# A part of the history: the file of the snapshot, or the records themselves (live, tests).
HistoryRecords = Path | Sequence[Mapping[str, Any]]
_RUN_ID = re.compile(rb'"run_id":"([^"]+)"')
_CONCURRENCY = 16  # histories fetched at once from the server
_FAILED = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


def encode(history: HistoryProto) -> str:
    """A history as the file keeps it: base64 of its protobuf."""
    return base64.b64encode(history.SerializeToString()).decode()


def decode(record: Mapping[str, Any]) -> HistoryProto:
    """The history of a record of the file."""
    return HistoryProto.FromString(base64.b64decode(record.get("history") or ""))


def iter_histories(records: HistoryRecords) -> Iterator[Mapping[str, Any]]:
    """Every run's record, from the file (read line by line, a torn last line skipped) or the
    records given."""
    if not isinstance(records, Path):
        yield from records
        return
    yield from iter_jsonl(records)  # a line skipped: its run is counted as missing by the checks


def scan_failures(
    records: HistoryRecords,
) -> tuple[list[str], list[tuple[Mapping[str, Any], list[dict[str, Any]]]]]:
    """The run id of every history, and (run record, its failed workflow tasks) for every run
    with at least one: each failure's event id, time, cause (`WORKFLOW_TASK_FAILED_CAUSE_…`),
    message and worker identity."""
    run_ids: list[str] = []
    failing: list[tuple[Mapping[str, Any], list[dict[str, Any]]]] = []
    for record in iter_histories(records):
        run_ids.append(str(record.get("run_id")))
        found = _failures(decode(record))
        if found:
            failing.append(({k: v for k, v in record.items() if k != "history"}, found))
    return run_ids, failing


def _failures(history: HistoryProto) -> list[dict[str, Any]]:
    out = []
    for event in history.events:
        if event.event_type != _FAILED:
            continue
        attrs = event.workflow_task_failed_event_attributes
        out.append(
            {
                "event_id": int(event.event_id),
                "time": event.event_time.ToJsonString(),
                "cause": WorkflowTaskFailedCause.Name(attrs.cause),
                "message": attrs.failure.message,
                "identity": attrs.identity,
            }
        )
    return out


def write_histories(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write the records gzip'd, atomically; return how many."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
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
            "history": encode(HistoryProto(events=history.events)),
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(tmp, "wb", compresslevel=3) as out:
        async for record in _each_history(address, namespace, query):
            out.write(orjson.dumps(record) + b"\n")
            n += 1
    tmp.replace(path)
    return n


def print_histories(run_dir: Path, workflow_id: str | None, out: IO[str]) -> int:
    """Write the histories of a run folder (or one workflow's runs) to `out` as Temporal's JSON,
    one indented object per run; return how many. ConfigError when the folder has none, or none
    of `workflow_id`."""
    path = RunFolder(run_dir).workflows
    if not path.is_file():
        raise ConfigError(
            f"no workflow histories at '{path}': a run's snapshot writes them (sagaquake run, "
            "verify --live)"
        )
    shown = 0
    for record in iter_histories(path):
        if workflow_id in (None, record.get("workflow_id")):
            run = {k: v for k, v in record.items() if k != "history"}
            run["history"] = MessageToDict(decode(record))
            out.write(orjson.dumps(run, option=orjson.OPT_INDENT_2).decode() + "\n")
            shown += 1
    if workflow_id is not None and not shown:
        raise ConfigError(f"no workflow {workflow_id!r} in '{path}'")
    return shown


if __name__ == "__main__":  # `python -m harness.verify.histories <run folder> [workflow id]`
    from harness.cli import main

    folder, rest = sys.argv[1:2], sys.argv[2:]
    sys.exit(main(["verify", *folder, "--show-histories", *rest]))
