"""Generate a realistic, deterministic run folder of N order events for the verifier's benchmark.

Orders arrive at a steady rate from two clients and follow the saga's legal paths: most
complete, ~3% are declined (reserve, decline, release, cancel), ~1% are refunded after a
failed commit, and orders that ask for a scarce SKU once it has sold out are cancelled
out_of_stock. Some requests time out and are retried with the same key, a few are refused
(422) or never answered. Two fault windows delay every saga step due inside them. Every
side is written consistently: the client ledger, orders:events, payments:ledger,
inventory:ledger, notifications:sent, temporal.jsonl, inventory.json, readmodel.jsonl,
faults.jsonl and run.json, so the verifier's verdict on it is "all invariants hold".

    .venv/bin/python benchmarks/gen_history.py /tmp/run --events 1000000 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.ids import order_ids_for
from system_under_test.projection.model import rebuild

__all__ = ["T0", "generate"]

T0 = 1763769000.0
RATE = 60.0  # orders per second (a time-compressed day)
SKUS = [f"SKU-{i:04d}" for i in range(1, 201)]
SCARCE = [f"SKU-9{i:03d}" for i in range(1, 5)]
STOCK, SCARCE_STOCK = 10_000_000, 25
DECLINE, REFUND = 0.03, 0.01
RETRY, REFUSED, NO_ANSWER, SCARCE_ASK = 0.005, 0.003, 0.002, 0.02
FAULTS = (
    (0.3, 5.0, "kill-payment-pods", "payment-service"),
    (0.6, 8.0, "redis-memory-pressure", "redis"),
)


class _Run:
    """The history under construction: streams as (ts ms, tie-break, fields), the rest as
    records. One `saga` call writes every side of one order."""

    def __init__(self, seed: int, windows: list[tuple[float, float]]) -> None:
        self.rng = random.Random(seed)
        self.windows = windows
        self.stock = {s: STOCK for s in SKUS} | {s: SCARCE_STOCK for s in SCARCE}
        self.available = dict(self.stock)
        self.sold = dict.fromkeys(self.stock, 0)
        self.streams: dict[str, list[tuple[int, int, dict[str, str]]]] = {
            name: [] for name in ("orders:events", "payments:ledger", "inventory:ledger")
        }
        self.streams["notifications:sent"] = []
        self.temporal: list[dict[str, Any]] = []
        self.counter = 0
        self.clock = 0.0

    def after_faults(self, t: float) -> float:
        """A step due inside a fault window runs when the window ends, plus retry backoff."""
        for start, end in self.windows:
            if start <= t < end:
                return end + self.rng.uniform(0.2, 3.0)
        return t

    def next_ms(self) -> int:
        self.clock = self.after_faults(self.clock + self.rng.uniform(0.005, 0.04))
        return int(self.clock * 1000)

    def add(self, stream: str, ts: int, **fields: Any) -> None:
        fields["ts"] = ts
        self.streams[stream].append((ts, self.counter, {k: str(v) for k, v in fields.items()}))
        self.counter += 1

    def event(self, oid: str, kind: str, ts: int, **extra: Any) -> None:
        self.add("orders:events", ts, type=kind, order_id=oid, event_id=f"{oid}:{kind}", **extra)

    def saga(
        self, key: str, oid: str, body: dict[str, Any], items: list[dict], sent: float
    ) -> None:
        rng, suffix = self.rng, oid[4:]
        items_json = orjson.dumps(items).decode()
        amount, pay_id = body["amount_cents"], "pay-" + suffix
        money = {"order_id": oid, "payment_id": pay_id, "amount_cents": amount, "currency": "EUR"}
        self.clock = self.after_faults(sent + rng.uniform(0.005, 0.03))
        started = self.clock
        placed = {k: body[k] for k in ("customer_id", "amount_cents", "currency")}
        self.event(oid, "OrderPlaced", int(self.clock * 1000), **placed, items=items_json,
                   idempotency_key=key)  # fmt: skip
        ts = self.next_ms()
        short = [x["sku"] for x in items if self.available[x["sku"]] < x["qty"]]
        if short:
            self.add("inventory:ledger", ts, kind="reject", order_id=oid, items=items_json,
                     reason="out_of_stock", sku=short[0])  # fmt: skip
            self.event(oid, "OrderCancelled", self.next_ms(), reason="out_of_stock")
        else:
            self.move(items, "reserve", oid, items_json, ts)
            self.event(oid, "InventoryReserved", ts, items=items_json)
            ts, outcome = self.next_ms(), rng.random()
            if outcome < DECLINE:
                self.add("payments:ledger", ts, kind="decline", **money,
                         idempotency_key=f"{key}:charge", reason="card_declined")  # fmt: skip
                self.event(oid, "PaymentDeclined", ts, reason="card_declined")
                self.release(items, oid, items_json)
                self.event(oid, "OrderCancelled", self.next_ms(), reason="payment_declined")
            else:
                self.add("payments:ledger", ts, kind="capture", **money,
                         idempotency_key=f"{key}:charge")  # fmt: skip
                self.event(oid, "PaymentCaptured", ts, payment_id=pay_id, amount_cents=amount,
                           currency="EUR")  # fmt: skip
                if outcome < DECLINE + REFUND:
                    ts = self.next_ms()
                    self.add("payments:ledger", ts, kind="refund", **money,
                             refund_id="ref-" + suffix, idempotency_key=f"{key}:refund")  # fmt: skip
                    self.event(oid, "PaymentRefunded", ts, payment_id=pay_id,
                               refund_id="ref-" + suffix, amount_cents=amount)  # fmt: skip
                    self.release(items, oid, items_json)
                    self.event(oid, "OrderCancelled", self.next_ms(), reason="customer_cancelled")
                else:
                    ts = self.next_ms()
                    self.move(items, "commit", oid, items_json, ts)
                    self.event(oid, "InventoryCommitted", ts, items=items_json)
                    self.event(oid, "OrderCompleted", self.next_ms(), amount_cents=amount)
                    ts = self.next_ms()
                    self.add("notifications:sent", ts, notification_id="ntf-" + suffix,
                             order_id=oid, customer_id=body["customer_id"],
                             amount_cents=amount)  # fmt: skip
                    self.event(oid, "NotificationSent", ts, notification_id="ntf-" + suffix)
        self.temporal.append(
            {
                "workflow_id": oid,
                "run_id": f"{rng.getrandbits(128):032x}",
                "status": "COMPLETED",
                "start_time": round(started - 0.004, 6),
                "close_time": round(self.clock + 0.002, 6),
            }
        )

    def move(self, items: list[dict], kind: str, oid: str, items_json: str, ts: int) -> None:
        for x in items:
            if kind == "reserve":
                self.available[x["sku"]] -= x["qty"]
            elif kind == "commit":
                self.sold[x["sku"]] += x["qty"]
            else:
                self.available[x["sku"]] += x["qty"]
        self.add("inventory:ledger", ts, kind=kind, order_id=oid, items=items_json)

    def release(self, items: list[dict], oid: str, items_json: str) -> None:
        ts = self.next_ms()
        self.move(items, "release", oid, items_json, ts)
        self.event(oid, "InventoryReleased", ts, items=items_json)


def generate(n_events: int, seed: int = 7) -> dict[str, Any]:
    """Every part of the history, in memory: lists of JSON-ready records per file."""
    n_orders = max(1, int(n_events / 5.85))
    span = n_orders / RATE
    windows = [(T0 + 5 + f * span, T0 + 5 + f * span + d) for f, d, _, _ in FAULTS]
    run = _Run(seed, windows)
    rng = run.rng
    keys = [f"{seed:x}-{rng.getrandbits(64):016x}-{i:07x}" for i in range(n_orders + 64)]
    order_ids = order_ids_for(keys)
    ledgers: dict[str, list[dict[str, Any]]] = {"c1": [], "c2": []}
    i, t = 0, T0 + 5.0
    while len(run.streams["orders:events"]) < n_events:
        key, oid = keys[i], order_ids[i]
        i += 1
        t += rng.expovariate(RATE)
        items = [
            {"sku": rng.choice(SKUS), "qty": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))
        ]
        if rng.random() < SCARCE_ASK:
            items[0] = {"sku": rng.choice(SCARCE), "qty": 1}
        body = {
            "customer_id": f"cus-{rng.randint(1, 99999):05d}",
            "amount_cents": rng.randint(199, 250_000),
            "currency": "EUR",
            "items": len(items),
        }
        roll, led = rng.random(), ledgers["c1" if i % 2 else "c2"]
        if roll < REFUSED:  # a definite refusal: nothing is written
            led.append(_ledger(led, key, oid, body, 1, t, 422, "failed"))
            continue
        if roll < REFUSED + NO_ANSWER:  # the answer is lost but the order goes through
            led.append(_ledger(led, key, oid, body, 1, t, None, "unknown", 5.0))
        elif roll < REFUSED + NO_ANSWER + RETRY:  # a time-out, then a retry with the same key
            led.append(_ledger(led, key, oid, body, 1, t, None, "unknown", 5.0))
            led.append(_ledger(led, key, oid, body, 2, t + 5.2, 202, "ok"))
        else:
            led.append(_ledger(led, key, oid, body, 1, t, 202, "ok"))
        run.saga(key, oid, body, items, t)
    load_end = t + 1.0
    faults: list[dict[str, Any]] = [
        {
            "experiment": name,
            "action": "kill_replicas" if "kill" in name else "fill_redis_memory",
            "target": target,
            "started_at": round(a, 6),
            "ended_at": round(b, 6),
            "landed": True,
            "evidence": {},
        }
        for (a, b), (_, _, name, target) in zip(windows, FAULTS, strict=True)
    ]
    streams = {name: _with_ids(entries) for name, entries in run.streams.items()}
    views = rebuild((e["id"], e["fields"]) for e in streams["orders:events"])
    readmodel = [{**v, "order_id": o} for o, v in sorted(views.items())]
    reserved = dict.fromkeys(run.stock, 0)
    inventory = {
        "seed": run.stock,
        "available": run.available,
        "reserved": reserved,
        "sold": run.sold,
    }
    meta = {
        "run_id": f"bench-{n_events}-{seed}",
        "started_at": T0,
        "ended_at": load_end + 30,
        "platform": "local",
        "suite": "benchmarks",
        "profile": "flat",
        "seed": seed,
        "drain_deadline_s": 120,
        "incomplete": False,
        "phases": [{"name": "load", "started_at": T0, "ended_at": load_end}],
    }
    return {
        "run": meta,
        "streams": streams,
        "ledgers": ledgers,
        "temporal": run.temporal,
        "inventory": inventory,
        "readmodel": readmodel,
        "faults": faults,
    }


def _ledger(led: list, key: str, oid: str, body: dict, attempt: int, sent: float,
            status: int | None, outcome: str, latency: float = 0.03) -> dict[str, Any]:  # fmt: skip
    seq = len(led) + 1
    return {
        "seq": seq,
        "op_id": f"{key[:6]}-{seq}",
        "idempotency_key": key,
        "order_id": oid,
        **body,
        "attempt": attempt,
        "sent_at": round(sent, 6),
        "answered_at": round(sent + latency, 6) if status is not None else None,
        "status": status,
        "outcome": outcome,
        "error": None if status is not None else "ReadTimeout",
    }


def _with_ids(entries: list[tuple[int, int, dict[str, str]]]) -> list[dict[str, Any]]:
    """Stream order and ids as Redis gives them: `<ms>-<seq>`, increasing."""
    entries.sort(key=lambda e: (e[0], e[1]))
    out = []
    last_ms, seq = -1, 0
    for ts, _, fields in entries:
        ms = max(ts, last_ms)
        seq = seq + 1 if ms == last_ms else 0
        last_ms = ms
        out.append({"id": f"{ms}-{seq}", "fields": fields})
    return out


def write_run(run_dir: Path, parts: dict[str, Any]) -> Path:
    hist = run_dir / "history"
    (hist / "streams").mkdir(parents=True, exist_ok=True)
    (hist / "ledger").mkdir(parents=True, exist_ok=True)

    def lines(path: Path, rows: list[Any]) -> None:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    (run_dir / "run.json").write_bytes(orjson.dumps(parts["run"], option=orjson.OPT_INDENT_2))
    for name, rows in parts["streams"].items():
        lines(hist / "streams" / (name.replace(":", ".") + ".jsonl"), rows)
    for client, rows in parts["ledgers"].items():
        lines(hist / "ledger" / f"client-{client}.jsonl", rows)
    lines(hist / "temporal.jsonl", parts["temporal"])
    (hist / "inventory.json").write_bytes(orjson.dumps(parts["inventory"]))
    lines(hist / "readmodel.jsonl", parts["readmodel"])
    lines(hist / "faults.jsonl", parts["faults"])
    return run_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    parts = generate(args.events, args.seed)
    write_run(args.run_dir, parts)
    n = len(parts["streams"]["orders:events"])
    print(f"wrote {n:,} events ({len(parts['temporal']):,} orders) to {args.run_dir} "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
