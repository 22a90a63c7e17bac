"""A light background load for chaos tests: a thread placing real orders, each attempt recorded
in a client ledger exactly as the load generator records it, and the checks a verifier would
make on those orders afterwards (terminal, legal path, captured at most once)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from harness.load.ledger import ClientLedger, classify
from harness.platforms.base import Endpoints
from harness.runs import RunFolder, read_jsonl
from tests.integration.orders import client, events_of, order_body

__all__ = ["LEGAL_PATHS", "BackgroundLoad", "accepted_orders", "check_orders"]

LEGAL_PATHS = [
    ["OrderPlaced", "InventoryReserved", "PaymentCaptured", "InventoryCommitted",
     "OrderCompleted", "NotificationSent"],
    ["OrderPlaced", "OrderCancelled"],
    ["OrderPlaced", "InventoryReserved", "PaymentDeclined", "InventoryReleased", "OrderCancelled"],
    ["OrderPlaced", "InventoryReserved", "PaymentCaptured", "PaymentRefunded",
     "InventoryReleased", "OrderCancelled"],
]  # fmt: skip


class BackgroundLoad(threading.Thread):
    """Places about `rate` orders a second until stopped; retries a lost answer or a 503 with
    the same key (like the load profile's retry policy), recording every attempt."""

    def __init__(
        self, endpoints: Endpoints, run_dir: Path, rate: float = 4.0, name: str = "test-load"
    ) -> None:
        super().__init__(daemon=True, name=name)
        self.endpoints = endpoints
        self.rate = rate
        self.ledger = ClientLedger.create(run_dir, name)
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self.stopped.is_set():
                self._one(http)
                self.stopped.wait(1 / self.rate)
        self.ledger.close()

    def _one(self, http: httpx.Client) -> None:
        key = f"test-{uuid.uuid4().hex}"
        body = order_body(f"SKU-{1 + self.sent % 150:04d}")
        self.sent += 1
        for attempt in range(1, 6):
            sent = time.time()
            status, payload, error = None, None, None
            try:
                answer = http.post(f"{self.endpoints.order_api}/orders", json=body,
                                   headers={"Idempotency-Key": key})  # fmt: skip
                status = answer.status_code
                payload = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            outcome = classify(status, payload)
            self.ledger.record(
                op_id=f"{self.name}-{self.sent}", idempotency_key=key,
                customer_id=body["customer_id"], amount_cents=body["amount_cents"],
                currency=body["currency"], items=len(body["items"]), attempt=attempt,
                sent_at=sent, answered_at=time.time(), status=status, outcome=outcome,
                error=error,
            )  # fmt: skip
            if outcome == "ok" or (outcome == "failed" and status != 503):
                return
            time.sleep(0.3 * attempt)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def accepted_orders(run_dir: Path) -> dict[str, str]:
    """order id -> ledger file stem, for every order a client of the run was told was accepted."""
    out: dict[str, str] = {}
    for path in RunFolder(run_dir).client_ledgers():
        for line in read_jsonl(path).records:
            if line["outcome"] == "ok":
                out[line["order_id"]] = path.stem
    return out


def check_orders(endpoints: Endpoints, run_dir: Path, timeout_s: float = 120) -> dict[str, Any]:
    """Every accepted order of the run reaches a terminal state along a legal path, and none is
    captured twice. Returns counts; raises AssertionError with the counter-examples."""
    orders = accepted_orders(run_dir)
    r = client(endpoints)
    deadline = time.monotonic() + timeout_s
    pending = set(orders)
    while pending and time.monotonic() < deadline:
        pipe = r.pipeline(transaction=False)
        ids = list(pending)
        for order_id in ids:
            pipe.hmget(f"orders:dedupe:{order_id}", "NotificationSent", "OrderCancelled")
        for order_id, found in zip(ids, pipe.execute(), strict=True):
            if any(found):
                pending.discard(order_id)
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} accepted orders never finished, e.g. {sorted(pending)[:5]}"
    illegal = {}
    for order_id in orders:
        path = [f["type"] for _, f in events_of(endpoints, order_id)]
        if path not in LEGAL_PATHS:
            illegal[order_id] = path
    assert not illegal, f"illegal histories: {dict(list(illegal.items())[:5])}"
    captures: dict[str, int] = {}
    for _, f in r.xrange("payments:ledger"):
        if f["kind"] == "capture" and f["order_id"] in orders:
            captures[f["order_id"]] = captures.get(f["order_id"], 0) + 1
    twice = {o: n for o, n in captures.items() if n > 1}
    assert not twice, f"orders captured more than once: {twice}"
    return {"orders": len(orders), "captured": len(captures)}
