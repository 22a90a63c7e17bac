"""The "Saga ledger" tab of Locust's web UI: what clients were told next to what the saga did.

Client side, from the client ledger files of the run (so the master of a `--processes` run sees
every worker's orders): orders accepted, failed, unknown. System side, from the stack's Redis
(`SAGAQUAKE_REDIS_URL`, read-only): for this run's accepted orders, whether their OrderPlaced
event exists yet (`HEXISTS orders:dedupe:{id} OrderPlaced`) and whether the read model has them
completed or cancelled (`SMISMEMBER readmodel:completed|cancelled`); for the whole system, the
read model's count sets (`SCARD readmodel:placed|completed|cancelled`) and its in-flight sorted
set (`readmodel:inflight`, order id -> placed ms).

A background greenlet refreshes a snapshot every `REFRESH_S`; the tab (Locust's
`extended_tabs`/`extended_tables`, fed through the `extended_stats` of `/stats/requests`) and
`/saga-ledger` (a page of its own that keeps refreshing after the run stops) only read it, so a
slow or dead Redis never blocks the UI: the table then says what failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import redis
from flask import Blueprint, Response, jsonify, request
from locust import events
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import keys
from harness.load.curve import DAY_S
from harness.load.ledger import LedgerTail
from harness.load.settings import LoadSettings

__all__ = ["SagaLedgerMonitor", "install"]

logger = logging.getLogger("sagaquake.load")

TAB_KEY = "saga-ledger"
REFRESH_S = 2.0
RATE_WINDOW_S = 10.0
CHECK_BATCH = 20000  # accepted orders checked for OrderPlaced per refresh, oldest first
STRUCTURE = [
    {"key": "metric", "title": "Metric"},
    {"key": "value", "title": "Value"},
    {"key": "note", "title": "Where it comes from"},
]


@dataclass
class _ClientCounts:
    accepted: dict[str, float] = field(default_factory=dict)  # order id -> answered_at
    not_accepted: dict[str, str] = field(default_factory=dict)  # order id -> its latest outcome
    attempts: int = 0

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.not_accepted.values() if o == outcome)


class SagaLedgerMonitor:
    """Keeps the client ledger's accepted orders and the saga's progress side by side."""

    def __init__(self, run_dir: Path, redis_url: str, overdue_s: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.redis_url = redis_url
        self.overdue_s = overdue_s
        self._tail = LedgerTail(self.run_dir)
        self._client = _ClientCounts()
        # accepted orders of this run, by what the saga has not shown for them yet: id -> answered_at
        self._unplaced: dict[str, float] = {}
        self._open: dict[str, float] = {}  # not completed or cancelled yet
        self._run = {"placed": 0, "completed": 0, "cancelled": 0}
        self._redis: redis.Redis | None = None
        self._sent: deque[tuple[float, int]] = deque()  # (time, orders sent so far), for the rate
        self.snapshot: dict[str, Any] = {"rows": [], "updated_at": None}

    def _connection(self) -> redis.Redis:
        if self._redis is None:
            # short time-outs and no retries: a read for a dashboard must never hang it
            self._redis = redis.Redis.from_url(
                self.redis_url,
                decode_responses=True,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
            )
        return self._redis

    def _read_ledger(self) -> None:
        c = self._client
        for line in self._tail.read_new():
            c.attempts += 1
            order_id = line.get("order_id")
            outcome = line.get("outcome")
            if not order_id:
                continue
            if outcome == "ok":
                if order_id not in c.accepted:
                    answered = float(line.get("answered_at") or time.time())
                    c.accepted[order_id] = self._unplaced[order_id] = self._open[order_id] = (
                        answered
                    )
                c.not_accepted.pop(order_id, None)
            elif order_id not in c.accepted:
                c.not_accepted[order_id] = str(outcome)

    def _read_redis(self) -> dict[str, Any]:
        r = self._connection()
        pipe = r.pipeline(transaction=False)
        for key in (keys.READMODEL_PLACED, keys.READMODEL_COMPLETED, keys.READMODEL_CANCELLED):
            pipe.scard(key)
        pipe.zcard(keys.READMODEL_INFLIGHT)
        pipe.zrange(keys.READMODEL_INFLIGHT, 0, 0, withscores=True)
        unplaced = _oldest(self._unplaced)
        for order_id in unplaced:
            pipe.hexists(keys.dedupe(order_id), "OrderPlaced")
        still_open = _oldest(self._open)
        if still_open:
            pipe.smismember(keys.READMODEL_COMPLETED, still_open)
            pipe.smismember(keys.READMODEL_CANCELLED, still_open)
        replies = pipe.execute()
        placed_n, completed_n, cancelled_n, inflight, oldest = replies[:5]
        for order_id, placed in zip(unplaced, replies[5 : 5 + len(unplaced)], strict=True):
            if placed:
                del self._unplaced[order_id]
                self._run["placed"] += 1
        if still_open:
            completed, cancelled = replies[-2:]
            for order_id, done, gone in zip(still_open, completed, cancelled, strict=True):
                if done or gone:
                    del self._open[order_id]
                    self._run["completed" if done else "cancelled"] += 1
        return {
            "placed": int(placed_n),
            "completed": int(completed_n),
            "cancelled": int(cancelled_n),
            "in_flight": int(inflight),
            "oldest": (oldest[0][0], float(oldest[0][1]) / 1000.0) if oldest else None,
        }

    def refresh(self, now: float | None = None) -> dict[str, Any]:
        self._read_ledger()
        system: dict[str, Any] | None = None
        problem = None
        try:
            system = self._read_redis()
        except redis.RedisError as exc:
            problem = f"redis {self.redis_url} unreachable: {type(exc).__name__}: {exc}"
            self._redis = None
        now = time.time() if now is None else now
        self.snapshot = {"rows": self._rows(system, problem, now), "updated_at": now}
        return self.snapshot

    def _rows(
        self, system: dict[str, Any] | None, problem: str | None, now: float
    ) -> list[dict[str, str]]:
        c, run = self._client, self._run
        ledger = "client ledger (history/ledger)"
        rows = [
            _row("accepted (client told 202)", len(c.accepted), ledger),
            _row("refused (failed, never accepted)", c.count("failed"), ledger),
            _row("unknown (answer lost, never accepted)", c.count("unknown"), ledger),
        ]
        if system is None:
            rows.append({"metric": "saga (Redis)", "value": "unavailable", "note": problem or ""})
        else:
            oldest = system["oldest"]
            rows += [
                _row("placed (OrderPlaced)", run["placed"], f"whole system: {system['placed']:,} (SCARD readmodel:placed)"),
                _row("completed", run["completed"], f"whole system: {system['completed']:,} (SCARD readmodel:completed)"),
                _row("cancelled", run["cancelled"], f"whole system: {system['cancelled']:,} (SCARD readmodel:cancelled)"),
                _row("in flight (whole system)", system["in_flight"], f"ZCARD readmodel:inflight; this run: {len(self._open):,} accepted, not finished"),
                {
                    "metric": "oldest in flight",
                    "value": f"{max(0.0, now - oldest[1]):.1f} s" if oldest else "-",
                    "note": f"{oldest[0]}, placed {time.strftime('%H:%M:%S', time.localtime(oldest[1]))}"
                    if oldest
                    else "readmodel:inflight is empty",
                },
            ]  # fmt: skip
        unplaced = sorted(self._unplaced.items(), key=lambda kv: kv[1])
        overdue = sum(1 for _, t in unplaced if now - t > self.overdue_s)
        first = unplaced[0] if unplaced else None
        rows += [
            {
                "metric": "accepted, no OrderPlaced yet",
                "value": f"{len(unplaced):,}",
                "note": "not checked: redis unavailable"
                if system is None
                else (
                    f"oldest {first[0]}, accepted {now - first[1]:.1f} s ago" if first else "none"
                ),
            },
            {
                "metric": f"... of which for more than {self.overdue_s:g} s",
                "value": f"{overdue:,}",
                "note": "lost orders if they stay (HEXISTS orders:dedupe:{id} OrderPlaced)",
            },
        ]
        rows += _generator_rows(self._sent, now)
        rows.append(
            {
                "metric": "updated",
                "value": time.strftime("%H:%M:%S", time.localtime(now)),
                "note": "",
            }
        )
        return rows

    def run_forever(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:  # never let the dashboard's greenlet die
                logger.exception("saga ledger refresh failed")
            gevent.sleep(REFRESH_S)


def _oldest(orders: dict[str, float]) -> list[str]:
    """The CHECK_BATCH oldest order ids (a backlog is checked oldest first, a batch at a time)."""
    if len(orders) <= CHECK_BATCH:
        return list(orders)
    return [oid for oid, _ in sorted(orders.items(), key=lambda kv: kv[1])[:CHECK_BATCH]]


def _row(metric: str, value: int, note: str) -> dict[str, str]:
    return {"metric": metric, "value": f"{value:,}", "note": note}


def _generator_rows(history: deque[tuple[float, int]], now: float) -> list[dict[str, str]]:
    """The load generator's own view: the rate it sends against the profile, and its lag.

    Counted where the orders leave (the driver, or the workers' reports to the master), not from
    the ledger, whose lines only appear once an attempt is answered or has timed out.
    """
    try:
        from harness.load.user import driver

        d = driver()
    except Exception:  # no profile in this process: only the ledger and Redis rows
        return []
    reports = list(d.worker_reports.values()) if d.workers else [d.report()]
    if not reports:
        return []
    sent = sum(int(r.get("sent", 0)) for r in reports)
    if history and history[-1][1] > sent:  # a new run started from the web ui
        history.clear()
    history.append((now, sent))
    while len(history) > 1 and history[0][0] < now - RATE_WINDOW_S:
        history.popleft()
    span = history[-1][0] - history[0][0]
    rate = (history[-1][1] - history[0][1]) / span if span > 0 else 0.0
    rows = []
    if d.t0 is not None:
        t = now - d.t0
        clock = d.curve.production_time(max(0.0, t)) % DAY_S
        target = d.curve.rate_at(t) if 0 <= t < d.duration_s else 0.0
        rows.append(
            {
                "metric": f"orders/s sent (last {RATE_WINDOW_S:g} s)",
                "value": f"{rate:.1f}",
                "note": f"the profile asks {target:.1f}/s now: {d.profile.name} at {d.compress:g}x, "
                f"day time {int(clock // 3600):02d}:{int(clock % 3600 // 60):02d}",
            }
        )
    late = sum(int(r.get("late_1s", 0)) for r in reports)
    worst = max(float(r.get("lag_max_s", 0.0)) for r in reports)
    in_flight = sum(int(r.get("in_flight", 0)) for r in reports)
    rows += [
        {
            "metric": "orders awaiting an answer",
            "value": f"{in_flight:,}",
            "note": f"in the load generator, retries included; {sent:,} orders sent",
        },
        {
            "metric": "arrivals sent > 1 s late",
            "value": f"{late:,}",
            "note": f"worst lag {worst:.2f} s; late means every user was busy (open model kept, lag shown)",
        },
    ]
    return rows


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Saga ledger</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;background:#1b1b1f;color:#eee}
table{border-collapse:collapse}td,th{padding:.4em 1em;border-bottom:1px solid #444;text-align:left}
td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}</style></head><body>
<h2>Saga ledger</h2><table id="t"><thead><tr><th>Metric</th><th>Value</th><th>Where it comes from</th>
</tr></thead><tbody></tbody></table><script>
async function tick(){const r=await fetch('saga-ledger.json');const d=await r.json();
const b=document.querySelector('#t tbody');b.innerHTML='';for(const row of d.rows){const tr=document.createElement('tr');
for(const k of ['metric','value','note']){const td=document.createElement('td');td.textContent=row[k];tr.appendChild(td)}
b.appendChild(tr)}}
tick();setInterval(tick,2000);</script></body></html>"""


def install(environment, monitor: SagaLedgerMonitor) -> None:
    """Add the tab, the JSON and the standalone page to this Locust web UI."""
    web_ui = environment.web_ui
    blueprint = Blueprint("sagaquake_saga_ledger", __name__)

    @blueprint.route("/saga-ledger.json")
    def saga_ledger_json() -> Response:
        return jsonify(monitor.snapshot)

    @blueprint.route("/saga-ledger")
    def saga_ledger_page() -> Response:
        return Response(_PAGE, mimetype="text/html")

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.after_request
    def add_saga_ledger(response: Response) -> Response:
        if not request.path.endswith("/stats/requests") or response.status_code != 200:
            return response
        data = response.get_json(silent=True)
        if isinstance(data, dict):
            data["extended_stats"] = [{"key": TAB_KEY, "data": monitor.snapshot["rows"]}]
            response.set_data(json.dumps(data))
        return response

    # update_template_args() merges into these, so the tab is on "/" itself (no extra route)
    web_ui.template_args["extended_tabs"] = [{"title": "Saga ledger", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": STRUCTURE}]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "./saga-ledger.json", "title": "Saga ledger (JSON)"},
        {"href": "./saga-ledger", "title": "Saga ledger (live page, keeps updating after the run)"},
    ]
    gevent.spawn(monitor.run_forever)


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    if environment.web_ui is None:
        return
    settings = LoadSettings.from_env()
    install(
        environment, SagaLedgerMonitor(settings.run_dir, settings.redis_url, settings.overdue_s)
    )
    logger.info("saga ledger tab: redis %s, ledger %s", settings.redis_url, settings.run_dir)
