"""The "Saga ledger" tab of Locust's web UI: a view of the run's live monitor (`harness.live`).

What clients were told next to what the saga did, as a table and as a chart over time (accepted,
placed, terminal and in-flight orders, with the fault windows shaded). The figures and their
definitions are the monitor's (docs/load.md#the-live-figures); this module only adds the load
generator's own rows (the rate it sends, its lag) and shows them.

The monitor polls in a background greenlet every `REFRESH_S` with a fail-fast Redis client
(`SAGAQUAKE_REDIS_URL`, read-only); the tab (Locust's `extended_tabs`/`extended_tables`, fed
through the `extended_stats` of `/stats/requests`), `/saga-ledger.json` and `/saga-ledger` (a
page of its own that keeps refreshing after the run stops) only read its last snapshot, so a slow
or dead Redis never blocks the UI: the table then says what failed. The chart is drawn by
`saga_ledger.js`, served beside the JSON and added to Locust's own page.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request
from locust import events

from harness import keys
from harness.load.curve import DAY_S
from harness.load.settings import LoadSettings

if TYPE_CHECKING:  # the monitor (and Redis) are imported when there is a web UI: see _on_init
    from harness.live import LiveMonitor, LiveSnapshot

__all__ = ["SagaLedgerTab", "install", "ledger_rows"]

logger = logging.getLogger("sagaquake.load")

TAB_KEY = "saga-ledger"
REFRESH_S = 2.0
RATE_WINDOW_S = 10.0
STRUCTURE = [
    {"key": "metric", "title": "Metric"},
    {"key": "value", "title": "Value"},
    {"key": "note", "title": "Where it comes from"},
]
_CHART_JS = Path(__file__).with_name("saga_ledger.js")


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def ledger_rows(snap: LiveSnapshot) -> list[dict[str, str]]:
    """The monitor's figures as the table's rows (metric, value, where it comes from)."""
    ledger = "client ledger (history/ledger)"
    events_log = f"from its orders' events ({keys.dedupe('{id}')})"
    rows = [
        _row("accepted (client told 202)", snap.accepted, f"{ledger}; {snap.sent:,} orders sent"),
        _row("refused (failed, never accepted)", snap.refused, ledger),
        _row("unknown (answer lost, never accepted)", snap.unknown, ledger),
    ]
    if not snap.redis_ok:
        rows.append({"metric": "saga (Redis)", "value": "unavailable", "note": snap.problem or ""})
    else:
        system, oldest = snap.system, snap.oldest_in_flight
        rows += [
            _row("placed (OrderPlaced)", snap.placed, f"whole system: {system.get('placed', 0):,} (SCARD {keys.READMODEL_PLACED}); this run's: {events_log}"),
            _row("completed (NotificationSent)", snap.completed, f"whole system: {system.get('completed', 0):,} (SCARD {keys.READMODEL_COMPLETED})"),
            _row("cancelled (OrderCancelled)", snap.cancelled, f"whole system: {system.get('cancelled', 0):,} (SCARD {keys.READMODEL_CANCELLED})"),
            _row("in flight (whole system)", snap.in_flight, f"ZCARD {keys.READMODEL_INFLIGHT}; this run: {snap.unsettled:,} accepted, not finished"),
            {
                "metric": "oldest in flight",
                "value": f"{oldest[1]:.1f} s" if oldest else "-",
                "note": f"{oldest[0]}, placed {_clock(snap.at - oldest[1])}"
                if oldest
                else f"{keys.READMODEL_INFLIGHT} is empty",
            },
            _row("double captures", snap.double_captures, f"orders captured twice in {keys.PAYMENTS_LEDGER}"),
        ]  # fmt: skip
    first = snap.oldest_unplaced
    rows += [
        {
            "metric": "accepted, no OrderPlaced yet",
            "value": f"{snap.unplaced:,}",
            "note": "not checked: redis unavailable"
            if not snap.redis_ok
            else (f"oldest {first[0]}, accepted {first[1]:.1f} s ago" if first else "none"),
        },
        {
            "metric": f"... of which for more than {snap.overdue_s:g} s (suspected lost)",
            "value": f"{snap.suspected_lost:,}",
            "note": f"lost orders if they stay (OrderPlaced in {keys.dedupe('{id}')})",
        },
        {
            "metric": "fault now",
            "value": ", ".join(snap.active_faults) or "none",
            "note": f"{len(snap.faults):,} fault windows in this run folder",
        },
    ]
    return rows


class SagaLedgerTab:
    """The tab's state between polls: the last rows, and the generator's sent counts for its
    rate. Fed by the monitor's `on_update`; read by the routes."""

    def __init__(self, monitor: LiveMonitor) -> None:
        self.monitor = monitor
        self._sent: deque[tuple[float, int]] = deque()  # (time, orders sent so far)
        self.rows: list[dict[str, str]] = []

    def update(self, snap: LiveSnapshot) -> None:
        rows = ledger_rows(snap) + _generator_rows(self._sent, snap.at)
        rows.append({"metric": "updated", "value": _clock(snap.at), "note": ""})
        self.rows = rows

    def data(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "updated_at": self.monitor.latest.at or None,
            **self.monitor.chart(),
        }


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
<h2>Saga ledger</h2><div id="saga-ledger-chart"></div>
<table id="saga-ledger-table"><thead><tr><th>Metric</th><th>Value</th><th>Where it comes from</th>
</tr></thead><tbody></tbody></table><script src="saga-ledger.js"></script></body></html>"""
_SCRIPT_TAG = b'<script src="./saga-ledger.js"></script></body>'


def install(environment, tab: SagaLedgerTab) -> None:
    """Add the tab, its chart, the JSON and the standalone page to this Locust web UI."""
    web_ui = environment.web_ui
    blueprint = Blueprint("sagaquake_saga_ledger", __name__)

    @blueprint.route("/saga-ledger.json")
    def saga_ledger_json() -> Response:
        return jsonify(tab.data())

    @blueprint.route("/saga-ledger")
    def saga_ledger_page() -> Response:
        return Response(_PAGE, mimetype="text/html")

    @blueprint.route("/saga-ledger.js")
    def saga_ledger_js() -> Response:
        return Response(_CHART_JS.read_text(), mimetype="text/javascript")

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.after_request
    def add_saga_ledger(response: Response) -> Response:
        if response.status_code != 200:
            return response
        if request.path.endswith("/stats/requests"):
            data = response.get_json(silent=True)
            if isinstance(data, dict):
                data["extended_stats"] = [{"key": TAB_KEY, "data": tab.rows}]
                response.set_data(json.dumps(data))
        elif request.path.endswith("/") and response.mimetype == "text/html":
            # Locust's own page: the chart script draws above the tab's table
            response.direct_passthrough = False
            response.set_data(response.get_data().replace(b"</body>", _SCRIPT_TAG, 1))
        return response

    # update_template_args() merges into these, so the tab is on "/" itself (no extra route)
    web_ui.template_args["extended_tabs"] = [{"title": "Saga ledger", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": STRUCTURE}]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "./saga-ledger.json", "title": "Saga ledger (JSON)"},
        {"href": "./saga-ledger", "title": "Saga ledger (live page, keeps updating after the run)"},
    ]


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    if environment.web_ui is None:
        return
    # imported here: a headless run has no tab, and redis-py is a fifth of a second of start-up
    from harness.live import LiveMonitor, connect

    settings = LoadSettings.from_env()
    monitor = LiveMonitor(settings.run_dir, settings.overdue_s)
    tab = SagaLedgerTab(monitor)
    install(environment, tab)
    # 1 s time-outs: a read for a dashboard must never hang it
    monitor.start(connect(settings.redis_url, timeout_s=1.0), REFRESH_S, on_update=tab.update)
    logger.info("saga ledger tab: redis %s, ledger %s", settings.redis_url, settings.run_dir)
