"""What Temporal says about the saga workers across a deploy: which version each poller runs,
which sagas were in flight at a switch, and from their histories which versions completed their
workflow tasks and which tasks failed. Shared by the rolling deploy (harness.chaos.deploy) and
the blue/green deploy of Worker Deployment Versioning (harness.chaos.blue_green)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from harness.chaos.faults import FaultNotLanded
from harness.platforms.base import DeployEvidence, Endpoints

__all__ = [
    "RUNNING_SAGAS",
    "count_workflows",
    "pollers",
    "prove_polling",
    "run_async",
    "sagas_across",
    "temporal_client",
    "version_of",
    "wait_in_flight",
]

_IDENTITY = re.compile(r"saga-v(\d+)\s*$")
_MAX_HISTORIES = 400  # sagas whose histories are read for the evidence, at most


def version_of(identity: str) -> int | None:
    """The saga version in a worker's Temporal identity (`<pid>@<host> saga-v2` → 2)."""
    found = _IDENTITY.search(identity or "")
    return int(found.group(1)) if found else None


def wait_in_flight(endpoints: Endpoints, require: bool, wait_s: float) -> dict[str, Any]:
    """How many sagas run now, waiting up to `wait_s` for one when `require` (a deploy with
    nothing in flight proves nothing: FaultNotLanded)."""
    deadline = time.monotonic() + wait_s
    seen: dict[str, Any] = {}
    while True:
        try:
            seen["running_sagas"] = run_async(count_workflows(endpoints, RUNNING_SAGAS))
        except Exception as exc:
            seen["error"] = f"{type(exc).__name__}: {exc}"
        if seen.get("running_sagas") or not require or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    seen["in_flight"] = bool(seen.get("running_sagas"))
    if require and not seen["in_flight"]:
        raise FaultNotLanded(
            f"no saga was in flight within {wait_s:g} s, so the deploy would switch idle "
            "workers; run the experiment while load runs (or set require_inflight: false)"
        )
    return seen


def prove_polling(
    endpoints: Endpoints, replaced: list[DeployEvidence], version: int, wait_s: float
) -> dict[str, dict[str, Any]]:
    """Per replaced replica, the Temporal poller that is its new incarnation (matched by pid
    locally, `@<pod name>` on Kubernetes) under the new version's identity, once it polled."""
    deadline = time.monotonic() + wait_s
    found: dict[str, dict[str, Any]] = {e.name: {} for e in replaced}
    while True:
        for poller in pollers(endpoints):
            for e in replaced:
                mine = not found[e.name] and _is_incarnation(poller["identity"], e)
                if mine and poller.get("version") == version:
                    found[e.name] = poller
        if all(found.values()) or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


def _is_incarnation(identity: str, e: DeployEvidence) -> bool:
    pid = e.extra.get("pid") or (e.new_uid if e.new_uid and e.new_uid.isdigit() else None)
    if pid:
        return identity.startswith(f"{pid}@")
    pod = e.extra.get("pod") or e.name
    return f"@{pod} " in identity


def sagas_across(endpoints: Endpoints, switches: list[float], settle_s: float) -> dict[str, Any]:
    """The sagas in flight at some switch (started before it, not closed before it), after
    waiting up to `settle_s` for them to finish: per switch how many, and from their histories
    which versions completed their workflow tasks and which tasks failed."""
    if not switches:
        return {}
    try:
        return run_async(_across_async(endpoints, switches, settle_s))
    except Exception as exc:  # the evidence is best effort; the deploy itself is proven
        return {"across_error": f"{type(exc).__name__}: {exc}"}


async def _across_async(
    endpoints: Endpoints, switches: list[float], settle_s: float
) -> dict[str, Any]:
    client = await temporal_client(endpoints)
    first, last = min(switches), max(switches)
    query = (
        f"WorkflowType='OrderSaga' AND StartTime < '{_iso(last)}' AND "
        f"(ExecutionStatus='Running' OR CloseTime > '{_iso(first)}')"
    )
    deadline = time.monotonic() + settle_s
    while True:
        sagas = [wf async for wf in client.list_workflows(query, page_size=1000)]
        running = [wf for wf in sagas if wf.close_time is None]
        if not running or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    per_switch = []
    for at in switches:
        n = sum(
            1
            for wf in sagas
            if wf.start_time.timestamp() < at
            and (wf.close_time is None or wf.close_time.timestamp() > at)
        )
        per_switch.append({"at": round(at, 3), "in_flight": n})
    sample = sagas[:_MAX_HISTORIES]
    limit = asyncio.Semaphore(16)

    async def read(wf: Any) -> tuple[str, dict[str, Any]]:
        async with limit:
            history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        return wf.id, _task_facts(history.events)

    facts = dict(await asyncio.gather(*(read(wf) for wf in sample)))
    ran_on = Counter(
        "+".join(f"v{v}" for v in sorted(f["versions"])) or "unknown" for f in facts.values()
    )
    crossed = [wid for wid, f in facts.items() if len(f["versions"]) > 1]
    failures = [
        {"workflow_id": wid, **failure} for wid, f in facts.items() for failure in f["failures"]
    ]
    return {
        "in_flight_at_switch": per_switch,
        "sagas_across": len(sagas),
        "still_running": len(running),
        "histories_read": len(sample),
        "ran_on": dict(ran_on),
        "crossed_versions": len(crossed),
        "crossed_examples": crossed[:5],
        "workflow_task_failures": len(failures),
        "nondeterminism": sum(1 for f in failures if "NON_DETERMINISTIC" in f["cause"]),
        "failure_examples": failures[:5],
    }


def _task_facts(events: Any) -> dict[str, Any]:
    """Versions of the workers that completed a saga's workflow tasks, and its failed tasks."""
    from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause

    versions: set[int] = set()
    failures: list[dict[str, Any]] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            v = version_of(event.workflow_task_completed_event_attributes.identity)
            if v is not None:
                versions.add(v)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            failures.append(
                {
                    "cause": WorkflowTaskFailedCause.Name(attrs.cause),
                    "message": attrs.failure.message[:300],
                    "identity": attrs.identity,
                }
            )
    return {"versions": versions, "failures": failures}


RUNNING_SAGAS = "WorkflowType='OrderSaga' AND ExecutionStatus='Running'"


async def temporal_client(endpoints: Endpoints) -> Any:
    from temporalio.client import Client

    return await asyncio.wait_for(
        Client.connect(endpoints.temporal_address, namespace=endpoints.temporal_namespace), 5
    )


async def count_workflows(endpoints: Endpoints, query: str) -> int:
    """How many workflows Temporal's visibility counts for `query`."""
    client = await temporal_client(endpoints)
    return int((await client.count_workflows(query)).count)


async def _pollers_async(endpoints: Endpoints) -> list[dict[str, Any]]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    client = await temporal_client(endpoints)
    queue = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=endpoints.temporal_namespace,
            task_queue=TaskQueue(name=endpoints.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = time.time()
    out = []
    for p in queue.pollers:
        seen = p.last_access_time.ToDatetime(tzinfo=UTC).timestamp()
        out.append(
            {
                "identity": p.identity,
                "version": version_of(p.identity),
                "last_access": round(seen, 3),
                "recent": now - seen < 60,
            }
        )
    return out


def pollers(endpoints: Endpoints) -> list[dict[str, Any]]:
    try:
        return run_async(_pollers_async(endpoints))
    except Exception as exc:  # Temporal unreachable: no pollers seen
        return [{"identity": "", "version": None, "error": f"{type(exc).__name__}: {exc}"}]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
