"""Build a realistic, deterministic run folder for the report tests (and its screenshot).

About 540 orders over three minutes from two clients, two chaos experiments (a payment
kill that stalls captures for ~7 s, and 20 s of Redis memory pressure that stalls every
event append), a verdict with one failing invariant (three lost orders), one unknown
invariant and one missed threshold. Everything comes from one seeded RNG, so two calls
write byte-identical folders.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import keys
from harness.runs import RunFolder, write_json, write_jsonl
from system_under_test.ids import notification_id_for, order_id_for, payment_id_for

__all__ = ["T0", "Layout", "make_run_folder"]

T0 = 1763769000.0  # 2025-11-21 23:50:00 UTC
LOAD = (5.0, 185.0)
PAYMENT_DOWN = (60.0, 67.0)  # kill at 60.0-60.4, the replica is back at 67
REDIS_FULL = (110.0, 130.0)
TIMEOUT_S = 5.0


@dataclass
class Layout:
    """What make_run_folder wrote, so tests can assert on it."""

    run_dir: Path
    lost: list[str] = field(default_factory=list)  # told accepted, never placed
    stuck: list[str] = field(default_factory=list)  # placed, never terminal
    orders: int = 0


def _after(t: float, window: tuple[float, float], rng: random.Random) -> float:
    """A step due inside a blocked window runs when the window ends, plus retry backoff."""
    if window[0] <= t < window[1]:
        return window[1] + rng.uniform(0.2, 6.0)
    return t


def _saga(rng: random.Random, oid: str, placed: float, amount: int, stuck: bool) -> list[tuple]:
    """The (t, type, extra) events of one order, delayed by the faults it runs into."""
    steps: list[tuple] = []
    t = _after(placed, REDIS_FULL, rng)
    steps.append((t, "OrderPlaced", {"amount_cents": str(amount), "currency": "EUR"}))
    t = _after(t + rng.uniform(0.02, 0.06), REDIS_FULL, rng)
    roll = rng.random()
    if roll < 0.05:
        steps.append((t, "OrderCancelled", {"reason": "out_of_stock"}))
        return steps
    steps.append((t, "InventoryReserved", {}))
    t = _after(t + rng.uniform(0.08, 0.25), PAYMENT_DOWN, rng)
    t = _after(t, REDIS_FULL, rng)
    if roll < 0.08:
        steps.append((t, "PaymentDeclined", {"reason": "card_declined"}))
        t = _after(t + 0.03, REDIS_FULL, rng)
        steps.append((t, "InventoryReleased", {}))
        steps.append((t + 0.02, "OrderCancelled", {"reason": "payment_declined"}))
        return steps
    steps.append((t, "PaymentCaptured", {"payment_id": payment_id_for(oid)}))
    if stuck:
        return steps
    if roll < 0.095:  # committing failed for good: the saga refunds and releases
        steps.append((t + 0.4, "PaymentRefunded", {"amount_cents": str(amount)}))
        steps.append((t + 0.45, "InventoryReleased", {}))
        steps.append((t + 0.5, "OrderCancelled", {"reason": "ActivityError"}))
        return steps
    t = _after(t + rng.uniform(0.02, 0.05), REDIS_FULL, rng)
    steps.append((t, "InventoryCommitted", {}))
    t = _after(t + rng.uniform(0.02, 0.05), REDIS_FULL, rng)
    steps.append((t, "OrderCompleted", {"amount_cents": str(amount)}))
    steps.append((t + rng.uniform(0.03, 0.2), "NotificationSent", {"notification_id": "ntf"}))
    return steps


def _latency(rng: random.Random, t: float) -> float:
    base = rng.lognormvariate(-3.4, 0.35)  # ~35 ms
    if PAYMENT_DOWN[0] <= t < PAYMENT_DOWN[0] + 3:
        base *= 2.5
    if REDIS_FULL[0] <= t < REDIS_FULL[1]:
        base *= rng.uniform(4, 20)
    return base


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


def make_run_folder(
    root: Path,
    *,
    run_id: str = "20251121-235000-nightly",
    seed: int = 7,
    verdict: bool = True,
    ledger: bool = True,
    journals: bool = True,
    incomplete: bool = False,
) -> Layout:
    rng = random.Random(seed)
    run_dir = root / run_id
    layout = Layout(run_dir=run_dir)
    ledgers: dict[str, list[dict[str, Any]]] = {"c1": [], "c2": []}
    events: list[tuple] = []
    t = LOAD[0]
    n = 0
    while t < LOAD[1]:
        t += rng.expovariate(3.0)
        n += 1
        client = "c1" if n % 2 else "c2"
        key = f"{seed:02d}{n:06d}" + f"{rng.getrandbits(32):08x}"
        oid = order_id_for(key)
        amount = rng.randrange(500, 25000)
        rows = ledgers[client]
        common = {
            "idempotency_key": key,
            "order_id": oid,
            "customer_id": f"cus-{rng.randrange(1, 2000):05d}",
            "amount_cents": amount,
            "currency": "EUR",
            "items": rng.randint(1, 4),
        }
        lost = n in (371, 388)  # told accepted during the Redis fault, never placed
        timed_out = REDIS_FULL[0] + 6 <= t < REDIS_FULL[1] - 4 and rng.random() < 0.25
        sent = t
        attempt = 1
        if timed_out:
            rows.append(
                {
                    **common,
                    "seq": len(rows) + 1,
                    "op_id": f"{client}-{len(rows) + 1}",
                    "attempt": 1,
                    "sent_at": T0 + sent,
                    "answered_at": T0 + sent + TIMEOUT_S,
                    "status": None,
                    "outcome": "unknown",
                    "error": "ReadTimeout",
                }
            )
            sent += TIMEOUT_S + 0.5
            attempt = 2
        lat = _latency(rng, sent)
        rows.append(
            {
                **common,
                "seq": len(rows) + 1,
                "op_id": f"{client}-{len(rows) + 1}",
                "attempt": attempt,
                "sent_at": round(T0 + sent, 4),
                "answered_at": round(T0 + sent + lat, 4),
                "status": 202,
                "outcome": "ok",
                "error": None,
            }
        )
        if lost:
            layout.lost.append(oid)
            continue
        stuck = n == 455
        if stuck:
            layout.stuck.append(oid)
        for at, typ, extra in _saga(rng, oid, sent + lat + 0.01, amount, stuck):
            events.append((at, oid, typ, extra))
    layout.orders = n
    events.sort(key=lambda e: e[0])

    folder = RunFolder(run_dir)
    folder.streams_dir.mkdir(parents=True, exist_ok=True)
    if ledger:
        for client, rows in ledgers.items():
            write_jsonl(folder.client_ledger(client), rows)
    stream_rows = []
    last_ms = 0
    for i, (at, oid, typ, extra) in enumerate(events):
        ms = max(int((T0 + at) * 1000), last_ms)
        last_ms = ms
        fields = {"type": typ, "order_id": oid, "event_id": f"{oid}:{typ}", "ts": str(ms)}
        if typ == "NotificationSent":
            extra = {"notification_id": notification_id_for(oid)}
        fields.update(extra)
        stream_rows.append({"id": f"{ms}-{i % 3}", "fields": fields})
    write_jsonl(folder.stream(keys.EVENTS), stream_rows)

    faults = [
        {
            "experiment": "kill-payment-pods",
            "action": "kill_replicas",
            "target": "payment-service",
            "started_at": T0 + 60.0,
            "ended_at": T0 + 60.4,
            "landed": True,
            "evidence": {
                "killed": [{"name": "payment-service_00", "old_pid": 41231, "new_pid": 41877}]
            },
        },
        {
            "experiment": "redis-memory-pressure",
            "action": "fill_redis_memory",
            "target": "redis",
            "started_at": T0 + REDIS_FULL[0],
            "ended_at": T0 + REDIS_FULL[1],
            "landed": True,
            "evidence": {"used_memory_peak_mb": 64.0, "maxmemory_mb": 64, "oom_rejections": 412},
        },
    ]
    write_jsonl(folder.faults, faults)

    phases = [
        {"name": "up", "started_at": T0 - 20.0, "ended_at": T0},
        {"name": "load", "started_at": T0 + LOAD[0], "ended_at": T0 + LOAD[1]},
        {"name": "drain", "started_at": T0 + LOAD[1], "ended_at": T0 + 215.0},
    ]
    write_json(
        RunFolder(run_dir).run_json,
        {
            "run_id": run_id,
            "started_at": T0,
            "ended_at": None if incomplete else T0 + 220.0,
            "platform": "local",
            "suite": "scenarios/suites/nightly.yaml",
            "profile": "flat",
            "compress": 24,
            "seed": seed,
            "drain_deadline_s": 120,
            "incomplete": incomplete,
            "phases": phases,
            "endpoints": {
                "order_api": "http://127.0.0.1:18080",
                "temporal_ui": "http://127.0.0.1:18233",
                "temporal_namespace": "default",
            },
            "versions": {
                "sagaquake": "0.1.0",
                "python": "3.11.2",
                "redis": "7.0.15",
                "temporal": "1.9.1",
                "locust": "2.47.0",
                "chaostoolkit-lib": "1.44.0",
            },
            "machine": {"os": "Linux-6.1.0-x86_64", "cores": 8, "memory_gb": 31.3},
        },
    )
    if journals:
        _write_journals(run_dir)
    _write_artifacts(run_dir)
    if verdict:
        _write_verdict(run_dir, layout, events, ledgers)
    return layout


def _probe(name: str, ok: bool, output: Any, start: str) -> dict[str, Any]:
    return {
        "activity": {
            "type": "probe",
            "name": name,
            "provider": {"type": "python", "module": "harness.chaos.probes", "func": name},
        },
        "output": output,
        "status": "succeeded",
        "tolerance_met": ok,
        "start": start,
        "end": start,
        "duration": 0.01,
    }


def _journal(title: str, action: dict[str, Any], deviated: bool) -> dict[str, Any]:
    before = _probe("completion_rate_per_s", True, 2.9, "2025-11-21T23:50:55+00:00")
    after = _probe("completion_rate_per_s", not deviated, 1.1 if deviated else 3.0, action["end"])
    during = _probe("orders_in_flight", True, 41, action["start"])
    return {
        "chaoslib-version": "1.44.0",
        "platform": "Linux-6.1.0-x86_64",
        "node": "ci-runner-3",
        "experiment": {"title": title, "description": "", "method": [action["activity"]]},
        "start": action["start"],
        "end": action["end"],
        "duration": 42.0,
        "status": "completed",
        "deviated": deviated,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": [before]},
            "during": [{"steady_state_met": True, "probes": [during]}],
            "after": {"steady_state_met": not deviated, "probes": [after]},
        },
        "run": [action],
        "rollbacks": [],
    }


def _write_journals(run_dir: Path) -> None:
    kill = {
        "activity": {
            "type": "action",
            "name": "kill-payment-replicas",
            "provider": {"type": "python", "module": "harness.chaos.actions"},
        },
        "output": {"killed": [{"name": "payment-service_00", "old_pid": 41231, "new_pid": 41877}]},
        "status": "succeeded",
        "start": "2025-11-21T23:51:00+00:00",
        "end": "2025-11-21T23:51:00.400000+00:00",
        "duration": 0.4,
    }
    fill = {
        "activity": {"type": "action", "name": "fill-redis-memory", "provider": {}},
        "output": {"used_memory_peak_mb": 64.0, "oom_rejections": 412},
        "status": "succeeded",
        "start": "2025-11-21T23:51:50+00:00",
        "end": "2025-11-21T23:52:10+00:00",
        "duration": 20.0,
    }
    write_json(
        RunFolder(run_dir).journal("kill-payment-pods"),
        _journal("Payment survives losing a replica", kill, False),
    )
    journal = _journal("Orders survive Redis running out of memory", fill, True)
    journal["rollbacks"] = [
        {
            "activity": {"type": "action", "name": "free-redis-memory"},
            "output": None,
            "status": "succeeded",
            "start": "2025-11-21T23:52:10+00:00",
            "end": "2025-11-21T23:52:10.200000+00:00",
            "duration": 0.2,
        }
    ]
    write_json(RunFolder(run_dir).journal("redis-memory-pressure"), journal)


def _write_artifacts(run_dir: Path) -> None:
    folder = RunFolder(run_dir)
    folder.locust_dir.mkdir(parents=True, exist_ok=True)
    (folder.locust_dir / "stats.csv").write_text("Type,Name,Request Count\nPOST,/orders,560\n")
    folder.locust_report.write_text("<html><body>locust</body></html>\n")
    folder.logs_dir.mkdir(parents=True, exist_ok=True)
    for name in ("order-service_00", "payment-service_00", "saga-worker_00", "redis"):
        (folder.logs_dir / f"{name}.log").write_text(f"{name} started\n")
    folder.platform_dir.mkdir(parents=True, exist_ok=True)
    (folder.platform_dir / "supervisord.conf").write_text("[supervisord]\n")


def _write_verdict(run_dir: Path, layout: Layout, events: list[tuple], ledgers: dict) -> None:
    placed: dict[str, float] = {}
    first_sent: dict[str, float] = {}
    ttt: list[float] = []
    for rows in ledgers.values():
        for r in rows:
            first_sent.setdefault(r["order_id"], r["sent_at"] - T0)
    for at, oid, typ, _ in events:
        placed.setdefault(oid, at)
        if typ in ("OrderCompleted", "OrderCancelled"):
            ttt.append(at - first_sent[oid])
    client = next(r for rows in ledgers.values() for r in rows if r["order_id"] == layout.lost[0])
    examples = [
        {
            "order_id": oid,
            "why": "client told accepted (202); no OrderPlaced in orders:events",
            "client": client if oid == layout.lost[0] else {"order_id": oid, "status": 202},
            "events": [],
        }
        for oid in layout.lost
    ] + [
        {
            "order_id": layout.stuck[0],
            "why": "OrderPlaced but no terminal event before the drain deadline (120 s)",
            "client": {"order_id": layout.stuck[0], "status": 202, "outcome": "ok"},
            "events": [
                {"id": "1763769152000-0", "fields": {"type": "OrderPlaced"}},
                {"id": "1763769152100-0", "fields": {"type": "InventoryReserved"}},
                {"id": "1763769152300-0", "fields": {"type": "PaymentCaptured"}},
            ],
        }
    ]
    n = layout.orders

    def inv(name: str, title: str, status: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "title": title, "status": status, "counts": {"checked": n}, **extra}

    invariants = [
        inv(
            "no_lost_order",
            "No lost order",
            "fail",
            counts={"checked": n, "violations": 3},
            counterexamples=examples,
            first=examples[0],
            worst=examples[2],
        ),
        inv("no_phantom_order", "No phantom order", "pass"),
        inv("exactly_once_money", "Exactly-once money", "pass"),
        inv("inventory_conservation", "Inventory conservation", "pass"),
        inv("legal_history", "Legal history", "pass"),
        inv("one_confirmation", "Exactly one confirmation", "pass"),
        inv(
            "temporal_agrees",
            "Temporal agrees with the streams",
            "unknown",
            error="history/temporal.jsonl is missing: the Temporal export failed",
        ),
    ]
    p99 = _pct(ttt, 0.99)
    write_json(
        RunFolder(run_dir).verdict,
        {
            "ok": False,
            "incomplete": False,
            "checked_at": T0 + 230.0,
            "source": "snapshot",
            "counts": {"orders_accepted": n, "events": len(events)},
            "invariants": invariants,
            "metrics": {
                "time_to_terminal_s": {
                    "p50": _pct(ttt, 0.5),
                    "p99": p99,
                    "max": round(max(ttt), 3),
                },
                "recovery": [
                    {
                        "fault": 0,
                        "experiment": "kill-payment-pods",
                        "action": "kill_replicas",
                        "recovery_time_s": 9.8,
                    },
                    {
                        "fault": 1,
                        "experiment": "redis-memory-pressure",
                        "action": "fill_redis_memory",
                        "recovery_time_s": 14.2,
                    },
                ],
            },
            "thresholds": [],
        },
    )
    # what `sagaquake run` decided beside the verdict (docs/run-folder.md)
    write_json(
        RunFolder(run_dir).gate,
        {
            "status": "fail",
            "exit_code": 1,
            "verdict": "fail",
            "suite": "report-fixture",
            "thresholds": [
                {
                    "name": "p99_time_to_terminal_s",
                    "op": "<",
                    "limit": 30,
                    "value": p99,
                    "ok": True,
                },
                {"name": "max_recovery_time_s", "op": "<", "limit": 12, "value": 14.2, "ok": False},
                {"name": "client_error_rate", "op": "<", "limit": 0.02, "value": 0.011, "ok": True},
            ],
            "failed_experiments": [],
            "incomplete": False,
            "problem": None,
            "decided_at": T0 + 231.0,
        },
    )
