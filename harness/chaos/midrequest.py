"""A kill that lands mid-request, with the proof that work was in flight.

Killing a process at a random moment mostly kills it between requests, and then proves only that
it restarts. To kill it *with* work in hand, the replica is frozen first (SIGSTOP), the harness
waits until the kernel holds work for it (a request in its accept queue or unread in a
connection, or for the projection an entry delivered and not acknowledged), and only then
kills it. A replica frozen where no work can reach it (the projection between two reads: no
read outstanding, nothing delivered) is let go for a moment and frozen again, until one is
caught holding work.

Killed still frozen, the replica dies before it read the work; but the bugs that lose data
live *inside* the handling (acknowledged and not yet applied, charged and not yet recorded). So
the kills take turns (`KILL_MODES`): `held`, killed frozen, before it read the work; `taken`, let
run in steps of STEP_MS until the work it held changes (it read the request, acknowledged the
entries: its first visible move), then killed right there; `slice`, let run for a random slice
(log-uniform from MIN_SLICE_MS to `run_ms`: every time scale of a handler is as likely), frozen
again and killed. The callers' requests die unanswered, the projection's entries stay pending
for the restarted consumer: the evidence names what was in flight, the mode, and how long the
replica ran with it.
"""

from __future__ import annotations

import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.chaos.context import ChaosContext, chaos_context, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow
from harness.errors import ConfigError
from harness.platforms.base import HeldWork, Platform

__all__ = ["kill_mid_request", "lose_consumer", "run_slice_ms"]

REFREEZE_S = 2.0  # frozen this long with no work in reach: let it run a moment, freeze again
THAW_S = 0.05
CONSUMER_REFREEZE_S = 0.05  # a stream consumer: no blocking read outstanding, try again
MIN_SLICE_MS = 0.1
STEP_MS = 0.2
KILL_MODES = ("held", "taken", "slice")


def kill_mid_request(
    service: str,
    every_s: float = 0,
    for_s: float = 0,
    wait_inflight_s: float = 30,
    wait_s: float = 60,
    run_ms: float = 20,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Freeze every replica of `service`, SIGKILL the first that holds work in flight (waiting
    up to `wait_inflight_s` wall-clock seconds for some) after letting it run on for a random
    slice of at most `run_ms` (0: killed before it reads the work), let the others go, and wait
    until the killed one is back (`wait_s`); again every `every_s` for `for_s` production
    seconds (once when either is 0). No work in flight within the wait: the fault did not land."""
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
    slice_max = number(run_ms, "run_ms", minimum=0)
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "kill_mid_request", service,
        **ctx.production("every_s", every_s), **ctx.production("for_s", for_s), run_ms=slice_max,
    )  # fmt: skip
    kills: list[dict[str, Any]] = []
    with window:
        started = time.monotonic()
        while True:
            mode = KILL_MODES[len(kills) % len(KILL_MODES)] if slice_max > 0 else "held"
            ran_ms = run_slice_ms(slice_max, random.random()) if mode == "slice" else slice_max
            kills.append(_one_kill(ctx, service, wait_work, wait, mode, ran_ms, window, kills))
            window.land(kills=kills)
            next_at = started + len(kills) * every
            # within `for_s` of wall clock: a replica slow to come back means fewer kills, never
            # kills after the window (when the load that gives it work may be over)
            if every <= 0 or next_at - started >= span or time.monotonic() - started >= span:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
    return window.record


def run_slice_ms(run_ms: float, where: float) -> float:
    """A `slice` kill's run time from a uniform draw in [0, 1): log-uniform between
    MIN_SLICE_MS and `run_ms`, so a 0.3 ms window is hit about as often as a 10 ms one."""
    if run_ms <= MIN_SLICE_MS:
        return max(0.0, run_ms)
    return MIN_SLICE_MS * math.exp(where * math.log(run_ms / MIN_SLICE_MS))


def _one_kill(
    ctx: ChaosContext,
    service: str,
    wait_work: float,
    wait: float,
    mode: str,
    ran_ms: float,
    window: FaultWindow,
    kills: list[dict[str, Any]],
) -> dict[str, Any]:
    platform: Any = ctx.platform
    frozen_at = time.time()
    try:
        paused, held, busy = _freeze_holding_work(platform, service, wait_work)
        if not busy:
            window.evidence["kills"] = kills
            window.record["landed"] = False
            raise FaultNotLanded(
                f"no replica of {service!r} received work within {wait_work:g} s of being "
                f"frozen ({held}), so a kill would not land mid-request; run it under load"
            )
        victim = sorted(busy)[0]
        ran_for_ms, steps = 0.0, 0
        if mode == "slice":
            ran_for_ms = platform.nudge(service, ran_ms)
        elif mode == "taken":  # step until its first visible move on the work, at most ran_ms
            while ran_for_ms < ran_ms and not _taken(
                busy[victim], platform.held_work(service).get(victim, {})
            ):
                ran_for_ms += platform.nudge(service, STEP_MS)
                steps += 1
        at = time.time()
        # the others go on as soon as the victim is dead, not once it is back: a replica's
        # restart must not freeze the whole service
        evidence = platform.kill_replicas(
            [victim], "KILL", wait, on_signalled=lambda: platform.resume(service)
        )[0]
    finally:  # idempotent: also when the kill did not happen
        platform.resume(service)
    item = {
        "at": round(at, 3),
        "frozen_s": round(at - frozen_at, 3),
        "frozen": [p.name for p in paused],
        "in_flight": busy[victim],
        "mode": mode,
        "ran_ms": round(ran_ms, 3) if mode != "held" else 0.0,  # the slice, or the steps' limit
        "ran_for_ms": round(ran_for_ms, 3),  # measured: how long it was let run
        "steps": steps,
        **evidence.as_dict(),
    }
    if not evidence.landed:
        window.evidence["kills"] = [*kills, item]
        window.record["landed"] = False
        raise FaultNotLanded(
            f"{victim} of {service!r} did not come back as a new incarnation within {wait:g} s"
        )
    return item


def _freeze_holding_work(
    platform: Any, service: str, wait_work: float, only: str | None = None
) -> tuple[list[Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Freeze every replica until one (`only` that one, when given) holds work, for at most
    `wait_work` seconds: frozen REFREEZE_S with nothing in reach, they run for THAW_S and are
    frozen again. Returns what was frozen, what each held, and the replicas holding work
    (empty: none within the wait)."""
    deadline = time.monotonic() + wait_work
    while True:
        paused = platform.pause(service, None)
        # A stream consumer gets entries while frozen only when it was frozen inside a blocking
        # read; one that lingers between reads (batching) holds them only while it applies a
        # batch. So a consumer with nothing in hand is thawed and frozen again at once, sampling
        # its cycle many times a second, where a server's kernel queue is given time to fill.
        held = platform.held_work(service)
        consumer = bool(held) and all("pending_entries" in work for work in held.values())
        cycle_end = min(
            deadline, time.monotonic() + (CONSUMER_REFREEZE_S if consumer else REFREEZE_S)
        )
        while True:
            held = platform.held_work(service)
            busy = {
                name: work
                for name, work in held.items()
                if _holds_work(work) and only in (None, name)
            }
            if busy or time.monotonic() >= cycle_end:
                break
            time.sleep(0.01)
        if busy or time.monotonic() >= deadline:
            return paused, held, busy
        platform.resume(service)
        time.sleep(THAW_S)


def _taken(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the replica has moved on the work it held: fewer connections waiting, fewer bytes
    unread, or one of its pending entries acknowledged."""
    fewer = any(
        int(now.get(key) or 0) < int(before.get(key) or 0)
        for key in ("accept_queue", "unread_bytes", "pending_entries")
    )
    return fewer or bool(set(before.get("entries") or ()) - set(now.get("entries") or ()))


def _holds_work(work: dict[str, Any]) -> bool:
    return bool(work.get("accept_queue") or work.get("unread_bytes") or work.get("pending_entries"))


def lose_consumer(
    service: str = "projection",
    wait_inflight_s: float = 30,
    wait_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A consumer that leaves for good with work in hand (a scale-down, a lost node): one more
    replica of `service` is started, frozen once Redis has delivered it entries it has not
    acknowledged (waiting up to `wait_inflight_s`), and scaled away while still frozen, so it
    never runs again. Its consumer name never comes back: only another consumer's reclaim
    (XAUTOCLAIM) can apply those entries, and `read_model_consistent` fails if none does."""
    ctx = chaos_context(configuration)
    service = service_name(service)
    platform: Any = ctx.platform
    if not isinstance(ctx.platform, HeldWork):
        raise ConfigError(
            f"lose_consumer cannot see the entries a replica holds on {ctx.platform.name}"
        )
    wait_work = number(wait_inflight_s, "wait_inflight_s", minimum=0)
    wait = number(wait_s, "wait_s", minimum=0)
    window = FaultWindow(ctx.run_dir, ctx.experiment, "lose_consumer", service)
    with window:
        before = _running(platform, service)
        platform.scale(service, len(before) + 1, wait)
        scaled_down = False
        try:
            added = sorted(set(_running(platform, service)) - set(before))
            if not added:
                raise FaultNotLanded(f"scaling {service!r} up started no new replica")
            victim = added[0]
            paused, held, busy = _freeze_holding_work(platform, service, wait_work, only=victim)
            if not busy:
                window.record["landed"] = False
                raise FaultNotLanded(
                    f"the added replica {victim} of {service!r} received no work within "
                    f"{wait_work:g} s ({held}); run it under load"
                )
            at = time.time()
            _scale_away_frozen(platform, service, len(before), victim, wait)
            scaled_down = True
            if victim in _running(platform, service):
                window.record["landed"] = False
                raise FaultNotLanded(
                    f"scaling {service!r} down left {victim} running (the platform chose "
                    "another replica to remove), so no consumer left with work in hand"
                )
            window.land(
                consumer=victim,
                left_at=round(at, 3),
                scale_down_s=round(time.time() - at, 3),
                frozen=[p.name for p in paused],
                in_flight=busy[victim],
                replicas=len(before),
            )
        finally:
            platform.resume(service)
            if not scaled_down:
                platform.scale(service, len(before), wait)
    return window.record


def _scale_away_frozen(
    platform: Any, service: str, replicas: int, victim: str, wait: float
) -> None:
    """Scale `service` down to `replicas`, removing `victim` while it stays frozen: its stop's
    SIGTERM waits (were it thawed, it would finish its batch and acknowledge it), the SIGKILL
    that follows the stop time-out lands. The others are thawed as soon as the victim is no
    longer running (resume thaws running replicas only), so they are ready again when the
    scale-down waits for them."""
    with ThreadPoolExecutor(1) as pool:
        scaling = pool.submit(platform.scale, service, replicas, wait)
        deadline = time.monotonic() + wait
        while victim in _running(platform, service) and time.monotonic() < deadline:
            if scaling.done():
                break
            time.sleep(0.05)
        platform.resume(service)
        scaling.result()


def _running(platform: Platform, service: str) -> list[str]:
    return sorted(
        r.name for r in platform.status() if r.service == service and r.state == "RUNNING"
    )
