"""The one live monitor of a run: what clients were told next to what the saga did, every few
seconds, while the run goes on.

`sagaquake run`'s terminal view, the Locust Saga ledger tab and the chaos probes are views of
it, so each figure has one definition (docs/load.md#the-live-figures):

- client side, from the run's client ledgers (`LedgerTail`): orders sent (one per request key:
  the idempotency key, or the order id of a line without one), accepted (told `ok` once), and
  of the others, refused or unknown by their latest attempt; the answers of a recent window
  (the acceptance rate);
- this run's orders in the event log, the source of truth (each order's `keys.dedupe` hash):
  placed (OrderPlaced), completed (NotificationSent: a completed order's last event), cancelled
  (OrderCancelled); an accepted order is *unsettled* until completed or cancelled, and
  *suspected lost* when its OrderPlaced is missing more than `OVERDUE_S` after its client was
  told;
- the whole system's read model: in flight (`keys.READMODEL_INFLIGHT`, and its oldest), the
  count sets; double captures from the payments ledger (`keys.PAYMENTS_LEDGER`);
- the fault windows of the run folder (`history/faults.jsonl`, and the open ones in
  `chaos/state.json`), to mark them on the chart.

These are early signals, cheap enough to read every 2 s, not the verdict: the verifier decides
at the end, from the whole history. The monitor owns no Redis client: each caller passes its own
(fail-fast for a dashboard, the probes' shared reader), so the I/O policy stays the view's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import keys
from harness.chaos.faults import read_faults
from harness.chaos.state import read_state
from harness.load.ledger import LedgerTail

__all__ = [
    "OVERDUE_S",
    "LiveMonitor",
    "LiveSnapshot",
    "connect",
    "monitor_for",
    "read_model_view",
]

log = logging.getLogger("sagaquake.live")

# An accepted order whose OrderPlaced is still missing this long after its client was told is
# "suspected lost". Placing is the saga's first step (milliseconds; the report's target for
# 202 → placed is under 1 s), so 10 s is already far out; docs/load.md says why not 30 s.
OVERDUE_S = 10.0
ANSWERS_KEPT_S = 600.0  # how far back `acceptance` can look
CHECK_BATCH = 20_000  # unsettled orders looked up per poll, oldest first
MAX_POINTS = 900  # chart points kept; beyond, every other one is dropped (the whole run stays)
_FIELDS = ("OrderPlaced", "NotificationSent", "OrderCancelled")  # placed, completed, cancelled
# XREAD's reply with decode_responses=True: [(stream, [(entry id, fields), ...]), ...]
_XReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]


@dataclass(frozen=True)
class LiveSnapshot:
    """Every figure at one moment; `at` is when it was taken (0: never)."""

    at: float = 0.0
    sent: int = 0
    accepted: int = 0  # never more than `sent`: counted from the same lines in one pass
    refused: int = 0  # not accepted, latest attempt `failed`
    unknown: int = 0  # not accepted, latest attempt without an answer
    placed: int = 0
    completed: int = 0
    cancelled: int = 0
    unplaced: int = 0  # accepted, no OrderPlaced yet
    oldest_unplaced: tuple[str, float] | None = None  # (order id, seconds since accepted)
    suspected_lost: int = 0  # of the unplaced, those older than the overdue limit
    unsettled: int = 0  # accepted, neither completed nor cancelled yet
    in_flight: int = 0  # the whole system's read model: placed, not yet terminal
    oldest_in_flight: tuple[str, float] | None = None  # (order id, seconds since placed)
    system: dict[str, int] = field(default_factory=dict)  # read model: placed, completed, cancelled
    double_captures: int = 0
    overdue_s: float = OVERDUE_S
    redis_ok: bool = True
    problem: str | None = None  # why the Redis figures are stale
    faults: tuple[dict[str, Any], ...] = ()  # {label, started_at, ended_at (None: on now)}

    @property
    def terminal(self) -> int:
        return self.completed + self.cancelled

    @property
    def oldest_in_flight_s(self) -> float:
        return self.oldest_in_flight[1] if self.oldest_in_flight else 0.0

    @property
    def active_faults(self) -> list[str]:
        return [f["label"] for f in self.faults if f["ended_at"] is None]


def connect(redis_url: str, timeout_s: float = 2.0) -> redis.Redis:
    """A client for a live view: short time-outs and no retries, so a dead Redis costs a view
    one missed refresh, never a hang."""
    return redis.Redis.from_url(
        redis_url,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def read_model_view(client: Any, now: float | None = None) -> dict[str, Any]:
    """The whole system's read model: orders in flight, the oldest one, the count sets."""
    now = time.time() if now is None else now
    with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.READMODEL_INFLIGHT)
        pipe.zrange(keys.READMODEL_INFLIGHT, 0, 0, withscores=True)
        for key in (keys.READMODEL_PLACED, keys.READMODEL_COMPLETED, keys.READMODEL_CANCELLED):
            pipe.scard(key)
        count, oldest, placed, completed, cancelled = pipe.execute()
    return {
        "in_flight": int(count),
        "oldest": (str(oldest[0][0]), max(now - float(oldest[0][1]) / 1000, 0.0))
        if oldest
        else None,
        "counts": {"placed": int(placed), "completed": int(completed), "cancelled": int(cancelled)},
    }


@dataclass
class _Accepted:
    order_id: str
    at: float  # when its client was told (answered_at of the first ok)


class LiveMonitor:
    """Follows one run folder and the system; `poll` is thread-safe and `latest`/`chart` never
    wait for Redis (a view reads them while a poll is stuck on a dead Redis)."""

    def __init__(self, run_dir: Path, overdue_s: float = OVERDUE_S) -> None:
        self.run_dir = Path(run_dir)
        self.overdue_s = overdue_s
        self._tail = LedgerTail(self.run_dir)
        self._lock = threading.Lock()  # the figures; never held while Redis is asked
        self._redis_lock = threading.Lock()  # one reader of Redis at a time
        self._sent: set[str] = set()
        self._latest: dict[str, str] = {}  # not accepted (yet): request key → latest outcome
        self._accepted: set[str] = set()
        self._unsettled: dict[str, _Accepted] = {}  # by order id
        self._unplaced: set[str] = set()  # order ids, a subset of the unsettled
        self._counts: Counter[str] = Counter()  # placed, completed, cancelled
        self._answers: deque[tuple[float, str]] = deque()  # (answered_at, outcome)
        self._captures: Counter[str] = Counter()
        self._last_payment_id = "0-0"
        self._system: dict[str, Any] = {"in_flight": 0, "oldest": None, "counts": {}}
        self._points: list[tuple[float, int, int, int, int | None]] = []
        self.latest = LiveSnapshot(overdue_s=overdue_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------------

    def _read_ledgers(self) -> None:
        for line in self._tail.read_new():
            outcome = str(line.get("outcome"))
            at = float(line.get("answered_at") or line.get("sent_at") or time.time())
            self._answers.append((at, outcome))
            key = str(line.get("idempotency_key") or line.get("order_id"))
            self._sent.add(key)
            if key in self._accepted:
                continue
            if outcome != "ok":
                self._latest[key] = outcome
                continue
            self._accepted.add(key)
            self._latest.pop(key, None)
            order_id = line.get("order_id")
            if order_id:  # the order whose events are looked for
                self._unsettled[str(order_id)] = _Accepted(str(order_id), at)
                self._unplaced.add(str(order_id))
        horizon = time.time() - ANSWERS_KEPT_S
        while self._answers and self._answers[0][0] < horizon:
            self._answers.popleft()

    def _read_orders(self, client: Any) -> None:
        """Look the unsettled orders up in the event log (the oldest CHECK_BATCH per call)."""
        with self._lock:
            ids = list(self._unsettled)
            if len(ids) > CHECK_BATCH:
                ids = sorted(ids, key=lambda oid: self._unsettled[oid].at)[:CHECK_BATCH]
        if not ids:
            return
        with client.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hmget(keys.dedupe(order_id), *_FIELDS)
            replies = pipe.execute()
        with self._lock:
            self._settle(ids, replies)

    def _settle(self, ids: list[str], replies: list[list[str | None]]) -> None:
        for order_id, (placed, completed, cancelled) in zip(ids, replies, strict=True):
            if (placed or completed or cancelled) and order_id in self._unplaced:
                self._unplaced.discard(order_id)
                self._counts["placed"] += 1
            if completed or cancelled:
                del self._unsettled[order_id]
                self._counts["completed" if completed else "cancelled"] += 1

    def _read_captures(self, client: Any) -> None:
        """Count the captures added to the payments ledger since the last call."""
        reply = client.xread({keys.PAYMENTS_LEDGER: self._last_payment_id}, count=10_000) or []
        for _, entries in cast(_XReadReply, reply):
            for entry_id, fields in entries:
                self._last_payment_id = entry_id
                if fields.get("kind") == "capture":
                    self._captures[fields.get("order_id", "")] += 1

    def _read_faults(self) -> tuple[dict[str, Any], ...]:
        def window(record: dict[str, Any], ended: float | None) -> dict[str, Any]:
            label = f"{record.get('experiment') or 'fault'}: {record.get('action')} {record.get('target')}"
            return {"label": label, "started_at": record.get("started_at"), "ended_at": ended}

        ended = [window(r, r.get("ended_at")) for r in read_faults(self.run_dir)]
        opened = read_state(self.run_dir).get("open_windows", {})
        on_now = [window(r, None) for r in opened.values() if isinstance(r, dict)]
        return tuple(f for f in ended + on_now if f["started_at"] is not None)

    # -- the figures ------------------------------------------------------------------------

    def poll(self, client: Any, now: float | None = None) -> LiveSnapshot:
        """Read what is new and take a snapshot. A Redis that does not answer leaves its
        figures where they were and says so (`redis_ok`, `problem`); nothing is raised."""
        with self._redis_lock:
            with self._lock:
                self._read_ledgers()
            problem = None
            try:
                self._read_orders(client)
                self._read_captures(client)
                system = read_model_view(client, now)
            except redis.RedisError as exc:
                problem = f"redis: {type(exc).__name__}: {exc}"
            faults = self._read_faults()
            with self._lock:
                if problem is None:
                    self._system = system
                snap = self._snapshot(time.time() if now is None else now, problem, faults)
                in_flight = snap.in_flight if problem is None else None
                self._points.append((snap.at, snap.accepted, snap.placed, snap.terminal, in_flight))
                if len(self._points) > MAX_POINTS:
                    self._points = self._points[-1::-2][::-1]  # every other one, the newest kept
                self.latest = snap
        return snap

    def _snapshot(
        self, now: float, problem: str | None, faults: tuple[dict[str, Any], ...]
    ) -> LiveSnapshot:
        unplaced = sorted((self._unsettled[o].at, o) for o in self._unplaced)
        oldest_in_flight = self._system["oldest"]
        return LiveSnapshot(
            at=now,
            sent=len(self._sent),
            accepted=len(self._accepted),
            refused=sum(1 for o in self._latest.values() if o == "failed"),
            unknown=sum(1 for o in self._latest.values() if o not in ("ok", "failed")),
            placed=self._counts["placed"],
            completed=self._counts["completed"],
            cancelled=self._counts["cancelled"],
            unplaced=len(unplaced),
            oldest_unplaced=(unplaced[0][1], now - unplaced[0][0]) if unplaced else None,
            suspected_lost=sum(1 for at, _ in unplaced if now - at > self.overdue_s),
            unsettled=len(self._unsettled),
            in_flight=self._system["in_flight"],
            oldest_in_flight=oldest_in_flight,
            system=dict(self._system["counts"]),
            double_captures=sum(1 for n in self._captures.values() if n > 1),
            overdue_s=self.overdue_s,
            redis_ok=problem is None,
            problem=problem,
            faults=faults,
        )

    def acceptance(self, window_s: float) -> dict[str, Any]:
        """Answers of the last `window_s` seconds (every attempt, of every client), by outcome,
        and the share that was not ok (0 without answers). Reads no Redis, and never waits for
        a poll stuck on a Redis that does not answer."""
        with self._lock:
            self._read_ledgers()
            since = time.time() - window_s
            outcomes = [o for t, o in self._answers if t >= since]
        ok, failed = outcomes.count("ok"), outcomes.count("failed")
        answers = len(outcomes)
        return {
            "window_s": window_s,
            "requests": answers,
            "ok": ok,
            "failed": failed,
            "unknown": answers - ok - failed,
            "error_ratio": round((answers - ok) / answers, 4) if answers else 0.0,
        }

    def unsettled(
        self, client: Any, accepted_before: float | None = None, examples: int = 5
    ) -> dict[str, Any]:
        """Accepted orders (told before `accepted_before`, if given) neither completed nor
        cancelled in the event log, the oldest's age and the first `examples` ids. Raises
        redis.RedisError when Redis does not answer: a probe must not pass on stale figures."""
        with self._redis_lock:
            with self._lock:
                self._read_ledgers()
            self._read_orders(client)
        with self._lock:
            waiting = sorted(
                (a.at, a.order_id)
                for a in self._unsettled.values()
                if accepted_before is None or a.at < accepted_before
            )
            accepted = len(self._accepted)
        now = time.time()
        return {
            "accepted": accepted,
            "unsettled": len(waiting),
            "oldest_age_s": round(now - waiting[0][0], 3) if waiting else 0.0,
            "oldest": [order_id for _, order_id in waiting[:examples]],
        }

    def chart(self) -> dict[str, Any]:
        """The time series of the chart and the fault windows, as JSON-ready data."""
        points, snap = list(self._points), self.latest
        series = {
            name: [p[i] for p in points]
            for i, name in enumerate(("t", "accepted", "placed", "terminal", "in_flight"))
        }
        return {"series": series, "faults": list(snap.faults), "now": snap.at or time.time()}

    # -- polling in the background ----------------------------------------------------------

    def start(
        self,
        client: Any,
        every_s: float = 2.0,
        on_update: Callable[[LiveSnapshot], None] | None = None,
    ) -> LiveMonitor:
        """Poll every `every_s` in a daemon thread (a greenlet where gevent patched threading,
        as in Locust) until `stop`; `on_update` gets each snapshot."""

        def loop() -> None:
            while True:
                try:
                    snap = self.poll(client)
                    if on_update:
                        on_update(snap)
                except Exception:  # a view's poller must never die
                    log.exception("live monitor poll failed")
                if self._stop.wait(every_s):
                    return

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="live-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


_MONITORS: dict[Path, LiveMonitor] = {}
_MONITORS_LOCK = threading.Lock()


def monitor_for(run_dir: Path) -> LiveMonitor:
    """The monitor of a run folder, one per process: `sagaquake run`'s view and the probes of
    its experiments (run in the same process) read the same figures."""
    path = Path(run_dir).resolve()
    with _MONITORS_LOCK:
        monitor = _MONITORS.get(path)
        if monitor is None:
            monitor = _MONITORS[path] = LiveMonitor(path)
        return monitor
