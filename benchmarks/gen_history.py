"""Generate a realistic, deterministic run folder of N order events for the verifier's benchmark.

Orders arrive at a steady rate from two clients and follow the saga's legal paths: most
complete, ~3% are declined (reserve, decline, release, cancel), ~1% are refunded after a
failed commit, and orders that ask for a scarce SKU once it has sold out are cancelled
out_of_stock. Some requests time out and are retried with the same key, a few are refused
(422) or never answered. Two fault windows delay every saga step due inside them. Every
side is written consistently: the client ledger, orders:events, payments:ledger,
inventory:ledger, notifications:sent, temporal.jsonl, inventory.json, readmodel.jsonl,
faults.jsonl and run.json, so the verifier's verdict on it is "all invariants hold".

Written as it goes, so that 5M events fit in a few hundred MB: a stream entry waits in a heap
only until no saga still to come can write before it (each saga starts at its arrival, and
arrivals only move forward); the ledgers and temporal.jsonl are written in the order they are
made; only the read model (one line per order, sorted by order id) waits for the end, each
order's view held as its JSON line once its last event is out.

    .venv/bin/python benchmarks/gen_history.py /tmp/run --events 1000000 --seed 7
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.ids import order_ids_for
from system_under_test.projection.model import apply_event

__all__ = ["T0", "generate"]

STREAMS = ("orders:events", "payments:ledger", "inventory:ledger", "notifications:sent")

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


class _Files:
    """The run folder's JSON-lines files, written as the history is made."""

    def __init__(self, run_dir: Path) -> None:
        hist = run_dir / "history"
        (hist / "streams").mkdir(parents=True, exist_ok=True)
        (hist / "ledger").mkdir(parents=True, exist_ok=True)
        self.hist = hist
        self._open: dict[str, IO[bytes]] = {}

    def open(self, rel: str) -> IO[bytes]:
        f = self._open.get(rel)
        if f is None:
            f = self._open[rel] = (self.hist / rel).open("wb", buffering=1 << 20)
        return f

    def line(self, rel: str, record: Any) -> None:
        self.open(rel).write(orjson.dumps(record) + b"\n")

    def close(self) -> None:
        for f in self._open.values():
            f.close()


class _Streams:
    """Stream entries in stream order and with ids as Redis gives them (`<ms>-<seq>`,
    increasing): each waits in a heap of (ts ms, tie-break) until `flush(before_ms)`, once no
    entry to come can have an earlier ts. orders:events is also folded into the read model."""

    def __init__(self, files: _Files) -> None:
        self.files = files
        self.heap: list[tuple[int, int, str, dict[str, str]]] = []
        self.last = {name: (-1, 0) for name in STREAMS}  # per stream: last ms, its seq
        self.written = dict.fromkeys(STREAMS, 0)
        self.left: dict[str, int] = {}  # order id -> its events not written yet
        self.views: dict[str, dict[str, str]] = {}  # orders with events still to come
        self.readmodel: dict[str, str] = {}  # order id -> its read-model line, when done

    def push(self, ts: int, counter: int, stream: str, fields: dict[str, str]) -> None:
        heapq.heappush(self.heap, (ts, counter, stream, fields))
        if stream == "orders:events":
            oid = fields["order_id"]
            self.left[oid] = self.left.get(oid, 0) + 1

    def flush(self, before_ms: float) -> None:
        heap = self.heap
        while heap and heap[0][0] < before_ms:
            ts, _, stream, fields = heapq.heappop(heap)
            last_ms, seq = self.last[stream]
            ms = max(ts, last_ms)
            seq = seq + 1 if ms == last_ms else 0
            self.last[stream] = (ms, seq)
            entry_id = f"{ms}-{seq}"
            self.files.line("streams/" + stream.replace(":", ".") + ".jsonl",
                            {"id": entry_id, "fields": fields})  # fmt: skip
            self.written[stream] += 1
            if stream == "orders:events":
                self._fold(entry_id, fields)

    def _fold(self, entry_id: str, fields: dict[str, str]) -> None:
        oid = fields["order_id"]
        applied = apply_event(self.views.get(oid, {}), entry_id, fields)
        if applied is not None:
            self.views[oid] = applied
        self.left[oid] -= 1
        if not self.left[oid]:  # the order's last event: its view is final
            del self.left[oid]
            view = self.views.pop(oid, None)
            if view is not None:
                # as text: the bytes orjson returns keep its whole 4 KB buffer
                self.readmodel[oid] = orjson.dumps({**view, "order_id": oid}).decode()


class _Run:
    """The history under construction: stream entries go through `_Streams`, the ledgers and
    Temporal's view straight to their files. One `saga` call writes every side of one order."""

    def __init__(self, seed: int, windows: list[tuple[float, float]], files: _Files) -> None:
        self.rng = random.Random(seed)
        self.windows = windows
        self.stock = {s: STOCK for s in SKUS} | {s: SCARCE_STOCK for s in SCARCE}
        self.available = dict(self.stock)
        self.sold = dict.fromkeys(self.stock, 0)
        self.files = files
        self.streams = _Streams(files)
        self.events = 0  # orders:events entries made so far
        self.orders = 0
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
        self.streams.push(ts, self.counter, stream, {k: str(v) for k, v in fields.items()})
        self.counter += 1
        self.events += stream == "orders:events"

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
        self.orders += 1
        self.files.line(
            "temporal.jsonl",
            {
                "workflow_id": oid,
                "run_id": f"{rng.getrandbits(128):032x}",
                "status": "COMPLETED",
                "start_time": round(started - 0.004, 6),
                "close_time": round(self.clock + 0.002, 6),
            },
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


def generate(run_dir: Path, n_events: int, seed: int = 7) -> dict[str, int]:
    """Write every part of the history into `run_dir`; how many events and orders it holds."""
    n_orders = max(1, int(n_events / 5.85))
    span = n_orders / RATE
    windows = [(T0 + 5 + f * span, T0 + 5 + f * span + d) for f, d, _, _ in FAULTS]
    files = _Files(run_dir)
    for rel in [f"streams/{name.replace(':', '.')}.jsonl" for name in STREAMS] + [
        "ledger/client-c1.jsonl", "ledger/client-c2.jsonl", "temporal.jsonl",
    ]:  # fmt: skip
        files.open(rel)  # every file, even one that stays empty
    run = _Run(seed, windows, files)
    rng = run.rng
    keys = [f"{seed:x}-{rng.getrandbits(64):016x}-{i:07x}" for i in range(n_orders + 64)]
    order_ids = order_ids_for(keys)
    seqs = {"c1": 0, "c2": 0}  # per client: its ledger's last seq
    i, t = 0, T0 + 5.0
    try:
        while run.events < n_events:
            key, oid = keys[i], order_ids[i]
            i += 1
            t += rng.expovariate(RATE)
            run.streams.flush(int(t * 1000))  # every saga from here on writes at t or later
            items = [
                {"sku": rng.choice(SKUS), "qty": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 3))
            ]
            if rng.random() < SCARCE_ASK:
                items[0] = {"sku": rng.choice(SCARCE), "qty": 1}
            body = {
                "customer_id": f"cus-{rng.randint(1, 99999):05d}",
                "amount_cents": rng.randint(199, 250_000),
                "currency": "EUR",
                "items": len(items),
            }
            roll, client = rng.random(), "c1" if i % 2 else "c2"
            # the client's requests: (attempt, sent at, HTTP status, outcome, latency)
            sends: list[tuple[int, float, int | None, str, float]]
            if roll < REFUSED:  # a definite refusal: nothing is written
                sends = [(1, t, 422, "failed", 0.03)]
            elif roll < REFUSED + NO_ANSWER:  # the answer is lost but the order goes through
                sends = [(1, t, None, "unknown", 5.0)]
            elif roll < REFUSED + NO_ANSWER + RETRY:  # a time-out, then a retry with the same key
                sends = [(1, t, None, "unknown", 5.0), (2, t + 5.2, 202, "ok", 0.03)]
            else:
                sends = [(1, t, 202, "ok", 0.03)]
            for attempt, sent, status, outcome, latency in sends:
                seqs[client] += 1
                record = _ledger(seqs[client], key, oid, body, attempt, sent, status, outcome,
                                 latency)  # fmt: skip
                files.line(f"ledger/client-{client}.jsonl", record)
            if roll < REFUSED:
                continue
            run.saga(key, oid, body, items, t)
        run.streams.flush(float("inf"))
    finally:
        files.close()
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
    hist = files.hist
    readmodel = run.streams.readmodel
    with (hist / "readmodel.jsonl").open("wb", buffering=1 << 20) as f:
        for oid in sorted(readmodel):
            f.write(readmodel[oid].encode() + b"\n")
    reserved = dict.fromkeys(run.stock, 0)
    inventory = {
        "seed": run.stock,
        "available": run.available,
        "reserved": reserved,
        "sold": run.sold,
    }
    (hist / "inventory.json").write_bytes(orjson.dumps(inventory))
    (hist / "faults.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in faults))
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
    # run.json last: bench_verify takes a folder that has it as complete
    (run_dir / "run.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return {"events": run.streams.written["orders:events"], "orders": run.orders}


def _ledger(seq: int, key: str, oid: str, body: dict, attempt: int, sent: float,
            status: int | None, outcome: str, latency: float = 0.03) -> dict[str, Any]:  # fmt: skip
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    wrote = generate(args.run_dir, args.events, args.seed)
    print(f"wrote {wrote['events']:,} events ({wrote['orders']:,} orders) to {args.run_dir} "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
