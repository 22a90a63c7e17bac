"""Ask the system to reprocess the affected events, and record what was asked: `sagaquake
reprocess` and the `reprocess-under-chaos` experiment both go through here.

Why record the request: the verifier must know which orders a correction targeted without
asking the system (which may be wrong). Each request is one line of the run folder's
`history/reprocess.jsonl`, written (fsynced) before the workflow starts, with the range made
concrete: `to` "+" becomes the id of the last entry of orders:events at that moment, so the set
of targeted orders (every order whose OrderCompleted lies in the range) is fixed by the stream.

    {"correction_id": "c1763769000", "workflow_id": "reprocess-c1763769000", "from": "-",
     "to": "1763769123456-0", "percent_bp": 500, "batch_size": 200, "batches_per_run": 20,
     "requested_at": 1763769123.5}
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from harness import keys
from harness.errors import ConfigError
from harness.numbers import whole_number
from harness.platforms.base import Endpoints
from harness.runs import RunFolder, append_jsonl, read_jsonl

__all__ = [
    "ReprocessRequest",
    "check_request",
    "read_requests",
    "reprocess_status",
    "request_reprocess",
    "wait_reprocess",
]


@dataclass(frozen=True)
class ReprocessRequest:
    correction_id: str
    workflow_id: str
    from_: str
    to: str
    percent_bp: int
    batch_size: int
    batches_per_run: int
    requested_at: float

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        return data


def read_requests(run_dir: Path) -> list[dict[str, Any]]:
    """Every request of the run folder (a torn last line skipped)."""
    return read_jsonl(RunFolder(run_dir).reprocess).records


def _record(run_dir: Path, request: ReprocessRequest) -> None:
    append_jsonl(RunFolder(run_dir).reprocess, request.as_dict())


def _stream_id(value: str, name: str) -> str:
    text = str(value).strip()
    ms, dash, seq = text.partition("-")
    if text in ("-", "+") or (ms.isdigit() and (not dash or seq.isdigit())):
        return text
    raise ConfigError(f"{name} {value!r} is not a stream id: give '-', '+' or e.g. 1763769000161-0")


def _position(stream_id: str, *, end: bool) -> tuple[float, float]:
    """Where a range bound falls, as XRANGE reads it: '-' before every entry, '+' after, and an
    id without its sequence is the first (start) or last (end) entry of its millisecond."""
    if stream_id in ("-", "+"):
        return (-1.0, 0.0) if stream_id == "-" else (float("inf"), 0.0)
    ms, _, seq = stream_id.partition("-")
    return float(ms), float(seq) if seq else (float("inf") if end else 0.0)


def _end_of_stream(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    try:
        last: Any = client.xrevrange(keys.EVENTS, "+", "-", count=1)
    finally:
        client.close()
    return str(last[0][0]) if last else "0-0"


def check_request(
    from_id: str = "-",
    to_id: str = "+",
    percent_bp: int = 500,
    batch_size: int = 200,
    batches_per_run: int = 20,
    correction_id: str | None = None,
) -> tuple[str, str]:
    """The arguments of a request checked without the stack (so `sagaquake reprocess` refuses
    them before it looks for one); the range's two stream ids, or a ConfigError."""
    start, end = _stream_id(from_id, "--from"), _stream_id(to_id, "--to")
    if _position(start, end=False) > _position(end, end=True):
        raise ConfigError(f"--from {start} comes after --to {end}: the range holds no order")
    whole_number(percent_bp, "--percent-bp", minimum=1, maximum=10_000)
    whole_number(batch_size, "--batch-size", minimum=1)
    whole_number(batches_per_run, "--batches-per-run", minimum=1)
    if correction_id and not correction_id.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--correction-id {correction_id!r}: use letters, digits, '-' and '_'")
    return start, end


def request_reprocess(
    endpoints: Endpoints,
    run_dir: Path,
    *,
    correction_id: str | None = None,
    from_id: str = "-",
    to_id: str = "+",
    percent_bp: int = 500,
    batch_size: int = 200,
    batches_per_run: int = 20,
) -> ReprocessRequest:
    """Record the request in `run_dir` and start the correction's ReprocessOrders workflow.
    ConfigError for a bad argument or a correction id that already ran."""
    from temporalio.client import Client
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from system_under_test.reprocess.client import start_reprocess
    from system_under_test.reprocess.models import ReprocessInput, workflow_id_for

    start, end = check_request(
        from_id, to_id, percent_bp, batch_size, batches_per_run, correction_id
    )
    cid = correction_id or f"c{int(time.time() * 1000)}"
    if end == "+":
        end = _end_of_stream(endpoints.redis_url)
    request = ReprocessRequest(
        cid, workflow_id_for(cid), start, end, int(percent_bp), int(batch_size),
        int(batches_per_run), time.time(),
    )  # fmt: skip
    job = ReprocessInput(cid, start, end, request.percent_bp, request.batch_size,
                         request.batches_per_run)  # fmt: skip

    async def go() -> None:
        client = await Client.connect(
            endpoints.temporal_address, namespace=endpoints.temporal_namespace
        )
        await start_reprocess(client, endpoints.task_queue, job)

    if any(r.get("correction_id") == cid for r in read_requests(run_dir)):
        raise ConfigError(f"correction {cid!r} was already requested in {run_dir}")
    _record(run_dir, request)
    try:
        asyncio.run(go())
    except WorkflowAlreadyStartedError:
        raise ConfigError(
            f"correction {cid!r} already ran on this stack: a correction applies once; "
            "give another --correction-id"
        ) from None
    return request


async def _chain(endpoints: Endpoints, workflow_id: str) -> list[dict[str, Any]]:
    from temporalio.client import Client

    client = await Client.connect(
        endpoints.temporal_address, namespace=endpoints.temporal_namespace
    )
    runs: list[dict[str, Any]] = []
    async for wf in client.list_workflows(f"WorkflowId='{workflow_id}'"):
        runs.append(
            {
                "run_id": wf.run_id,
                "status": wf.status.name if wf.status else None,
                "start_time": wf.start_time.timestamp(),
                "close_time": wf.close_time.timestamp() if wf.close_time else None,
            }
        )
    latest = await client.get_workflow_handle(workflow_id).describe()
    if all(r["run_id"] != latest.run_id for r in runs):
        runs.append({"run_id": latest.run_id, "status": latest.status.name if latest.status else None,
                     "start_time": latest.start_time.timestamp(), "close_time": None})  # fmt: skip
    runs.sort(key=lambda r: r["start_time"])
    for run in runs:  # visibility may lag a run that just closed: ask the run itself
        if run["status"] == "RUNNING":
            desc = await client.get_workflow_handle(workflow_id, run_id=run["run_id"]).describe()
            run["status"] = desc.status.name if desc.status else None
    return runs


def reprocess_status(endpoints: Endpoints, workflow_id: str) -> dict[str, Any]:
    """The chain of runs of a reprocess workflow, oldest first, and whether it is still running."""
    runs = asyncio.run(_chain(endpoints, workflow_id))
    last = runs[-1]["status"] if runs else None
    return {
        "workflow_id": workflow_id,
        "runs": len(runs),
        # a last run that continued as new has a successor this reading did not see yet
        "running": last in ("RUNNING", "CONTINUED_AS_NEW"),
        "last_status": runs[-1]["status"] if runs else None,
        "chain": runs,
    }


def wait_reprocess(
    endpoints: Endpoints, workflow_id: str, timeout_s: float = 300.0
) -> dict[str, Any]:
    """Wait until the reprocess's chain closes (or `timeout_s`); its status, and its result
    when the last run completed."""
    from temporalio.client import Client

    deadline = time.monotonic() + timeout_s
    while True:
        status = reprocess_status(endpoints, workflow_id)
        if not status["running"] or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if status["last_status"] == "COMPLETED":

        async def result() -> Any:
            client = await Client.connect(
                endpoints.temporal_address, namespace=endpoints.temporal_namespace
            )
            return await client.get_workflow_handle(workflow_id).result()

        status["result"] = asyncio.run(result())  # ReprocessResult as a dict
    return status
