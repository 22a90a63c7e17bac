"""Chaos Toolkit rollbacks: put the stack back as it was, whatever the method got to do.

They run with the rollback strategy `always` (after a deviation, an error, Ctrl-C or a
safeguard abort), so each is idempotent: a second run, or a run after the action already undid
its own fault, finds nothing to do and says so. Each also closes the fault windows an
interrupted action left open, so faults.jsonl still gets their lines.
"""

from __future__ import annotations

from typing import Any, TypeGuard, cast

from harness.chaos.context import chaos_context, number, service_name
from harness.chaos.faults import close_open_windows
from harness.chaos.redis_memory import restore_memory
from harness.platforms.base import (
    NETWORK_FAULTS,
    SERVICES,
    Partition,
    Pause,
    Platform,
    ReplyLoss,
)

__all__ = [
    "ensure_stack_ready",
    "heal_network",
    "restore_redis_maxmemory",
    "resume_services",
    "start_service",
]

_DOWN = ("STOPPED", "EXITED", "FATAL", "BACKOFF")  # supervisord; a stopped pod is no pod at all
# Windows of a lowered memory limit end when the limit is restored, not when services run.
MEMORY_ACTIONS = ("exhaust_redis_memory", "lower_redis_maxmemory")
NETWORK_ACTIONS = ("partition_service", "lose_replies")


def restore_redis_maxmemory(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put back the `maxmemory` an action saved before lowering it, remove filler keys, and
    prove Redis accepts writes again. Restoring twice is fine."""
    return restore_memory(chaos_context(configuration))


def resume_services(
    services: list[str] | None = None, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Let every frozen replica of `services` (all by default) go again (SIGCONT), also those a
    crashed action left frozen, and close their pause windows."""
    ctx = chaos_context(configuration)
    if not isinstance(ctx.platform, Pause):
        return {"resumed": [], "note": "no process can be frozen on this platform"}
    names = [service_name(s) for s in services] if services else [None]
    resumed = [name for service in names for name in ctx.platform.resume(service)]
    closed = [
        w
        for service in names
        for w in close_open_windows(
            ctx.run_dir, service, "rollback resume_services", only_actions=("pause_service",)
        )
    ]
    return {"resumed": resumed, "windows_closed": len(closed)}


def heal_network(
    services: list[str] | None = None, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Remove every partition and lost-reply rule of `services` (all by default), with what
    each dropped, also those a crashed action left in place. Healing twice is fine."""
    ctx = chaos_context(configuration)
    if not _can_heal(ctx.platform):
        return {"healed": [], "note": "no network fault can exist on this platform"}
    names = [service_name(s) for s in services] if services else [None]
    healed = [f.as_dict() for service in names for f in ctx.platform.heal(service)]
    closed = [
        w
        for service in names
        for w in close_open_windows(
            ctx.run_dir, service, "rollback heal_network", only_actions=NETWORK_ACTIONS
        )
    ]
    return {"healed": healed, "windows_closed": len(closed)}


def start_service(
    service: str, wait_s: float = 120, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Start `service` if any replica is down (after an outage) and wait until it is ready."""
    ctx = chaos_context(configuration)
    service = service_name(service)
    wait = number(wait_s, "wait_s", minimum=0)
    status = ctx.platform.status()
    down = [r.name for r in status if r.service == service and r.state.upper() in _DOWN]
    if down or not _has_replicas(status, service):
        ctx.platform.start(service, wait)
    ctx.platform.wait_ready((service,), wait)
    closed = close_open_windows(
        ctx.run_dir, service, "rollback start_service", skip_actions=MEMORY_ACTIONS
    )
    return {"service": service, "started": down, "ready": True, "windows_closed": len(closed)}


def ensure_stack_ready(
    services: list[str] | None = None,
    wait_s: float = 180,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start whatever is down among `services` (all by default), wait until every one is
    ready, and close every fault window still open."""
    ctx = chaos_context(configuration)
    names = tuple(service_name(s) for s in (services or SERVICES))
    wait = number(wait_s, "wait_s", minimum=0)
    # a frozen or cut-off service is not ready either
    resumed = ctx.platform.resume(None) if isinstance(ctx.platform, Pause) else []
    healed = ctx.platform.heal(None) if _can_heal(ctx.platform) else []
    status = ctx.platform.status()
    started = []
    for service in names:
        if any(
            r.service == service and r.state.upper() in _DOWN for r in status
        ) or not _has_replicas(status, service):
            ctx.platform.start(service, wait)
            started.append(service)
    ctx.platform.wait_ready(names, wait)
    closed = close_open_windows(
        ctx.run_dir, None, "rollback ensure_stack_ready", skip_actions=MEMORY_ACTIONS
    )
    return {
        "started": started,
        "resumed": resumed,
        "healed": [f.as_dict() for f in healed],
        "ready": list(names),
        "windows_closed": len(closed),
    }


def _can_heal(platform: Any) -> TypeGuard[Partition | ReplyLoss]:
    """Whether the platform has network faults that could be in place (a rule, a policy)."""
    if not isinstance(platform, Partition | ReplyLoss):
        return False
    unsupported = cast(Platform, platform).unsupported
    return not all(unsupported(kind) for kind in NETWORK_FAULTS)


def _has_replicas(status: list[Any], service: str) -> bool:
    """On Kubernetes a service scaled to 0 has no pod at all."""
    return any(r.service == service for r in status)
