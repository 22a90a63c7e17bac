"""Chaos Toolkit actions for the ambiguous faults: a frozen or slow service, a partition, lost replies.

A clean failure (a refused connection) tells the caller nothing happened. These faults leave the
caller not knowing: the request may have been performed, and only a retry finds out. That is
where double charges and lost orders come from, so each action proves it reached that window:

- `pause_service`: the service's processes are frozen (the kernel says so) and a request to it
  connects but gets no answer; `flap_paused_ms`/`flap_every_ms` make it slow instead (paused
  P ms out of every Q ms), with the round-trip times measured while it flaps;
- `partition_service`: a connection to the service times out (not refused);
- `lose_replies`: a request gets through and its answer does not; at the end, the requests the
  service performed during the window whose outcome the saga has still not recorded are listed
  (a charge in payments:ledger without its PaymentCaptured event, say) as the proof that the
  fault reached the ambiguous window.

Each records what the system did meanwhile (events appended by type: were new orders still
placed and reserved?) and undoes its fault when it ends, also on Ctrl-C or a safeguard abort;
the rollbacks `resume_services` and `heal_network` are the safety net.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import redis.exceptions

from harness import keys
from harness.chaos.context import ChaosContext, chaos_context, flag, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow
from harness.chaos.observe import reader
from harness.errors import ConfigError
from harness.live import monitor_for
from harness.platforms.base import Endpoints, Partition, Pause, ReplyLoss

__all__ = [
    "ACTION_PRIMITIVES",
    "flap_cycle",
    "lose_replies",
    "partition_service",
    "pause_service",
    "primitive_of",
    "round_trip",
]

# what each action needs from the platform (Platform.unsupported), so the control can refuse an
# experiment before anything starts
ACTION_PRIMITIVES = {
    "pause_service": "pause",
    "partition_service": "partition",
    "lose_replies": "reply_loss",
    "kill_mid_request": "pause",  # harness.chaos.midrequest freezes before it kills
    "lose_consumer": "pause",  # and before it scales a consumer away
    "versioned_deploy": "side_by_side",  # harness.chaos.blue_green runs new workers beside old
}
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_EXAMPLES = 5


def primitive_of(func: str) -> str | None:
    """The fault primitive an action of this module needs, by its function name."""
    return ACTION_PRIMITIVES.get(func)


# -- actions ----------------------------------------------------------------------------------


def pause_service(
    service: str,
    duration_s: float = 60,
    replicas: int = 0,
    flap_paused_ms: float = 0,
    flap_every_ms: float = 0,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Freeze `replicas` replicas of `service` (0: all) for `duration_s` production seconds, or,
    with `flap_paused_ms` and `flap_every_ms`, freeze them that long out of every period (a
    slow dependency). Proof: the kernel reports them stopped, and a request connects and hangs."""
    service = service_name(service)
    n = int(number(replicas, "replicas", minimum=0)) or None
    paused_ms, every_ms = flap_cycle(flap_paused_ms, flap_every_ms)
    ctx = chaos_context(configuration)
    platform = _pausing(ctx)
    hold = ctx.wall_s(duration_s)
    mode = f"flap {paused_ms:g} ms of every {every_ms:g} ms" if paused_ms else "hang"
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "pause_service", service, mode=mode,
        **ctx.production("duration_s", duration_s),
    )  # fmt: skip
    since_ms = int(time.time() * 1000)
    with window:
        try:
            if paused_ms:
                _flap(ctx, platform, service, n, hold, paused_ms / 1000, every_ms / 1000, window)
            else:
                evidence = platform.pause(service, n)
                _prove_paused(window, service, evidence)
                window.land(
                    paused=[e.as_dict() for e in evidence],
                    request=_expect(ctx, service, "no answer", window),
                )
                _hold(hold)
                window.evidence["during"] = _activity(ctx, since_ms)
        finally:  # also on Ctrl-C or a safeguard abort: the pause ends here
            window.evidence["resumed"] = platform.resume(service)
    return window.record


def flap_cycle(paused_ms: Any, every_ms: Any) -> tuple[float, float]:
    """The flap's (paused, period) in milliseconds; (0, 0) for a plain hang."""
    paused = number(paused_ms, "flap_paused_ms", minimum=0)
    every = number(every_ms, "flap_every_ms", minimum=0)
    if (paused or every) and not 0 < paused < every:
        raise ConfigError(
            f"flap_paused_ms={paused_ms!r} must be above 0 and below flap_every_ms={every_ms!r}"
        )
    return paused, every


def partition_service(
    service: str, duration_s: float = 60, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Cut every caller off from `service` for `duration_s` production seconds: packets to and
    from it are dropped. Proof: a new connection to it times out instead of being refused."""
    return _network_fault("partition", service, duration_s, False, configuration)


def lose_replies(
    service: str,
    duration_s: float = 60,
    require_unheard: bool = False,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Drop every reply of `service` for `duration_s` production seconds: requests arrive and are
    performed, their answers never come. Proof: a request connects and gets no answer; at the
    end, what the service performed during the window that the saga has not recorded yet
    (`require_unheard`: none is a fault that did not land, e.g. because no load ran)."""
    return _network_fault("reply_loss", service, duration_s, require_unheard, configuration)


def _network_fault(
    kind: str,
    service: str,
    duration_s: Any,
    require_unheard: Any,
    configuration: dict[str, Any] | None,
) -> dict[str, Any]:
    ctx = chaos_context(configuration)
    service = service_name(service)
    _require(ctx, kind)
    platform = ctx.platform
    if kind == "partition" and isinstance(platform, Partition):
        inject, heal = platform.partition, platform.heal
    elif kind == "reply_loss" and isinstance(platform, ReplyLoss):
        inject, heal = platform.lose_replies, platform.heal
    else:
        raise ConfigError(f"the {platform.name} platform has no {kind.replace('_', ' ')}")
    hold = ctx.wall_s(duration_s)
    action = "partition_service" if kind == "partition" else "lose_replies"
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, action, service, **ctx.production("duration_s", duration_s)
    )
    since_ms = int(time.time() * 1000)
    with window:
        try:
            fault = inject(service)
            expected = "connect timed out" if kind == "partition" else "no answer"
            window.land(fault=fault.as_dict(), request=_expect(ctx, service, expected, window))
            _hold(hold)
            window.evidence["during"] = _activity(ctx, since_ms)
            if kind == "reply_loss":
                unheard = _unheard(ctx, service, since_ms)
                window.evidence["unheard"] = unheard
                if flag(require_unheard, "require_unheard") and not unheard.get("count"):
                    window.record["landed"] = False
                    raise FaultNotLanded(
                        f"no request to {service!r} was performed while its replies were lost "
                        f"({unheard.get('performed', 0)} performed, all heard of): the fault "
                        "never reached the ambiguous window; run it while load runs"
                    )
        finally:  # also on Ctrl-C or a safeguard abort: the network heals here
            healed = heal(service)
            window.evidence["healed"] = [f.as_dict() for f in healed]
            window.evidence["dropped_packets"] = sum(f.dropped_packets or 0 for f in healed)
    return window.record


# -- proof ------------------------------------------------------------------------------------


def _pausing(ctx: ChaosContext) -> Pause:
    _require(ctx, "pause")
    if not isinstance(ctx.platform, Pause):
        raise ConfigError(f"the {ctx.platform.name} platform cannot pause a service")
    return ctx.platform


def _require(ctx: ChaosContext, primitive: str) -> None:
    why = ctx.platform.unsupported(primitive)
    if why:
        raise ConfigError(f"{primitive.replace('_', ' ')} cannot run on {ctx.platform.name}: {why}")


def _prove_paused(window: FaultWindow, service: str, evidence: list[Any]) -> None:
    running = [e.name for e in evidence if not e.paused]
    if running:
        window.evidence["paused"] = [e.as_dict() for e in evidence]
        window.record["landed"] = False
        raise FaultNotLanded(f"{', '.join(running)} of {service!r} did not stop on SIGSTOP")


def _address(endpoints: Endpoints, service: str) -> tuple[str, int, bytes] | None:
    """Where the harness reaches `service`, and a request it answers at once."""
    http = {
        "order-service": endpoints.order_api,
        "payment-service": endpoints.payment_api,
        "inventory-service": endpoints.inventory_api,
        "notification-service": endpoints.notification_api,
    }
    if service in http:
        url = urlsplit(http[service])
        request = f"GET /healthz HTTP/1.1\r\nHost: {url.hostname}\r\nConnection: close\r\n\r\n"
        return url.hostname or "127.0.0.1", url.port or 80, request.encode()
    if service == "redis":
        url = urlsplit(endpoints.redis_url)
        return url.hostname or "127.0.0.1", url.port or 6379, b"PING\r\n"
    if service == "temporal":
        host, _, port = endpoints.temporal_address.rpartition(":")
        return host, int(port), _H2_PREFACE  # a gRPC server answers with its SETTINGS
    return None  # saga-worker, projection: nothing listens


def round_trip(host: str, port: int, payload: bytes, timeout_s: float = 1.5) -> tuple[str, float]:
    """Send `payload` on a new connection; return the outcome ("answered", "no answer",
    "connect timed out", "refused", "closed", or the error) and the seconds it took."""
    t0 = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except TimeoutError:
        return "connect timed out", time.monotonic() - t0
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}", time.monotonic() - t0
    with sock:
        try:
            sock.sendall(payload)
            outcome = "answered" if sock.recv(1) else "closed"
        except TimeoutError:
            outcome = "no answer"
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
    return outcome, time.monotonic() - t0


def _expect(ctx: ChaosContext, service: str, expected: str, window: FaultWindow) -> dict[str, Any]:
    """A request of the harness's own shows the fault as callers see it (local platform: on
    Kubernetes the NodePort path may not cross the fault, so it is only recorded)."""
    address = _address(ctx.platform.endpoints(), service)
    if address is None:
        return {"expected": expected, "outcome": "not probed: nothing listens"}
    host, port, payload = address
    outcome, took = round_trip(host, port, payload)
    seen = {"address": f"{host}:{port}", "expected": expected, "outcome": outcome,
            "took_s": round(took, 3)}  # fmt: skip
    if outcome != expected and ctx.platform.name == "local":
        window.evidence["request"] = seen
        window.record["landed"] = False
        raise FaultNotLanded(
            f"a request to {service!r} at {host}:{port} ended {outcome!r}, where the fault "
            f"should make it end {expected!r}"
        )
    return seen


def _flap(
    ctx: ChaosContext,
    pausing: Pause,
    service: str,
    count: int | None,
    hold: float,
    paused: float,
    every: float,
    window: FaultWindow,
) -> None:
    """Pause and resume in cycles for `hold` seconds, timing requests to the service meanwhile."""
    address = _address(ctx.platform.endpoints(), service)
    samples: list[tuple[str, float]] = []
    done = threading.Event()

    def sample() -> None:
        while address and not done.is_set():
            samples.append(round_trip(*address, timeout_s=max(2.0, 2 * paused)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, name="flap-sampler", daemon=True)
    since_ms = int(time.time() * 1000)
    end = time.monotonic() + hold
    cycles = 0
    sampler.start()
    try:
        while time.monotonic() < end:
            started = time.monotonic()
            evidence = pausing.pause(service, count)
            if cycles == 0:
                _prove_paused(window, service, evidence)
                window.land(paused=[e.as_dict() for e in evidence])
            cycles += 1
            _hold(min(paused, end - time.monotonic()))
            pausing.resume(service)
            _hold(min(every - (time.monotonic() - started), end - time.monotonic()))
    finally:
        done.set()
        sampler.join(timeout=5)
        window.evidence.update(cycles=cycles, round_trips=_latency(samples))
        window.evidence["during"] = _activity(ctx, since_ms)


def _latency(samples: list[tuple[str, float]]) -> dict[str, Any]:
    answered = sorted(t for outcome, t in samples if outcome == "answered")
    if not answered:
        return {"requests": len(samples), "answered": 0}
    p99 = answered[min(len(answered) - 1, int(len(answered) * 0.99))]
    return {
        "requests": len(samples),
        "answered": len(answered),
        "p50_ms": round(statistics.median(answered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(answered[-1] * 1000, 1),
    }


def _activity(ctx: ChaosContext, since_ms: int) -> dict[str, Any]:
    """What the system still did under the fault since `since_ms`: the order API's answers (the
    run's client ledgers: accepted, refused, unknown) and events appended, by type (were new
    orders placed and reserved?)."""
    accepted = monitor_for(ctx.run_dir).acceptance(time.time() - since_ms / 1000)
    try:
        entries = reader(ctx.platform.endpoints()).xrange(keys.EVENTS, min=since_ms)
    except redis.exceptions.RedisError as exc:
        events: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        events = dict(sorted(Counter(str((f or {}).get("type")) for _, f in entries or []).items()))
    return {"accepted": accepted["ok"], "refused": accepted["failed"],
            "unknown": accepted["unknown"], "events": events}  # fmt: skip


def _unheard(ctx: ChaosContext, service: str, since_ms: int) -> dict[str, Any]:
    """Requests `service` performed since `since_ms` (its own ledger) whose outcome the saga has
    not recorded (no matching event): done, and never heard of."""
    if service not in keys.SERVICE_LEDGERS:
        return {"note": f"{service!r} keeps no ledger of its own to compare"}
    stream, events = keys.SERVICE_LEDGERS[service]
    try:
        client: Any = reader(ctx.platform.endpoints())
        performed = client.xrange(stream, min=since_ms)
        told = {
            (f.get("order_id"), f.get("type")) for _, f in client.xrange(keys.EVENTS, min=since_ms)
        }
    except redis.exceptions.RedisError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    unheard = []
    for entry_id, fields in performed:
        event = events.get(str(fields.get("kind", "")))
        if event and (fields.get("order_id"), event) not in told:
            unheard.append({"order_id": fields.get("order_id"), "kind": fields.get("kind", ""),
                            "entry": entry_id, "missing_event": event})  # fmt: skip
    return {
        "ledger": stream,
        "performed": len(performed),
        "count": len(unheard),
        "examples": unheard[:_EXAMPLES],
    }


def _hold(seconds: float) -> None:
    """Sleep while the fault holds (a signal interrupts it: Ctrl-C, the safeguard)."""
    if seconds > 0:
        time.sleep(seconds)
