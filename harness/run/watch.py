"""What the terminal shows while a run goes on: in-flight orders, and violations seen so far.

These are early signals, cheap enough to check every few seconds, not the verdict (the verifier
decides at the end, from the whole history): an order a client was told was accepted that has
no OrderPlaced after a grace period ("suspected lost"), and a second capture for one order.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from harness import keys
from harness.load.ledger import LedgerTail

__all__ = ["ClientOrders", "LiveWatch", "WatchSnapshot"]

SUSPECT_AFTER_S = 30.0  # an accepted order should have its OrderPlaced long before this
# XREAD's reply with decode_responses=True: [(stream, [(entry id, fields), ...]), ...]
_XReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]


@dataclass
class WatchSnapshot:
    inflight: int = 0
    oldest_inflight_s: float = 0.0
    completed: int = 0
    cancelled: int = 0
    sent: int = 0  # orders clients asked for (distinct keys in the ledgers)
    # of those, the ones a client was told were accepted: never more than `sent`
    accepted: int = 0
    suspected_lost: int = 0
    double_captures: int = 0
    redis_ok: bool = True
    errors: list[str] = field(default_factory=list)


class ClientOrders:
    """What the client ledgers say so far, one order per request key (its idempotency key, or
    the order id of a line without one): the orders asked for, and of those the ones accepted.

    Both counts come from the same lines in one pass, and an order is accepted only once it was
    counted as asked for, so `accepted <= sent` holds at every moment, whatever the order ids
    the answers named."""

    def __init__(self) -> None:
        self.sent: set[str] = set()
        self.accepted: set[str] = set()
        self.awaiting: dict[str, float] = {}  # accepted order id → when its client was told

    def add(self, lines: Iterable[Mapping[str, Any]]) -> None:
        for line in lines:
            order = str(line.get("idempotency_key") or line.get("order_id"))
            self.sent.add(order)
            if line.get("outcome") != "ok" or order in self.accepted:
                continue
            self.accepted.add(order)
            order_id = line.get("order_id")
            if order_id:  # the id whose OrderPlaced is looked for
                self.awaiting[str(order_id)] = float(line.get("answered_at") or time.time())


class LiveWatch:
    """Polls Redis and the client ledger in a background thread; `snapshot()` is thread-safe."""

    def __init__(
        self,
        run_dir: Path,
        redis_url: str,
        every_s: float = 2.0,
        on_update: Callable[[WatchSnapshot], None] | None = None,
    ) -> None:
        self._on_update = on_update
        self._tail = LedgerTail(run_dir)
        self._redis = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=3)
        self._every_s = every_s
        self._orders = ClientOrders()
        self._captures: Counter[str] = Counter()
        self._last_payment_id = "0-0"
        self._state = WatchSnapshot()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-watch", daemon=True)

    def start(self) -> LiveWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(redis.RedisError):
            self._redis.close()

    def snapshot(self) -> WatchSnapshot:
        with self._lock:
            return WatchSnapshot(**{**self._state.__dict__, "errors": list(self._state.errors)})

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                state = self._poll()
            except redis.RedisError as exc:
                with self._lock:
                    self._state.redis_ok = False
                    self._state.errors = [f"redis: {exc}"]
                continue
            with self._lock:
                self._state = state
            if self._on_update:
                self._on_update(self.snapshot())

    def _poll(self) -> WatchSnapshot:
        orders = self._orders
        orders.add(self._tail.read_new())
        r = self._redis
        now = time.time()
        overdue = [oid for oid, told in orders.awaiting.items() if now - told > SUSPECT_AFTER_S]
        if overdue:
            with r.pipeline(transaction=False) as pipe:
                for oid in overdue:
                    pipe.hexists(keys.dedupe(oid), "OrderPlaced")
                placed = pipe.execute()
            for oid, ok in zip(overdue, placed, strict=True):
                if ok:
                    del orders.awaiting[oid]
        reply = r.xread({keys.PAYMENTS_LEDGER: self._last_payment_id}, count=10_000) or []
        for _, entries in cast(_XReadReply, reply):
            for entry_id, fields in entries:
                self._last_payment_id = entry_id
                if fields.get("kind") == "capture":
                    self._captures[fields.get("order_id", "")] += 1
        with r.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.READMODEL_INFLIGHT)
            pipe.zrange(keys.READMODEL_INFLIGHT, 0, 0, withscores=True)
            pipe.scard(keys.READMODEL_COMPLETED)
            pipe.scard(keys.READMODEL_CANCELLED)
            inflight, oldest, completed, cancelled = pipe.execute()
        return WatchSnapshot(
            inflight=int(inflight),
            oldest_inflight_s=max(now - oldest[0][1] / 1000, 0.0) if oldest else 0.0,
            completed=int(completed),
            cancelled=int(cancelled),
            sent=len(orders.sent),
            accepted=len(orders.accepted),
            suspected_lost=sum(
                1 for told in orders.awaiting.values() if now - told > SUSPECT_AFTER_S
            ),
            double_captures=sum(1 for n in self._captures.values() if n > 1),
        )
