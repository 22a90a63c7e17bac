"""Read the live stack's history, read-only: into files (`export_snapshot`) or memory (`load_live`).

Why both: a run folder must be verifiable later, on another machine, with nothing running, so
the end of a run exports every stream, Temporal's workflow list, the inventory and the read
model into `history/`. `sagaquake verify --live` reads the same data straight from the stack;
both paths hand the same entries to `history.build_history`, so one history gives one verdict.

Read-only means: SCAN, TYPE, XRANGE, HGETALL and Temporal's list/describe. Nothing here writes to
Redis or Temporal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import redis

from harness import keys
from harness.errors import StackNotRunningError
from harness.runs import RunFolder, write_json, write_jsonl
from harness.verify.fields import STREAM_PARTS
from harness.verify.histories import aexport_histories, aread_histories
from harness.verify.history import History, StreamEntries, build_history
from harness.verify.reader import read_client_side

__all__ = [
    "PAGE",
    "aread_temporal",
    "export_snapshot",
    "load_events_from_redis",
    "load_live",
    "read_inventory",
    "read_readmodel",
    "read_stream",
    "read_streams",
    "read_temporal",
]

PAGE = 10_000  # XRANGE page: ~378K entries/s with hiredis on a 2-core machine
_INVENTORY = ("seed", "available", "reserved", "sold")
_T = TypeVar("_T")


def _client(redis_url: str | redis.Redis) -> redis.Redis:
    if isinstance(redis_url, redis.Redis):
        return redis_url
    return redis.Redis.from_url(
        redis_url, decode_responses=True, socket_timeout=60, socket_connect_timeout=5
    )


def read_stream(r: redis.Redis, name: str, page: int = PAGE) -> StreamEntries:
    """Every entry of stream `name` in id order, by XRANGE pages of `page` entries."""
    ids: list[str] = []
    fields: list[dict[str, str]] = []
    start = "-"
    while True:
        batch: list[Any] = r.xrange(name, min=start, max="+", count=page) or []
        for entry_id, entry in batch:
            ids.append(entry_id)
            fields.append(entry)
        if len(batch) < page:
            return ids, fields
        start = "(" + str(batch[-1][0])


def read_streams(r: redis.Redis, page: int = PAGE) -> dict[str, StreamEntries]:
    """Every stream (found with SCAN TYPE stream), plus the streams the checks read even when
    they do not exist yet (a stream never written has no entries: it is empty, not missing)."""
    names = set(r.scan_iter(count=1000, _type="STREAM"))
    names.update(STREAM_PARTS)
    return {name: read_stream(r, name, page) for name in sorted(names)}


def load_events_from_redis(redis_url: str | redis.Redis, stream: str = keys.EVENTS) -> pd.DataFrame:
    """orders:events drained from Redis into the frame `load_snapshot` builds from the file,
    with the stream ids and event ids as columns (a snapshot holds them apart, `History.texts`);
    the hook of the file-versus-Redis loading benchmark."""
    entries = read_stream(_client(redis_url), stream)
    h = build_history(
        source="live",
        run={},
        streams={keys.EVENTS: entries},
        ledger=None,
        temporal=None,
        inventory=None,
        readmodel=None,
        faults=None,
    )
    assert h.events is not None
    return h.events


def read_inventory(r: redis.Redis) -> dict[str, dict[str, int | str]]:
    """The four inventory hashes, quantities as integers where they are."""
    out: dict[str, dict[str, int | str]] = {}
    for name in _INVENTORY:
        values: dict[str, str] = r.hgetall(keys.INVENTORY_HASH.format(name))  # type: ignore[assignment]
        out[name] = {k: _int(v) for k, v in sorted(values.items())}
    return out


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def read_readmodel(r: redis.Redis, chunk: int = 1000) -> list[dict[str, str]]:
    """Every `readmodel:order:{id}` hash, sorted by order id (HGETALL pipelined by `chunk`)."""
    names = sorted(r.scan_iter(match=keys.READMODEL_ORDERS, count=1000, _type="HASH"))
    rows: list[dict[str, str]] = []
    prefix = len(keys.READMODEL_ORDERS) - 1
    for i in range(0, len(names), chunk):
        part = names[i : i + chunk]
        pipe = r.pipeline(transaction=False)
        for key in part:
            pipe.hgetall(key)
        for key, row in zip(part, pipe.execute(), strict=True):
            if row:
                rows.append({"order_id": key[prefix:], **row})
    return rows


async def aread_temporal(address: str, namespace: str = "default") -> list[dict[str, Any]]:
    """One record per OrderSaga workflow run (docs/run-folder.md, temporal.jsonl). A run the
    visibility store still lists as RUNNING is described, so a run that closed a moment ago
    is not reported running."""
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    runs: list[dict[str, Any]] = []
    async for wf in client.list_workflows("WorkflowType='OrderSaga'", page_size=1000):
        status = wf.status.name if wf.status is not None else None
        if status == "RUNNING":
            desc = await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
            wf = desc
            status = desc.status.name if desc.status is not None else None
        runs.append(
            {
                "workflow_id": wf.id,
                "run_id": wf.run_id,
                "status": status,
                "start_time": wf.start_time.timestamp() if wf.start_time else None,
                "close_time": wf.close_time.timestamp() if wf.close_time else None,
            }
        )
    runs.sort(key=lambda r: (r["start_time"] or 0.0, r["workflow_id"], r["run_id"]))
    return runs


def read_temporal(address: str, namespace: str = "default") -> list[dict[str, Any]]:
    return _run(aread_temporal(address, namespace))


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when called inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _read_live(
    redis_url: str, temporal_address: str, namespace: str, histories: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every part the stack holds; Redis must answer, Temporal may fail (its part is missing)."""
    r = _client(redis_url)
    try:
        r.ping()
        parts: dict[str, Any] = {
            "streams": read_streams(r),
            "inventory": read_inventory(r),
            "readmodel": read_readmodel(r),
        }
    except redis.RedisError as err:
        raise StackNotRunningError(
            f"cannot read history from redis at '{_redact(redis_url)}': {err} (is the stack up?)"
        ) from err
    errors: dict[str, str] = {}
    try:
        parts["temporal"] = read_temporal(temporal_address, namespace)
    except Exception as err:  # an unreachable Temporal makes temporal_agrees unknown, not fatal
        parts["temporal"] = None
        errors["temporal"] = f"reading Temporal at {temporal_address!r} failed: {err}"
    if histories:
        try:
            parts["histories"] = _run(aread_histories(temporal_address, namespace))
        except Exception as err:
            parts["histories"] = None
            errors["histories"] = (
                f"reading Temporal's histories at {temporal_address!r} failed: {err}"
            )
    return parts, errors


def load_live(
    run_dir: Path | str | None,
    redis_url: str,
    temporal_address: str,
    namespace: str = "default",
) -> History:
    """The history from the running stack, with the client side (run.json, client ledger,
    faults) from `run_dir` when given. Writes nothing."""
    side: dict[str, Any] = {"run": {}, "ledger": None, "faults": None, "missing": {}, "notes": []}
    if run_dir is not None:
        side = read_client_side(Path(run_dir))
    else:
        side["missing"] = {
            "ledger": "no run folder given: what clients were told is unknown",
            "faults": "no run folder given: fault windows are unknown",
        }
    parts, errors = _read_live(redis_url, temporal_address, namespace, histories=True)
    return build_history(
        source="live",
        run=side["run"],
        streams=parts["streams"],
        ledger=side["ledger"],
        temporal=parts["temporal"],
        inventory=parts["inventory"],
        readmodel=parts["readmodel"],
        faults=side["faults"],
        missing={**side["missing"], **errors},
        notes=side["notes"],
        run_dir=Path(run_dir) if run_dir is not None else None,
        histories=parts["histories"],
    )


def export_snapshot(
    run_dir: Path | str,
    redis_url: str,
    temporal_address: str,
    namespace: str = "default",
) -> dict[str, Any]:
    """Write the live stack's history into `<run_dir>/history/` and return what was written.

    Files: streams/<stream>.jsonl (every stream), temporal.jsonl, workflows.jsonl.gz (every
    workflow run's history), inventory.json, readmodel.jsonl, and export.json (when, from
    where, counts, and any part that failed: that part's file is not written, so its checks
    report unknown with the reason)."""
    started = time.time()
    folder = RunFolder(run_dir)
    folder.streams_dir.mkdir(parents=True, exist_ok=True)
    parts, errors = _read_live(redis_url, temporal_address, namespace)
    counts: dict[str, int] = {}
    for name, (ids, fields) in parts["streams"].items():
        entries = ({"id": i, "fields": f} for i, f in zip(ids, fields, strict=True))
        write_jsonl(folder.stream(name), entries)
        counts[name] = len(ids)
    if parts["temporal"] is not None:
        write_jsonl(folder.temporal, parts["temporal"])
        counts["temporal_runs"] = len(parts["temporal"])
    took = time.time()
    try:
        path = folder.workflows
        counts["histories"] = _run(aexport_histories(path, temporal_address, namespace))
        counts["histories_took_ms"] = round((time.time() - took) * 1000)
    except Exception as err:
        errors["histories"] = f"reading Temporal's histories at {temporal_address!r} failed: {err}"
    write_json(folder.inventory, parts["inventory"])
    write_jsonl(folder.readmodel, parts["readmodel"])
    counts["readmodel_rows"] = len(parts["readmodel"])
    summary = {
        "exported_at": time.time(),
        "took_s": round(time.time() - started, 3),
        "redis_url": _redact(redis_url),
        "temporal_address": temporal_address,
        "namespace": namespace,
        "counts": counts,
        "errors": errors,
    }
    write_json(folder.export, summary)
    return summary


def _redact(url: str) -> str:
    """A Redis URL without its password (export.json and messages must not carry secrets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
