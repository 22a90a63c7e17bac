"""Chaos Toolkit probes: what the steady-state hypotheses, the methods and the safeguard measure.

Each returns a small dict (shown in the journal) and changes nothing in the system, with two
deliberate exceptions: `order_api_accepting` places one real canary order, recorded in the
client ledger `history/ledger/client-chaos-probe.jsonl` exactly as a load client records its
orders (so the verifier holds it to the same invariants instead of calling it a phantom), and
`redis_memory` writes one expiring key to find out whether Redis accepts writes.

`within` is a tolerance, not a probe: `tolerance: {type: probe, …, func: within, arguments:
{key: oldest_age_s, at_most: "${max_unsettled_age_s}"}}` checks one field of a probe's output
against a limit taken from the configuration.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from harness import keys
from harness.chaos.context import chaos_context, number, service_name
from harness.chaos.faults import read_faults
from harness.chaos.observe import group_backlog, reader, temporal_view
from harness.chaos.redis_memory import memory_facts, try_write
from harness.live import monitor_for, read_model_view
from harness.load.ledger import ClientLedger, classify
from harness.platforms.base import SERVICES
from harness.runs import RunFolder

__all__ = [
    "CANARY_LEDGER",
    "acceptance_rate",
    "confirmation_paths",
    "inflight_orders",
    "order_api_accepting",
    "process_restarts",
    "redis_memory",
    "services_ready",
    "unsettled_orders",
    "wait_until_projected",
    "wait_until_settled",
    "within",
    "workflow_backlog",
]

CANARY_LEDGER = "chaos-probe"  # history/ledger/client-chaos-probe.jsonl
_LEDGERS: dict[Path, ClientLedger] = {}
_LEDGER_LOCK = threading.Lock()


# -- the order API ------------------------------------------------------------------------------


def order_api_accepting(
    canary: bool = True,
    sku: str = "SKU-0001",
    timeout_s: float = 5,
    attempts: int = 3,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Whether the order API accepts orders. With `canary` (the default) it places one real
    order (retrying a lost answer with the same key, as clients do) and records every attempt in
    the client ledger; without, it only asks `/readyz`."""
    ctx = chaos_context(configuration)
    api = ctx.platform.endpoints().order_api
    timeout = number(timeout_s, "timeout_s", minimum=0.1)
    if not _truthy(canary):
        try:
            answer = httpx.get(f"{api}/readyz", timeout=timeout)
        except httpx.HTTPError as exc:
            return {"accepting": False, "readyz": None, "error": f"{type(exc).__name__}: {exc}"}
        return {"accepting": answer.status_code == 200, "readyz": answer.status_code}
    ledger = _canary_ledger(ctx.run_dir)
    key = f"chaos-probe-{uuid.uuid4().hex}"
    customer, amount, currency = "cus-chaos-probe", 100, "EUR"
    body = {
        "customer_id": customer,
        "items": [{"sku": str(sku), "qty": 1}],
        "amount_cents": amount,
        "currency": currency,
    }
    line: dict[str, Any] = {}
    tries = int(number(attempts, "attempts", minimum=1))
    for attempt in range(1, tries + 1):
        sent = time.time()
        status, payload, error = None, None, None
        try:
            answer = httpx.post(
                f"{api}/orders", json=body, headers={"Idempotency-Key": key}, timeout=timeout
            )
            status = answer.status_code
            try:
                payload = answer.json()
            except ValueError:
                payload = None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        outcome = classify(status, payload)
        line = ledger.record(
            op_id=f"{CANARY_LEDGER}-{ledger.seq + 1}", idempotency_key=key,
            customer_id=customer, amount_cents=amount, currency=currency, items=1,
            attempt=attempt, sent_at=sent,
            answered_at=time.time(), status=status, outcome=outcome,
            error=error or (None if outcome == "ok" else str(payload)[:200]),
        )  # fmt: skip
        if (outcome != "unknown" and status != 503) or attempt == tries:
            break
        time.sleep(0.5 * attempt)  # a lost answer or a 503: retry with the same key
    return {
        "accepting": line.get("outcome") == "ok",
        "status": line.get("status"),
        "order_id": line.get("order_id"),
        "attempts": line.get("attempt"),
        "latency_s": round(line["answered_at"] - line["sent_at"], 3) if line else None,
        "error": line.get("error"),
    }


def _canary_ledger(run_dir: Path) -> ClientLedger:
    path = RunFolder(run_dir).client_ledger(CANARY_LEDGER)
    with _LEDGER_LOCK:
        ledger = _LEDGERS.get(path)
        if ledger is None or not path.exists():
            ledger = _LEDGERS[path] = ClientLedger(path)
        return ledger


def acceptance_rate(
    window_s: float = 30, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the clients of this run (every client ledger) were answered in the last
    `window_s` seconds: requests, ok, failed, unknown and the error ratio (not ok / all; 0
    without requests). Read-only."""
    ctx = chaos_context(configuration)
    return monitor_for(ctx.run_dir).acceptance(number(window_s, "window_s", minimum=0.1))


# -- orders in flight ---------------------------------------------------------------------------


def inflight_orders(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Orders the read model holds as placed but not yet terminal, and the oldest one's age."""
    ctx = chaos_context(configuration)
    view = read_model_view(reader(ctx.platform.endpoints()))
    oldest = view["oldest"]
    return {
        "inflight": view["in_flight"],
        "oldest_age_s": round(oldest[1], 3) if oldest else 0.0,
        "oldest_order": oldest[0] if oldest else None,
    }


def unsettled_orders(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Orders a client was told were accepted (the run's client ledgers) whose last event
    (NotificationSent, or OrderCancelled) is not in the stream yet, and the oldest one's age."""
    ctx = chaos_context(configuration)
    return monitor_for(ctx.run_dir).unsettled(reader(ctx.platform.endpoints()))


def wait_until_settled(
    timeout_s: float = 300, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Wait until every order accepted before this call has settled (the backlog a fault left
    has drained), at most `timeout_s`; say how long that took and how many there were."""
    ctx = chaos_context(configuration)
    timeout = number(timeout_s, "timeout_s", minimum=0)
    watch, client = monitor_for(ctx.run_dir), reader(ctx.platform.endpoints())
    cutoff = time.time()
    started = time.monotonic()
    backlog = None
    while True:
        try:
            seen = watch.unsettled(client, accepted_before=cutoff)
        except Exception as exc:  # Redis coming back: keep waiting
            seen = {"error": f"{type(exc).__name__}: {exc}", "unsettled": -1}
        if backlog is None and seen["unsettled"] >= 0:
            backlog = seen["unsettled"]
        waited = round(time.monotonic() - started, 3)
        if seen["unsettled"] == 0 or waited >= timeout:
            settled = seen["unsettled"] == 0
            return {"settled": settled, "waited_s": waited, "backlog": backlog, **seen}
        time.sleep(0.25)


def wait_until_projected(
    timeout_s: float = 300, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Wait until the projection's consumer group has every entry of orders:events delivered
    and acknowledged (by whichever consumer: a lost consumer's entries count until another
    reclaims them), at most `timeout_s`; say how long that took."""
    ctx = chaos_context(configuration)
    timeout = number(timeout_s, "timeout_s", minimum=0)
    client = reader(ctx.platform.endpoints())
    started = time.monotonic()
    first = None
    while True:
        backlog = group_backlog(client)
        first = backlog if first is None and backlog >= 0 else first
        waited = round(time.monotonic() - started, 3)
        if backlog == 0 or waited >= timeout:
            return {
                "projected": backlog == 0,
                "waited_s": waited,
                "backlog": backlog,
                "first": first,
            }
        time.sleep(0.5)


def workflow_backlog(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Temporal's view: OrderSaga workflows (all, running), the activity task queue's pollers
    (live workers) and backlog."""
    ctx = chaos_context(configuration)
    view = temporal_view(ctx.platform.endpoints())
    view.pop("pending_activities", None)
    return view


# -- the stack ----------------------------------------------------------------------------------


def services_ready(
    services: list[str] | None = None,
    wait_s: float = 10,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Whether every replica of `services` (all by default) runs and answers its readiness,
    now or within `wait_s` (one failed readiness check right after a fault is not a verdict:
    a client's stale connection to a restarted Redis fails once before it reconnects)."""
    ctx = chaos_context(configuration)
    names = [service_name(s) for s in (services or SERVICES)]
    deadline = time.monotonic() + number(wait_s, "wait_s", minimum=0)
    while True:
        replicas = [r for r in ctx.platform.status() if r.service in names]
        missing = [s for s in names if not any(r.service == s for r in replicas)]
        not_ready = [r.name for r in replicas if not r.ready]
        if (not missing and not not_ready) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return {
        "ready": not missing and not not_ready,
        "replicas": len(replicas),
        "not_ready": not_ready + missing,
    }


def process_restarts(
    services: list[str] | None = None, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Restarts per replica of `services` (all by default) as the platform counts them."""
    ctx = chaos_context(configuration)
    names = [service_name(s) for s in (services or SERVICES)]
    replicas = [r for r in ctx.platform.status() if r.service in names]
    return {
        "total": sum(r.restarts for r in replicas),
        "by_replica": {r.name: r.restarts for r in replicas},
    }


def redis_memory(
    check_write: bool = True, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Redis's memory in use, its limit and policy, OOM errors so far, and (with `check_write`)
    whether a write is refused right now."""
    ctx = chaos_context(configuration)
    facts = memory_facts(ctx)
    limit = facts["maxmemory"]
    facts["used_ratio"] = round(facts["used_memory"] / limit, 4) if limit else 0.0
    if _truthy(check_write):
        refused = try_write(ctx)
        facts["writes_refused"] = refused is not None
        facts["refusal"] = refused
    return facts


def confirmation_paths(
    wait_s: float = 60, examples: int = 5, configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Pub/sub against the stream for the orders completed during the last notification-service
    fault of this run folder: how many were confirmed durably (notifications:sent, waiting up
    to `wait_s` for the saga to catch up) and how many a pub/sub-only consumer saw
    (notifications:live_seen). Zeros when there was no such fault."""
    ctx = chaos_context(configuration)
    windows = [
        w
        for w in read_faults(ctx.run_dir)
        if w.get("target") == "notification-service" and w.get("ended_at")
    ]
    if not windows:
        return {"window": None, "completed_during_outage": 0, "lost_by_stream": 0,
                "lost_by_pubsub": 0}  # fmt: skip
    window = windows[-1]
    client: Any = reader(ctx.platform.endpoints())
    start_ms, end_ms = int(window["started_at"] * 1000), int(window["ended_at"] * 1000) + 1
    completed = [
        f["order_id"]
        for _, f in client.xrange(keys.EVENTS, min=start_ms, max=end_ms)
        if f.get("type") == "OrderCompleted"
    ]
    deadline = time.monotonic() + number(wait_s, "wait_s", minimum=0)
    while True:
        pipe = client.pipeline(transaction=False)
        for order_id in completed:
            pipe.hexists(keys.NOTIFICATIONS_INDEX, order_id)
            pipe.sismember(keys.NOTIFICATIONS_LIVE_SEEN, order_id)
        flags = pipe.execute() if completed else []
        unsent = [o for i, o in enumerate(completed) if not flags[2 * i]]
        if not unsent or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    unseen = [o for i, o in enumerate(completed) if not flags[2 * i + 1]]
    n = int(examples)
    return {
        "window": [window["started_at"], window["ended_at"]],
        "completed_during_outage": len(completed),
        "sent_durably": len(completed) - len(unsent),
        "seen_on_pubsub": len(completed) - len(unseen),
        "lost_by_stream": len(unsent),
        "lost_by_pubsub": len(unseen),
        "examples_lost_by_pubsub": unseen[:n],
        "examples_lost_by_stream": unsent[:n],
    }


# -- tolerance ----------------------------------------------------------------------------------


def within(
    value: Any = None,
    key: str = "",
    at_most: Any = None,
    at_least: Any = None,
    equals: Any = None,
) -> bool:
    """Tolerance: whether `value[key]` (dotted path; the value itself without a key) is at most
    `at_most`, at least `at_least` and equal to `equals`, those given."""
    for part in [p for p in str(key or "").split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    if equals is not None and str(value).lower() != str(equals).lower():
        return False
    try:
        if at_most is not None and float(value) > float(at_most):
            return False
        if at_least is not None and float(value) < float(at_least):
            return False
    except (TypeError, ValueError):
        return False
    return True


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
