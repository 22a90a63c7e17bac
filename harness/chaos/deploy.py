"""Deploy faults: a changed saga rolled out to the workers while orders are in flight.

A rolling deploy is a fault of its own: every saga in flight across the switch is finished by a
worker running other code than the one that started it, and a change that is not guarded by
`workflow.patched` fails those sagas' workflow tasks with non-determinism, forever (they stay
Running and retry every ~10 s). Which version a worker runs is configuration
(`SAGAQUAKE_SAGA_VERSION`), so the deploy is the platform's `Deploy`: locally each supervised
worker is restarted with the new setting in turn; on Kubernetes the Deployment's environment is
patched and rolled.

Proof that it landed, per replica: a new incarnation (pid / pod) that is ready, and Temporal
seeing it poll the task queue under the new version's identity (`<pid>@<host> saga-v<N>`).
Evidence: which replica ran which version from when, how many sagas were in flight at each
switch, and, from Temporal's histories of those sagas once they finished, which versions
completed their workflow tasks (`ran_on`: `v1`, `v2`, `v1+v2`) and every workflow task that
failed on the way (with its cause and message: a non-determinism is named here first, and
the verifier's `no_nondeterminism` fails the run for it).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from harness.chaos.context import ChaosContext, chaos_context, flag, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow, close_open_windows, read_faults
from harness.errors import ConfigError
from harness.platforms.base import Deploy, DeployEvidence, Endpoints

__all__ = [
    "VERSION_ENV",
    "deploy_task_failures",
    "roll_back_deploy",
    "rolling_deploy",
    "saga_versions",
    "version_of",
]

VERSION_ENV = "SAGAQUAKE_SAGA_VERSION"
VERSIONS = (1, 2)  # the saga versions the system under test knows (docs/system.md)
_IDENTITY = re.compile(r"saga-v(\d+)\s*$")
_MAX_HISTORIES = 400  # sagas whose histories are read for the evidence, at most


def version_of(identity: str) -> int | None:
    """The saga version in a worker's Temporal identity (`<pid>@<host> saga-v2` → 2)."""
    found = _IDENTITY.search(identity or "")
    return int(found.group(1)) if found else None


# -- the action ---------------------------------------------------------------------------------


def rolling_deploy(
    version: int = 2,
    service: str = "saga-worker",
    require_inflight: bool = True,
    wait_inflight_s: float = 30,
    wait_s: float = 120,
    settle_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replace the replicas of `service` one by one with replicas running saga `version`,
    while orders are in flight (waits up to `wait_inflight_s` for one; with none, the deploy
    would prove nothing and the action fails unless `require_inflight` is false). Each replica
    must come back ready within `wait_s` and poll Temporal as the new version. Then waits up to
    `settle_s` (wall-clock) for the sagas in flight across the switch to finish and reads their
    histories for the evidence."""
    ctx = chaos_context(configuration)
    target = _version(version)
    service = service_name(service)
    platform = _deployer(ctx)
    wait = number(wait_s, "wait_s", minimum=0)
    settle = number(settle_s, "settle_s", minimum=0)
    endpoints = ctx.platform.endpoints()
    env = {VERSION_ENV: str(target)}
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "rolling_deploy", service, version=target, env=env,
        before={"deployed_env": platform.deployed_env(service), "pollers": _safe_pollers(endpoints)},
    )  # fmt: skip
    with window:
        window.evidence["in_flight_before"] = _wait_in_flight(
            endpoints,
            flag(require_inflight, "require_inflight"),
            number(wait_inflight_s, "wait_inflight_s", minimum=0),
        )
        replaced = platform.deploy(service, env, wait)
        if not replaced:
            _not_landed(window, f"every replica of {service!r} already runs saga version {target}")
        window.evidence["replicas"] = [_replica(e, target) for e in replaced]
        missing = [e for e in replaced if not e.landed]
        if missing:
            _not_landed(
                window,
                f"{missing[0].name} of {service!r} did not come back ready as version {target} "
                f"within {wait:g} s ({missing[0].extra or 'gone'})",
            )
        polling = _prove_polling(endpoints, replaced, target, min(wait, 30.0))
        window.evidence["polling"] = polling
        silent = [name for name, seen in polling.items() if not seen.get("identity")]
        if silent:
            _not_landed(
                window,
                f"Temporal saw no poller of saga version {target} from {', '.join(silent)} "
                "after the deploy: the new replicas do not run the new version",
            )
        window.land(switches=len(replaced), deployed_env=platform.deployed_env(service))
        window.evidence.update(_across(endpoints, replaced, settle))
    return window.record


def roll_back_deploy(
    version: int = 1,
    service: str = "saga-worker",
    wait_s: float = 180,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Put `service` back on saga `version` (a rolling deploy of the replicas that do not run
    it, without waiting for load), and close the deploy windows an interrupted action left
    open. Idempotent: with every replica on `version` it replaces nothing."""
    ctx = chaos_context(configuration)
    target = _version(version)
    service = service_name(service)
    platform = _deployer(ctx)
    closed = close_open_windows(
        ctx.run_dir, service, "rollback roll_back_deploy", only_actions=("rolling_deploy",)
    )
    # the platform replaces only the replicas that do not run `version` yet
    replaced = platform.deploy(
        service, {VERSION_ENV: str(target)}, number(wait_s, "wait_s", minimum=0)
    )
    failed = [e.name for e in replaced if not e.landed]
    if failed:
        raise FaultNotLanded(
            f"rolling {service!r} back to saga version {target} failed: {', '.join(failed)} "
            "did not come back ready"
        )
    return {
        "version": target,
        "deployed": [_replica(e, target) for e in replaced],
        "windows_closed": len(closed),
    }


def saga_versions(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probe: which saga versions poll Temporal's task queue now (pollers seen in the last
    minute, by version) and what the platform's last deploy set."""
    ctx = chaos_context(configuration)
    pollers = _safe_pollers(ctx.platform.endpoints())
    recent = [p for p in pollers if p.get("recent")]
    by_version = Counter(str(p.get("version")) for p in recent)
    deployed = ctx.platform.deployed_env("saga-worker") if isinstance(ctx.platform, Deploy) else {}
    return {
        "versions": sorted(by_version),
        "pollers_by_version": dict(by_version),
        "mixed": len(by_version) > 1,
        "deployed_env": deployed,
    }


def deploy_task_failures(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probe: workflow tasks that failed in the sagas in flight across this experiment's
    deploys so far (the deploy windows' evidence), non-determinism counted apart. 0 before any
    deploy."""
    ctx = chaos_context(configuration)
    windows = [
        w
        for w in read_faults(ctx.run_dir)
        if w.get("action") == "rolling_deploy" and w.get("experiment") == ctx.experiment
    ]
    evidence = [w.get("evidence") or {} for w in windows]
    return {
        "deploys": len(windows),
        "sagas_across": sum(int(e.get("sagas_across") or 0) for e in evidence),
        "crossed_versions": sum(int(e.get("crossed_versions") or 0) for e in evidence),
        "workflow_task_failures": sum(int(e.get("workflow_task_failures") or 0) for e in evidence),
        "nondeterminism": sum(int(e.get("nondeterminism") or 0) for e in evidence),
        "examples": [x for e in evidence for x in e.get("failure_examples") or []][:5],
    }


# -- helpers ------------------------------------------------------------------------------------


def _deployer(ctx: ChaosContext) -> Deploy:
    if not isinstance(ctx.platform, Deploy):
        raise ConfigError(f"the {ctx.platform.name} platform cannot deploy a changed setting")
    return ctx.platform


def _version(value: Any) -> int:
    version = int(number(value, "version", minimum=1))
    if version not in VERSIONS:
        raise ConfigError(
            f"argument version={value!r} is not a saga version; one of: "
            + ", ".join(map(str, VERSIONS))
        )
    return version


def _not_landed(window: FaultWindow, message: str) -> None:
    window.record["landed"] = False
    raise FaultNotLanded(message)


def _replica(e: DeployEvidence, version: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": e.name,
        "version": version,
        "old_uid": e.old_uid,
        "new_uid": e.new_uid,
        "stopped_at": round(e.stopped_at, 3),
        "ready_at": round(e.ready_at, 3) if e.ready_at else None,
        "landed": e.landed,
        **e.extra,
    }
    if e.old_uid.isdigit():  # local: the uid is the pid
        item["old_pid"] = int(e.old_uid)
        item["new_pid"] = int(e.new_uid) if e.new_uid and e.new_uid.isdigit() else None
    return item


def _wait_in_flight(endpoints: Endpoints, require: bool, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    seen: dict[str, Any] = {}
    while True:
        try:
            seen["running_sagas"] = _run(_count(endpoints, _RUNNING))
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


def _prove_polling(
    endpoints: Endpoints, replaced: list[DeployEvidence], version: int, wait_s: float
) -> dict[str, dict[str, Any]]:
    """Per replaced replica, the Temporal poller that is its new incarnation (matched by pid
    locally, `@<pod name>` on Kubernetes) under the new version's identity, once it polled."""
    deadline = time.monotonic() + wait_s
    found: dict[str, dict[str, Any]] = {e.name: {} for e in replaced}
    while True:
        for poller in _safe_pollers(endpoints):
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


def _across(
    endpoints: Endpoints, replaced: list[DeployEvidence], settle_s: float
) -> dict[str, Any]:
    """The sagas in flight at some switch (started before it, not closed before it), after
    waiting up to `settle_s` for them to finish: per switch how many, and from their histories
    which versions completed their workflow tasks and which tasks failed."""
    switches = [e.stopped_at for e in replaced]
    if not switches:
        return {}
    try:
        return _run(_across_async(endpoints, switches, settle_s))
    except Exception as exc:  # the evidence is best effort; the deploy itself is proven
        return {"across_error": f"{type(exc).__name__}: {exc}"}


async def _across_async(
    endpoints: Endpoints, switches: list[float], settle_s: float
) -> dict[str, Any]:
    client = await _client(endpoints)
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


_RUNNING = "WorkflowType='OrderSaga' AND ExecutionStatus='Running'"


async def _client(endpoints: Endpoints) -> Any:
    from temporalio.client import Client

    return await asyncio.wait_for(
        Client.connect(endpoints.temporal_address, namespace=endpoints.temporal_namespace), 5
    )


async def _count(endpoints: Endpoints, query: str) -> int:
    client = await _client(endpoints)
    return int((await client.count_workflows(query)).count)


async def _pollers(endpoints: Endpoints) -> list[dict[str, Any]]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    client = await _client(endpoints)
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


def _safe_pollers(endpoints: Endpoints) -> list[dict[str, Any]]:
    try:
        return _run(_pollers(endpoints))
    except Exception as exc:  # Temporal unreachable: no pollers seen
        return [{"identity": "", "version": None, "error": f"{type(exc).__name__}: {exc}"}]


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run(coro: Any) -> Any:
    return asyncio.run(coro)
