"""Chaos Toolkit actions: the faults the experiments inject, through the `Platform` protocol only.

Every action proves that its fault landed (a new pid or pod uid, a Redis that really answered
OOM, a service that really stopped answering) and writes its fault window to
`history/faults.jsonl`; a fault it cannot prove raises `FaultNotLanded`, which fails the
experiment. An action that holds a fault (an outage, a memory limit) undoes it itself when it
ends, also when interrupted (Ctrl-C, the safeguard); the rollbacks are the safety net.

Durations that shape a fault (`duration_s`, `every_s`, `for_s`) are production seconds, played
`compress` times faster; `wait_s` time-outs are wall-clock (harness/chaos/context.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import redis.exceptions

from harness import keys
from harness.chaos.context import ChaosContext, chaos_context, flag, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow
from harness.chaos.observe import reader, temporal_view
from harness.chaos.redis_memory import lower_memory, memory_facts, restore_memory
from harness.errors import ConfigError
from harness.platforms.base import KillEvidence, ReplicaStatus

__all__ = [
    "exhaust_redis_memory",
    "kill_replicas",
    "kill_saga_workers",
    "lower_redis_maxmemory",
    "outage",
    "restart_redis",
    "restart_service",
    "restart_temporal",
]

SIGNALS = ("KILL", "TERM", "INT", "QUIT")
_HTTP_ENDPOINT = {
    "order-service": "order_api",
    "payment-service": "payment_api",
    "inventory-service": "inventory_api",
    "notification-service": "notification_api",
}


# -- kills ------------------------------------------------------------------------------------


def kill_replicas(
    service: str,
    count: int = 1,
    signal: str = "KILL",
    every_s: float = 0,
    for_s: float = 0,
    wait_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Kill `count` randomly chosen replicas of `service` with `signal`, again every `every_s`
    for `for_s` (production seconds; once when either is 0). Each kill must bring back a new
    incarnation (new pid / pod uid) within `wait_s`."""
    ctx = chaos_context(configuration)
    return _kill_rounds(
        ctx, "kill_replicas", service_name(service), count, signal, every_s, for_s, wait_s
    )


def kill_saga_workers(
    count: int = 1,
    every_s: float = 0,
    for_s: float = 0,
    require_inflight: bool = True,
    wait_inflight_s: float = 30,
    wait_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILL `count` saga workers while orders are in flight (their activities die mid-way
    and Temporal retries them elsewhere). Before each kill it waits up to `wait_inflight_s`
    for work in flight and records it; with none, the kill would prove nothing and the action
    fails (unless `require_inflight` is false)."""
    ctx = chaos_context(configuration)
    require = flag(require_inflight, "require_inflight")
    wait = number(wait_inflight_s, "wait_inflight_s", minimum=0)
    return _kill_rounds(
        ctx, "kill_saga_workers", "saga-worker", count, "KILL", every_s, for_s, wait_s,
        before_each=lambda: {"in_flight": _wait_in_flight(ctx, require, wait)},
    )  # fmt: skip


def _kill_rounds(
    ctx: ChaosContext,
    action: str,
    service: str,
    count: Any,
    signal: Any,
    every_s: Any,
    for_s: Any,
    wait_s: Any,
    before_each: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    n = int(number(count, "count", minimum=1))
    sig = _signal(signal)
    every, span = ctx.wall_s(every_s, "every_s"), ctx.wall_s(for_s, "for_s")
    wait = number(wait_s, "wait_s", minimum=0)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, action, service, signal=sig, count=n,
        **ctx.production("every_s", every_s), **ctx.production("for_s", for_s),
    )  # fmt: skip
    killed: list[dict[str, Any]] = []
    with window:
        started = time.monotonic()
        rounds = 0
        while True:
            try:
                extra = before_each() if before_each else {}
            except FaultNotLanded:
                window.record["landed"] = False
                raise
            at = time.time()
            evidence = ctx.platform.kill(service, n, sig, wait)
            killed += [_kill_item(e, at, rounds, extra) for e in evidence]
            missing = [e for e in evidence if not e.landed]
            if missing:
                window.evidence["killed"] = killed
                _not_landed(
                    window,
                    f"{missing[0].name} of {service!r} did not come back as a new incarnation "
                    f"within {wait:g} s after SIG{sig} (last seen: {missing[0].extra or 'gone'})",
                )
            window.land(killed=killed, kills=len(killed), rounds=rounds + 1)
            rounds += 1
            next_at = started + rounds * every
            if every <= 0 or next_at - started >= span:
                break
            _hold(next_at - time.monotonic())
    return window.record


def _kill_item(e: KillEvidence, at: float, round_: int, extra: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"round": round_, "at": round(at, 3), **e.as_dict()}
    item["restart_rose"] = e.restarts_after > e.restarts_before
    if e.old_uid.isdigit():  # local: the uid is the pid
        item["old_pid"] = int(e.old_uid)
        item["new_pid"] = int(e.new_uid) if e.new_uid and e.new_uid.isdigit() else None
    item.update(extra)
    return item


def _wait_in_flight(ctx: ChaosContext, require: bool, wait_s: float) -> dict[str, Any]:
    """Wait until orders are in flight (Temporal runs OrderSaga workflows, or the read model
    has orders not yet terminal) and say what was in flight."""
    endpoints = ctx.platform.endpoints()
    deadline = time.monotonic() + wait_s
    seen: dict[str, Any] = {}
    while True:
        try:
            seen["readmodel_inflight"] = int(reader(endpoints).zcard(keys.READMODEL_INFLIGHT))
        except redis.exceptions.RedisError as exc:
            seen["readmodel_error"] = str(exc)
        try:
            view = temporal_view(endpoints, sample=5)
            started = [a for a in view["pending_activities"] if a["state"] == "STARTED"]
            seen.update(
                running_workflows=view["running_workflows"],
                started_activities=len(started),
                pending_activities=view["pending_activities"][:5],
            )
        except Exception as exc:  # Temporal unreachable: the read model alone decides
            seen["temporal_error"] = f"{type(exc).__name__}: {exc}"
        if seen.get("running_workflows") or seen.get("readmodel_inflight"):
            seen["in_flight"] = True
            return seen
        if not require or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    seen["in_flight"] = False
    if require:
        raise FaultNotLanded(
            f"no order was in flight within {wait_s:g} s, so killing a saga worker would hit an "
            "idle process; run the experiment while load runs (or set require_inflight: false)"
        )
    return seen


# -- outages and restarts ----------------------------------------------------------------------


def outage(
    service: str,
    duration_s: float = 60,
    wait_s: float = 120,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Take every replica of `service` down for `duration_s` (production seconds), then bring
    it back and wait until it is ready (`wait_s`). Proof: no replica runs and the service no
    longer answers."""
    ctx = chaos_context(configuration)
    service = service_name(service)
    hold = ctx.wall_s(duration_s)
    wait = number(wait_s, "wait_s", minimum=0)
    before = _running(ctx, service)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "outage", service,
        replicas_before=[_brief(r) for r in before], **ctx.production("duration_s", duration_s),
    )  # fmt: skip
    with window:
        try:
            t0 = time.monotonic()
            ctx.platform.stop(service)
            down = _prove_down(ctx, service, window)
            window.land(down=down, stop_took_s=round(time.monotonic() - t0, 3))
            _hold(hold)
            window.evidence["held_back"] = _backlog(ctx)
        finally:  # also on Ctrl-C or a safeguard abort: the outage ends here
            t1 = time.monotonic()
            ctx.platform.start(service, wait)
            window.evidence["start_took_s"] = round(time.monotonic() - t1, 3)
            window.evidence["replicas_after"] = [_brief(r) for r in _running(ctx, service)]
    return window.record


def restart_service(
    service: str,
    crash: bool = False,
    wait_s: float = 120,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Restart every replica of `service`: gracefully (SIGTERM, then start), or as a crash
    (SIGKILL; the platform brings it back as it would a crashed pod). Proof: every replica
    is a new incarnation (and, for Redis, the server's run_id changed)."""
    ctx = chaos_context(configuration)
    service = service_name(service)
    crashed = flag(crash, "crash")
    wait = number(wait_s, "wait_s", minimum=0)
    before = _running(ctx, service)
    if not before:
        raise FaultNotLanded(f"{service!r} has no running replica to restart")
    facts_before = _facts(ctx, service)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "restart_service", service,
        mode="crash (SIGKILL)" if crashed else "restart (SIGTERM)",
        replicas_before=[_brief(r) for r in before], before=facts_before,
    )  # fmt: skip
    with window:
        if crashed:
            ctx.platform.kill(service, len(before), "KILL", wait)
        else:
            ctx.platform.restart(service, wait)
        ctx.platform.wait_ready((service,), wait)
        after = _running(ctx, service)
        facts_after = _facts(ctx, service)
        window.evidence.update(replicas_after=[_brief(r) for r in after], after=facts_after)
        old = {r.uid for r in before}
        survivors = [r.name for r in after if r.uid in old]
        if survivors or len(after) < len(before):
            _not_landed(
                window,
                f"{service!r} was not restarted: {', '.join(survivors) or 'a replica'} kept its "
                f"old incarnation ({len(after)} of {len(before)} replicas running)",
            )
        run_id = facts_before.get("run_id")
        if service == "redis" and run_id and facts_after.get("run_id") == run_id:
            _not_landed(window, "redis kept its run_id: the server was not restarted")
        survived = _survived(service, facts_before, facts_after)
        window.land(restarts=_restarts(before, after), **survived)
    return window.record


def restart_redis(
    crash: bool = True, wait_s: float = 120, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Restart Redis (by default as a crash: SIGKILL). Its AOF must bring every event back."""
    return restart_service("redis", crash, wait_s, configuration)


def restart_temporal(
    crash: bool = False, wait_s: float = 120, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Restart the Temporal server (gracefully by default); workflows must carry on after it."""
    return restart_service("temporal", crash, wait_s, configuration)


def _running(ctx: ChaosContext, service: str) -> list[ReplicaStatus]:
    """Replicas of `service` that run (supervisord's RUNNING, a pod's Running)."""
    return [r for r in ctx.platform.status() if r.service == service and _is_running(r)]


def _is_running(r: ReplicaStatus) -> bool:
    return r.state.upper() == "RUNNING"


def _brief(r: ReplicaStatus) -> dict[str, Any]:
    return {"name": r.name, "uid": r.uid, "pid": r.pid, "restarts": r.restarts, "ready": r.ready}


def _restarts(before: list[ReplicaStatus], after: list[ReplicaStatus]) -> dict[str, Any]:
    was = {r.name: r.restarts for r in before}
    now = {r.name: r.restarts for r in after}
    return {
        name: {"before": was[name], "after": now[name], "rose": now[name] > was[name]}
        for name in was
        if name in now  # on Kubernetes a Deployment's new pods have new names
    }


def _prove_down(ctx: ChaosContext, service: str, window: FaultWindow) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        still = _running(ctx, service)
        if not still or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if still:
        _not_landed(window, f"{', '.join(r.name for r in still)} still running after the stop")
    down: dict[str, Any] = {"running_replicas": 0}
    endpoint = _HTTP_ENDPOINT.get(service)
    if endpoint:
        url = getattr(ctx.platform.endpoints(), endpoint) + "/healthz"
        try:
            answer = httpx.get(url, timeout=2)
        except httpx.HTTPError as exc:
            down["http"] = f"no answer from {url}: {type(exc).__name__}"
        else:
            _not_landed(window, f"{url} still answered {answer.status_code} after the stop")
    elif service == "redis":
        try:
            ctx.platform.redis("PING")
        except redis.exceptions.RedisError as exc:
            down["redis"] = f"PING failed: {type(exc).__name__}"
        else:
            _not_landed(window, "redis still answered PING after the stop")
    return down


def _backlog(ctx: ChaosContext) -> dict[str, Any]:
    """Orders in flight as the outage ends (what it held back), from the read model."""
    try:
        client: Any = reader(ctx.platform.endpoints())
        oldest = client.zrange(keys.READMODEL_INFLIGHT, 0, 0, withscores=True)
        age = time.time() - float(oldest[0][1]) / 1000 if oldest else 0.0
        return {
            "inflight_orders": int(client.zcard(keys.READMODEL_INFLIGHT)),
            "oldest_age_s": round(age, 3),
        }
    except redis.exceptions.RedisError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _facts(ctx: ChaosContext, service: str) -> dict[str, Any]:
    """What must survive a restart of `service`, measured before and after it."""
    try:
        if service == "redis":
            return {
                "run_id": ctx.platform.redis("INFO", "server")["run_id"],
                "events": int(ctx.platform.redis("XLEN", keys.EVENTS)),
                "keys": int(ctx.platform.redis("DBSIZE")),
            }
        if service == "temporal":
            view = temporal_view(ctx.platform.endpoints())
            return {"workflows": view["workflows"], "running_workflows": view["running_workflows"]}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {}


def _survived(service: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    key = {"redis": "events", "temporal": "workflows"}.get(service)
    if not key or key not in before or key not in after:
        return {}
    return {f"{key}_lost": max(0, before[key] - after[key])}


# -- Redis memory ------------------------------------------------------------------------------


def exhaust_redis_memory(
    duration_s: float = 60,
    mode: str = "lower",
    fraction: float = 0.5,
    fill_mb: float = 16,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make Redis refuse writes with OOM for `duration_s` (production seconds), then restore.

    `mode: lower` sets `maxmemory` to `fraction` of the memory in use; `mode: fill` sets it
    `fill_mb` above the use and fills that with filler keys. Proof: a real write refused with
    `OutOfMemoryError`. The original limit is saved in chaos/state.json first, so the rollback
    `restore_redis_maxmemory` puts it back even from another process."""
    ctx = chaos_context(configuration)
    hold = ctx.wall_s(duration_s)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "exhaust_redis_memory", "redis", mode=mode,
        **ctx.production("duration_s", duration_s),
    )  # fmt: skip
    with window:
        try:
            window.land(**lower_memory(ctx, window, mode, fraction, fill_mb))
            _hold(hold)
        finally:  # also on Ctrl-C or a safeguard abort
            restored = restore_memory(ctx, own_window=window.id)
            window.evidence["restored"] = restored
            if "oom_errors" in window.evidence and "oom_errors" in restored:
                window.evidence["oom_errors_during"] = (
                    restored["oom_errors"] - window.evidence["oom_errors"]
                )
    return window.record


def lower_redis_maxmemory(
    fraction: float = 0.5, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Lower `maxmemory` under the memory in use and leave it there: the fault lasts until the
    rollback `restore_redis_maxmemory` (which closes its window). For methods that do
    something else while Redis refuses writes."""
    ctx = chaos_context(configuration)
    window = FaultWindow(ctx.run_dir, ctx.experiment, "lower_redis_maxmemory", "redis").open()
    try:
        window.land(**lower_memory(ctx, window, "lower", fraction, 0))
    except BaseException as exc:
        window.close(error=f"{type(exc).__name__}: {exc}")
        raise
    return {**window.record, "facts": memory_facts(ctx)}


# -- helpers -----------------------------------------------------------------------------------


def _not_landed(window: FaultWindow, message: str) -> None:
    window.record["landed"] = False
    raise FaultNotLanded(message)


def _hold(seconds: float) -> None:
    """Sleep while the fault holds (a signal interrupts it: Ctrl-C, the safeguard)."""
    if seconds > 0:
        time.sleep(seconds)


def _signal(value: Any) -> str:
    sig = str(value).upper().removeprefix("SIG")
    if sig not in SIGNALS:
        raise ConfigError(f"unknown signal {value!r}; use one of: {', '.join(SIGNALS)}")
    return sig
