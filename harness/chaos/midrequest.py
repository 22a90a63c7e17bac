"""A kill that lands mid-request, with the proof that work was in flight.

Killing a process at a random moment mostly kills it between requests, and then proves only that
it restarts. To kill it *with* work in hand, the replica is frozen first (SIGSTOP), the harness
waits until the kernel holds work for it (a request in its accept queue or unread in a
connection, or for the projection an entry delivered and not acknowledged), and only then
kills it. The callers' requests die unanswered, the projection's entries stay pending for
another consumer to reclaim: the evidence names what was in flight.
"""

from __future__ import annotations

import time
from typing import Any

from harness.chaos.context import ChaosContext, chaos_context, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow
from harness.errors import ConfigError
from harness.platforms.base import HeldWork

__all__ = ["kill_mid_request"]


def kill_mid_request(
    service: str,
    every_s: float = 0,
    for_s: float = 0,
    wait_inflight_s: float = 30,
    wait_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Freeze every replica of `service`, SIGKILL the first that holds work in flight (waiting
    up to `wait_inflight_s` wall-clock seconds for some), let the others go, and wait until the
    killed one is back (`wait_s`); again every `every_s` for `for_s` production seconds (once
    when either is 0). No work in flight within the wait: the fault did not land."""
    ctx = chaos_context(configuration)
    service = service_name(service)
    if not isinstance(ctx.platform, HeldWork):
        raise ConfigError(
            f"kill_mid_request cannot see the work a replica holds on {ctx.platform.name}; "
            "use kill_replicas there"
        )
    every, span = ctx.wall_s(every_s, "every_s"), ctx.wall_s(for_s, "for_s")
    wait_work = number(wait_inflight_s, "wait_inflight_s", minimum=0)
    wait = number(wait_s, "wait_s", minimum=0)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "kill_mid_request", service,
        **ctx.production("every_s", every_s), **ctx.production("for_s", for_s),
    )  # fmt: skip
    kills: list[dict[str, Any]] = []
    with window:
        started = time.monotonic()
        while True:
            kills.append(_one_kill(ctx, service, wait_work, wait, window, kills))
            window.land(kills=kills)
            next_at = started + len(kills) * every
            if every <= 0 or next_at - started >= span:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
    return window.record


def _one_kill(
    ctx: ChaosContext,
    service: str,
    wait_work: float,
    wait: float,
    window: FaultWindow,
    kills: list[dict[str, Any]],
) -> dict[str, Any]:
    platform: Any = ctx.platform
    frozen_at = time.time()
    try:
        paused = platform.pause(service, None)
        deadline = time.monotonic() + wait_work
        while True:
            held = platform.held_work(service)
            busy = {name: work for name, work in held.items() if _holds_work(work)}
            if busy or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        if not busy:
            window.evidence["kills"] = kills
            window.record["landed"] = False
            raise FaultNotLanded(
                f"no replica of {service!r} received work within {wait_work:g} s of being "
                f"frozen ({held}), so a kill would not land mid-request; run it under load"
            )
        victim = sorted(busy)[0]
        at = time.time()
        evidence = platform.kill_replicas([victim], "KILL", wait)[0]
    finally:  # the others (and the victim, were the kill not to happen) go on
        platform.resume(service)
    item = {
        "at": round(at, 3),
        "frozen_s": round(at - frozen_at, 3),
        "frozen": [p.name for p in paused],
        "in_flight": busy[victim],
        **evidence.as_dict(),
    }
    if not evidence.landed:
        window.evidence["kills"] = [*kills, item]
        window.record["landed"] = False
        raise FaultNotLanded(
            f"{victim} of {service!r} did not come back as a new incarnation within {wait:g} s"
        )
    return item


def _holds_work(work: dict[str, Any]) -> bool:
    return bool(work.get("accept_queue") or work.get("unread_bytes") or work.get("pending_entries"))
