"""Crafted histories: a consistent run by default, and one call to break exactly one thing.

`HistoryBuilder` plays both sides of a run the way the real system would: each high-level
call (`completed`, `declined`, `out_of_stock`, `refunded`, `in_flight`, `refused`) writes the
client ledger lines, the order events, the payment / inventory / notification ledgers, the
Temporal run and the inventory movements of one order, all consistent. Low-level calls
(`event`, `entry`, `request`, `workflow`) add exactly what a test needs to violate an
invariant. `history()` gives a History in memory; `write(run_dir)` writes a run folder in the
documented format (docs/run-folder.md) for loading tests, and for the report's tests.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History as HistoryProto
from temporalio.client import WorkflowHistory

from harness.runs import RunFolder, write_json, write_jsonl
from harness.verify.histories import decode, encode, write_histories
from harness.verify.history import History, build_history
from system_under_test.ids import notification_id_for, order_id_for, payment_id_for, refund_id_for
from system_under_test.projection.model import rebuild

__all__ = [
    "COMPLETED_PATH",
    "EVENTS",
    "INVENTORY",
    "NOTIFICATIONS",
    "PAYMENTS",
    "T0",
    "HistoryBuilder",
    "Order",
    "example",
]

T0 = 1763769000.0  # 2025-11-21 23:50:00 UTC
RECORDED = Path(__file__).parents[2] / "data" / "histories"  # real OrderSaga histories, by path
EVENTS = "orders:events"
PAYMENTS = "payments:ledger"
INVENTORY = "inventory:ledger"
NOTIFICATIONS = "notifications:sent"
STREAMS = (EVENTS, PAYMENTS, INVENTORY, NOTIFICATIONS)
COMPLETED_PATH = (
    "OrderPlaced",
    "InventoryReserved",
    "PaymentCaptured",
    "InventoryCommitted",
    "OrderCompleted",
    "NotificationSent",
)


def example(result: Any, value: str, key: str = "order_id") -> dict[str, Any]:
    """The counter-example of `result` naming `value` (an order id, or a SKU with key="sku")."""
    for item in result.counterexamples:
        if item.get(key) == value:
            return item
    whys = [(c.get(key), c.get("why")) for c in result.counterexamples]
    raise AssertionError(f"no counter-example for {key}={value!r} in {result.name}: {whys}")


@dataclass
class Order:
    """What a client asked for, and the ids the system derives from its key."""

    key: str
    customer_id: str = "cus-00001"
    amount_cents: int = 1000
    currency: str = "EUR"
    items: list[dict[str, Any]] = field(default_factory=lambda: [{"sku": "SKU-0001", "qty": 1}])

    @property
    def order_id(self) -> str:
        return order_id_for(self.key)

    @property
    def items_json(self) -> str:
        return orjson.dumps(self.items).decode()


class HistoryBuilder:
    """A run's history under construction. Times advance by `step_s` per written line."""

    def __init__(
        self,
        t0: float = T0,
        stock: dict[str, int] | None = None,
        drain_deadline_s: float | None = 120.0,
        step_s: float = 0.01,
    ) -> None:
        self.t0 = t0
        self.now = t0
        self.step_s = step_s
        self.streams: dict[str, list[tuple[str, dict[str, str]]]] = {s: [] for s in STREAMS}
        self.ledger: dict[str, list[dict[str, Any]]] = {}
        self.temporal: list[dict[str, Any]] = []
        self.histories: list[dict[str, Any]] = []  # Temporal's history of each run
        self.requests: list[dict[str, Any]] = []  # history/reprocess.jsonl
        self.orders: dict[str, Order] = {}
        self._path = "completed"  # the recorded history the next workflow() run gets
        self.faults: list[dict[str, Any]] = []
        self.stock = {
            "seed": dict(stock or {"SKU-0001": 100, "SKU-0002": 100, "SKU-0003": 2}),
        }
        self.stock["available"] = dict(self.stock["seed"])
        self.stock["reserved"] = dict.fromkeys(self.stock["seed"], 0)
        self.stock["sold"] = dict.fromkeys(self.stock["seed"], 0)
        self.readmodel_edit: Callable[[list[dict[str, str]]], list[dict[str, str]]] | None = None
        self.run: dict[str, Any] = {
            "run_id": "20251121-235000-test",
            "started_at": t0,
            "platform": "local",
            "suite": "scenarios/suites/smoke.yaml",
            "profile": "flat",
            "seed": 7,
            "incomplete": False,
        }
        if drain_deadline_s is not None:
            self.run["drain_deadline_s"] = drain_deadline_s
        self._last_id: dict[str, tuple[int, int]] = {}
        self._n = 0
        self._seq = 0
        self.load_ended_at: float | None = None

    # ---- clock and raw lines ------------------------------------------------------------

    def tick(self, seconds: float | None = None) -> float:
        self.now += self.step_s if seconds is None else seconds
        return self.now

    def _next_id(self, stream: str) -> str:
        ms = round(self.now * 1000)
        last_ms, last_seq = self._last_id.get(stream, (0, -1))
        seq = last_seq + 1 if ms <= last_ms else 0
        ms = max(ms, last_ms)
        self._last_id[stream] = (ms, seq)
        return f"{ms}-{seq}"

    def entry(self, stream: str, **fields: Any) -> str:
        """Append one entry to `stream` (fields become strings, `ts` defaults to now)."""
        self.tick()
        fields.setdefault("ts", round(self.now * 1000))
        stream_id = self._next_id(stream)
        self.streams.setdefault(stream, []).append(
            (stream_id, {k: str(v) for k, v in fields.items()})
        )
        return stream_id

    def event(self, order_id: str, event_type: str, **fields: Any) -> str:
        """Append one order event with the documented common fields."""
        base = {"type": event_type, "order_id": order_id, "event_id": f"{order_id}:{event_type}"}
        return self.entry(EVENTS, **{**base, **fields})

    def request(
        self,
        order: Order,
        *,
        outcome: str = "ok",
        status: int | None = 202,
        attempt: int = 1,
        client: str = "c1",
        latency_s: float = 0.03,
        error: str | None = None,
        name_order: bool = True,
    ) -> dict[str, Any]:
        """One client ledger line (one HTTP attempt)."""
        self._seq += 1
        sent = self.tick()
        record = {
            "seq": self._seq,
            "op_id": f"{client}-{self._seq}",
            "idempotency_key": order.key,
            "order_id": order.order_id if name_order else order_id_for(order.key),
            "customer_id": order.customer_id,
            "amount_cents": order.amount_cents,
            "currency": order.currency,
            "items": len(order.items),
            "attempt": attempt,
            "sent_at": round(sent, 6),
            "answered_at": round(sent + latency_s, 6) if status is not None else None,
            "status": status,
            "outcome": outcome,
            "error": error,
        }
        self.ledger.setdefault(client, []).append(record)
        self.tick(latency_s)
        return record

    def workflow(
        self, order_id: str, status: str = "COMPLETED", *, run_id: str | None = None
    ) -> dict:
        """One Temporal run of OrderSaga for `order_id`."""
        closed = status != "RUNNING"
        run = {
            "workflow_id": order_id,
            "run_id": run_id or f"run-{order_id[4:12]}-{len(self.temporal)}",
            "status": status,
            "start_time": round(self.now - 0.5, 6),
            "close_time": round(self.now, 6) if closed else None,
        }
        self.temporal.append(run)
        events = list(_recorded(self._path).events)
        if not closed:  # a run in flight: its history so far (started, first task scheduled)
            events = events[:2]
        self.histories.append(
            {
                "workflow_id": order_id,
                "run_id": run["run_id"],
                "workflow_type": "OrderSaga",
                "status": status,
                "history": encode(HistoryProto(events=events)),
            }
        )
        self._path = "completed"
        return run

    def task_failed(
        self,
        order_id: str,
        message: str = "[TMPRL1100] Nondeterminism error: Activity type of recorded marker "
        "'capture_payment' does not match activity type of local activity command 'screen_order'",
        cause: str = "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR",
        identity: str = "4242@host saga-v2",
    ) -> dict[str, Any]:
        """A failed workflow task at the end of the latest history of `order_id`'s saga (its
        record)."""
        record = next(r for r in reversed(self.histories) if r["workflow_id"] == order_id)
        history = decode(record)
        event = history.events.add(
            event_id=len(history.events) + 1,
            event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        )
        event.event_time.FromJsonString("2025-11-21T23:50:30Z")
        attrs = event.workflow_task_failed_event_attributes
        attrs.cause = WorkflowTaskFailedCause.Value(cause)
        attrs.failure.message = message
        attrs.identity = identity
        record["history"] = encode(history)
        return record

    # ---- reprocessing (system_under_test/reprocess) ----------------------------------------

    def correct(self, order: Order, correction_id: str, refund_cents: int) -> str:
        """One price correction of `order`, as the reprocess's script writes it: the adjustment
        in payments:ledger and the PriceCorrected event."""
        oid = order.order_id
        adjustment = f"adj-{oid[4:]}-{correction_id}"
        self.entry(
            PAYMENTS, kind="adjustment", payment_id=payment_id_for(oid), order_id=oid,
            amount_cents=refund_cents, correction_id=correction_id, adjustment_id=adjustment,
            idempotency_key=f"{oid}:correction:{correction_id}",
        )  # fmt: skip
        return self.event(
            oid, "PriceCorrected", event_id=f"{oid}:PriceCorrected:{correction_id}",
            correction_id=correction_id, refund_cents=refund_cents,
            payment_id=payment_id_for(oid), adjustment_id=adjustment,
        )  # fmt: skip

    def reprocess(
        self,
        correction_id: str = "c1",
        percent_bp: int = 500,
        from_: str = "-",
        to: str | None = None,
        runs: int = 2,
        last_status: str = "COMPLETED",
    ) -> dict[str, Any]:
        """A reprocess request (`to` default: the end of orders:events now) and what a correct
        ReprocessOrders does: each order completed in the range corrected once, and its chain
        of `runs` runs (crafted histories: they do not replay)."""
        to = to or self.streams[EVENTS][-1][0]
        request = {
            "correction_id": correction_id, "workflow_id": f"reprocess-{correction_id}",
            "from": from_, "to": to, "percent_bp": percent_bp, "batch_size": 200,
            "batches_per_run": 20, "requested_at": self.now,
        }  # fmt: skip
        self.requests.append(request)
        low = _key(from_)
        high = _key(to)
        done = [
            (sid, f["order_id"]) for sid, f in self.streams[EVENTS]
            if f["type"] == "OrderCompleted" and low <= _key(sid) <= high
        ]  # fmt: skip
        for _, oid in done:
            order = self.orders[oid]
            refund = order.amount_cents * percent_bp // 10_000
            if refund:
                self.correct(order, correction_id, refund)
        self.chain(request["workflow_id"], runs, last_status)
        return request

    def chain(self, workflow_id: str, runs: int, last_status: str = "COMPLETED") -> list[str]:
        """The runs of one ReprocessOrders chain: each continued as new into the next."""
        ids = [f"{workflow_id}-run-{i}" for i in range(runs)]
        for i, run_id in enumerate(ids):
            history = HistoryProto()
            started = history.events.add(
                event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            )
            started.workflow_execution_started_event_attributes.workflow_type.name = (
                "ReprocessOrders"
            )
            if i:
                started.workflow_execution_started_event_attributes.continued_execution_run_id = (
                    ids[i - 1]
                )
            status = "CONTINUED_AS_NEW" if i < runs - 1 else last_status
            if status == "CONTINUED_AS_NEW":
                end = history.events.add(
                    event_id=2,
                    event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
                )
                end.workflow_execution_continued_as_new_event_attributes.new_execution_run_id = ids[
                    i + 1
                ]
            elif status == "COMPLETED":
                history.events.add(
                    event_id=2, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
                )
            self.histories.append(
                {
                    "workflow_id": workflow_id,
                    "run_id": run_id,
                    "workflow_type": "ReprocessOrders",
                    "status": status,
                    "history": encode(history),
                }
            )
        return ids

    def fault(self, started_at: float, ended_at: float, **extra: Any) -> dict[str, Any]:
        record = {
            "experiment": "kill-payment-pods",
            "action": "kill_replicas",
            "target": "payment-service",
            "started_at": started_at,
            "ended_at": ended_at,
            "landed": True,
            "evidence": {},
            **extra,
        }
        self.faults.append(record)
        return record

    # ---- the sides of one saga step ------------------------------------------------------

    def _move(self, order: Order, kind: str) -> None:
        for line in order.items:
            sku, qty = line["sku"], int(line["qty"])
            for name in ("available", "reserved", "sold"):
                self.stock[name].setdefault(sku, 0)
            self.stock["seed"].setdefault(sku, 0)
            if kind == "reserve":
                self.stock["available"][sku] -= qty
                self.stock["reserved"][sku] += qty
            elif kind == "commit":
                self.stock["reserved"][sku] -= qty
                self.stock["sold"][sku] += qty
            elif kind == "release":
                self.stock["reserved"][sku] -= qty
                self.stock["available"][sku] += qty
        self.entry(INVENTORY, kind=kind, order_id=order.order_id, items=order.items_json)

    def _pay(self, order: Order, kind: str, **extra: Any) -> None:
        self.entry(
            PAYMENTS,
            kind=kind,
            payment_id=payment_id_for(order.order_id),
            order_id=order.order_id,
            amount_cents=order.amount_cents,
            currency=order.currency,
            idempotency_key=f"{order.order_id}:{kind}",
            **extra,
        )

    def step(self, order: Order, event_type: str, **extra: Any) -> str:
        """One saga step with its side effects (ledger entries, stock moves) and its event."""
        oid = order.order_id
        if event_type == "OrderPlaced":
            fields = {
                "customer_id": order.customer_id,
                "amount_cents": order.amount_cents,
                "currency": order.currency,
                "items": order.items_json,
                "idempotency_key": order.key,
            }
        elif event_type == "InventoryReserved":
            self._move(order, "reserve")
            fields = {"items": order.items_json}
        elif event_type == "PaymentCaptured":
            self._pay(order, "capture")
            fields = {
                "payment_id": payment_id_for(oid),
                "amount_cents": order.amount_cents,
                "currency": order.currency,
            }
        elif event_type == "PaymentDeclined":
            self._pay(order, "decline", reason="card_declined")
            fields = {"reason": "card_declined"}
        elif event_type == "InventoryCommitted":
            self._move(order, "commit")
            fields = {"items": order.items_json}
        elif event_type == "OrderCompleted":
            fields = {"amount_cents": order.amount_cents}
        elif event_type == "PaymentRefunded":
            self._pay(order, "refund", refund_id=refund_id_for(oid))
            fields = {
                "payment_id": payment_id_for(oid),
                "refund_id": refund_id_for(oid),
                "amount_cents": order.amount_cents,
            }
        elif event_type == "InventoryReleased":
            self._move(order, "release")
            fields = {"items": order.items_json}
        elif event_type == "NotificationSent":
            self.entry(
                NOTIFICATIONS,
                notification_id=notification_id_for(oid),
                order_id=oid,
                customer_id=order.customer_id,
                amount_cents=order.amount_cents,
            )
            fields = {"notification_id": notification_id_for(oid)}
        else:
            fields = {}
        fields.update(extra)
        return self.event(oid, event_type, **fields)

    # ---- whole orders --------------------------------------------------------------------

    def steps(self, order: Order, *event_types: str) -> list[str]:
        """Several saga steps in a row (see `step`); their stream ids."""
        return [self.step(order, t) for t in event_types]

    def new_order(self, key: str | None = None, **body: Any) -> Order:
        self._n += 1
        order = Order(key or f"key-{self._n:05d}", **body)
        self.orders[order.order_id] = order
        return order

    def _saga(
        self,
        steps: list[tuple[str, dict[str, Any]]],
        key: str | None,
        status: str,
        body: dict[str, Any],
        ask: bool = True,
    ) -> Order:
        order = self.new_order(key, **body)
        if ask:
            self.request(order)
        for event_type, extra in steps:
            self.step(order, event_type, **extra)
        self.workflow(order.order_id, status)
        return order

    def completed(self, key: str | None = None, *, ask: bool = True, **body: Any) -> Order:
        return self._saga([(t, {}) for t in COMPLETED_PATH], key, "COMPLETED", body, ask)

    def out_of_stock(self, key: str | None = None, **body: Any) -> Order:
        order = self.new_order(key, **body)
        self.request(order)
        self.step(order, "OrderPlaced")
        self.entry(
            INVENTORY,
            kind="reject",
            order_id=order.order_id,
            items=order.items_json,
            reason="out_of_stock",
            sku=order.items[0]["sku"],
        )
        self.step(order, "OrderCancelled", reason="out_of_stock")
        self._path = "out_of_stock"
        self.workflow(order.order_id, "COMPLETED")
        return order

    def declined(self, key: str | None = None, **body: Any) -> Order:
        self._path = "payment_declined"
        path = [("OrderPlaced", {}), ("InventoryReserved", {}), ("PaymentDeclined", {})]
        path += [("InventoryReleased", {}), ("OrderCancelled", {"reason": "payment_declined"})]
        return self._saga(path, key, "COMPLETED", body)

    def refunded(
        self, key: str | None = None, reason: str = "customer_cancelled", **body: Any
    ) -> Order:
        self._path = "refunded"
        path = [(t, {}) for t in ("OrderPlaced", "InventoryReserved", "PaymentCaptured")]
        path += [("PaymentRefunded", {}), ("InventoryReleased", {})]
        path += [("OrderCancelled", {"reason": reason})]
        return self._saga(path, key, "COMPLETED", body)

    def in_flight(
        self, key: str | None = None, upto: str = "PaymentCaptured", **body: Any
    ) -> Order:
        """An order whose saga stopped after `upto` (its workflow still RUNNING)."""
        path = ["OrderPlaced", "InventoryReserved", "PaymentCaptured", "InventoryCommitted"]
        steps = path[: path.index(upto) + 1]
        return self._saga([(t, {}) for t in steps], key, "RUNNING", body)

    def refused(self, key: str | None = None, status: int = 422, **body: Any) -> Order:
        """A request definitely refused: a ledger line and nothing else."""
        order = self.new_order(key, **body)
        self.request(order, outcome="failed", status=status)
        return order

    def end_load(self) -> float:
        """Mark the end of the load phase (the drain deadline counts from here)."""
        self.load_ended_at = self.now
        return self.now

    # ---- surgery -------------------------------------------------------------------------

    def drop(self, stream: str, match: Callable[[dict[str, str]], bool]) -> int:
        """Remove the entries of `stream` whose fields `match`; how many were removed."""
        before = len(self.streams[stream])
        self.streams[stream] = [(i, f) for i, f in self.streams[stream] if not match(f)]
        return before - len(self.streams[stream])

    def drop_event(self, order_id: str, event_type: str) -> int:
        return self.drop(EVENTS, lambda f: f["order_id"] == order_id and f["type"] == event_type)

    # ---- outputs -------------------------------------------------------------------------

    def readmodel(self) -> list[dict[str, str]]:
        """What the projection would hold: `rebuild()` of the events (then `readmodel_edit`)."""
        views = rebuild(self.streams[EVENTS])
        rows = [{**view, "order_id": oid} for oid, view in sorted(views.items())]
        return self.readmodel_edit(rows) if self.readmodel_edit else rows

    def run_json(self) -> dict[str, Any]:
        run = dict(self.run)
        load_end = self.load_ended_at if self.load_ended_at is not None else self.now
        run.setdefault("phases", [{"name": "load", "started_at": self.t0, "ended_at": load_end}])
        run.setdefault("ended_at", self.now)
        return run

    def parts(self, omit: tuple[str, ...] = ()) -> dict[str, Any]:
        """Keyword arguments of `build_history`; parts named in `omit` are missing."""
        streams = {
            s: ([i for i, _ in e], [dict(f) for _, f in e])
            for s, e in self.streams.items()
            if s not in omit
        }
        ledger = [dict(r, client=c) for c, rows in self.ledger.items() for r in rows]
        parts = {
            "run": self.run_json(),
            "streams": streams,
            "ledger": None if "ledger" in omit else ledger,
            "temporal": None if "temporal" in omit else copy.deepcopy(self.temporal),
            "inventory": None if "inventory" in omit else copy.deepcopy(self.stock),
            "readmodel": None if "readmodel" in omit else self.readmodel(),
            "faults": None if "faults" in omit else copy.deepcopy(self.faults),
            "histories": None if "histories" in omit else copy.deepcopy(self.histories),
        }
        return parts

    def history(self, omit: tuple[str, ...] = ()) -> History:
        return build_history(source="snapshot", **self.parts(omit))

    def write(self, run_dir: Path | str, omit: tuple[str, ...] = ()) -> Path:
        """A run folder with run.json and history/ as the harness writes them."""
        folder = RunFolder(run_dir)
        folder.streams_dir.mkdir(parents=True, exist_ok=True)
        parts = self.parts(omit)
        write_json(folder.run_json, parts["run"])
        for stream, (ids, fields) in parts["streams"].items():
            rows = [{"id": i, "fields": f} for i, f in zip(ids, fields, strict=True)]
            write_jsonl(folder.stream(stream), rows)
        if parts["ledger"] is not None:
            for client, rows in self.ledger.items():
                write_jsonl(folder.client_ledger(client), rows)
        if parts["temporal"] is not None:
            write_jsonl(folder.temporal, parts["temporal"])
        if parts["inventory"] is not None:
            write_json(folder.inventory, parts["inventory"])
        if parts["readmodel"] is not None:
            write_jsonl(folder.readmodel, parts["readmodel"])
        if parts["faults"] is not None:
            write_jsonl(folder.faults, parts["faults"])
        if parts["histories"] is not None:
            write_histories(folder.workflows, parts["histories"])
        if self.requests:
            write_jsonl(folder.reprocess, self.requests)
        return folder.path


def _key(stream_id: str) -> tuple[int, int]:
    if stream_id in ("-", "+"):
        return (0, 0) if stream_id == "-" else (2**63, 0)
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@functools.cache
def _recorded(path: str) -> HistoryProto:
    """A recorded OrderSaga history of tests/data/histories (completed, payment_declined,
    out_of_stock, refunded)."""
    recorded = WorkflowHistory.from_json(path, (RECORDED / f"{path}.json").read_text())
    return HistoryProto(events=recorded.events)
