"""The live monitor (harness.live), the one source of the terminal view, the Locust tab and the
probes: each figure counted once, from the client ledgers, the event log and the read model.

The client side counts orders asked for and accepted in one pass over the ledger lines, so
accepted can never exceed sent (the progress line once showed it above sent)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from harness import live
from harness.chaos.faults import FaultWindow, append_fault
from harness.live import LiveMonitor
from harness.load.settings import DEFAULTS
from tests.unit.live_fakes import FakeRedis, write_lines

pytestmark = pytest.mark.unit


def _line(key: str | None, outcome: str, order_id: str | None = None, at: float = 1.0) -> dict:
    return {"idempotency_key": key, "order_id": order_id, "outcome": outcome, "answered_at": at}


def test_retries_of_one_key_are_one_order_sent_and_at_most_one_accepted(tmp_path) -> None:
    monitor, client = LiveMonitor(tmp_path), FakeRedis()
    write_lines(tmp_path, [_line("k1", "unknown", "ord-1"), _line("k1", "ok", "ord-1", 2.0)])
    monitor.poll(client, now=10.0)
    write_lines(tmp_path, [_line("k1", "ok", "ord-1", 3.0), _line("k2", "failed", "ord-2")])
    snap = monitor.poll(client, now=10.0)
    assert (snap.sent, snap.accepted) == (2, 1)
    assert (snap.refused, snap.unknown) == (1, 0)  # k1's lost answer was followed by an ok
    assert snap.oldest_unplaced == ("ord-1", 8.0)  # told at the first ok, not the retry's
    assert snap.unplaced == 1


def test_answers_naming_other_orders_cannot_make_accepted_exceed_sent(tmp_path) -> None:
    """One key answered with two order ids, and ok lines without an order id: counted by
    their key, never more accepted than sent."""
    monitor, client = LiveMonitor(tmp_path), FakeRedis()
    write_lines(
        tmp_path,
        [
            _line("k1", "ok", "ord-a"),
            _line("k1", "ok", "ord-b"),
            _line("k2", "ok", None),
            _line(None, "ok", "ord-c"),
        ],
    )
    snap = monitor.poll(client)
    assert (snap.sent, snap.accepted) == (3, 3)
    seen = monitor.unsettled(client)
    assert set(seen["oldest"]) == {"ord-a", "ord-c"}  # no id, nothing to look for


def test_accepted_never_exceeds_sent_after_any_batch(tmp_path) -> None:
    monitor, client = LiveMonitor(tmp_path), FakeRedis()
    outcomes = ["ok", "failed", "unknown"]
    for i in range(300):
        write_lines(tmp_path, [_line(f"k{i % 37}", outcomes[i % 3], f"ord-{i % 41}")])
        snap = monitor.poll(client)
        assert snap.accepted <= snap.sent
        assert monitor._accepted <= monitor._sent


def test_placed_and_terminal_come_from_the_event_log(tmp_path) -> None:
    """OrderPlaced makes an order placed; NotificationSent completed, OrderCancelled cancelled;
    an order told ok without OrderPlaced for longer than the limit is suspected lost."""
    write_lines(
        tmp_path,
        [_line(f"k{i}", "ok", f"ord-{i}", at=100.0 + i) for i in range(5)]
        + [_line("k9", "failed", "ord-9", at=100.0)],
    )
    client = FakeRedis(
        events={
            "ord-0": {"OrderPlaced", "NotificationSent"},
            "ord-1": {"OrderPlaced", "OrderCancelled"},
            "ord-2": {"OrderPlaced"},
        },
        captures=["ord-0", "ord-2", "ord-0"],
        in_flight={"ord-2": 95_000.0, "ord-x": 101_000.0},
        counts=(4, 2, 1),
    )
    monitor = LiveMonitor(tmp_path)
    snap = monitor.poll(client, now=112.0)
    assert (snap.sent, snap.accepted, snap.refused) == (6, 5, 1)
    assert (snap.placed, snap.completed, snap.cancelled, snap.terminal) == (3, 1, 1, 2)
    assert (snap.unsettled, snap.unplaced) == (3, 2)
    assert snap.oldest_unplaced == ("ord-3", 9.0)
    assert snap.suspected_lost == 0  # ord-3 9 s, ord-4 8 s: both within 10 s
    assert monitor.poll(client, now=113.5).suspected_lost == 1  # ord-3 now 10.5 s
    assert snap.in_flight == 2 and snap.oldest_in_flight == ("ord-2", 17.0)
    assert snap.system == {"placed": 4, "completed": 2, "cancelled": 1}
    assert snap.double_captures == 1
    # settled orders are not looked up again
    client.looked_up.clear()
    monitor.poll(client, now=114.0)
    assert sorted(client.looked_up) == ["ord-2", "ord-3", "ord-4"]


def test_one_overdue_limit_shared_with_the_tab_s_setting() -> None:
    assert live.OVERDUE_S == DEFAULTS.overdue_s == 10.0


def test_a_dead_redis_keeps_the_figures_and_says_why(tmp_path) -> None:
    write_lines(tmp_path, [_line("k1", "ok", "ord-1", at=100.0)])
    client = FakeRedis(events={"ord-1": {"OrderPlaced"}}, in_flight={"ord-1": 100_000.0})
    monitor = LiveMonitor(tmp_path)
    assert monitor.poll(client, now=101.0).redis_ok
    client.down = True
    write_lines(tmp_path, [_line("k2", "ok", "ord-2", at=102.0)])
    snap = monitor.poll(client, now=103.0)
    assert not snap.redis_ok and "ConnectionError" in (snap.problem or "")
    assert (snap.accepted, snap.placed, snap.in_flight) == (2, 1, 1)  # ledger new, Redis kept
    assert monitor.chart()["series"]["in_flight"] == [1, None]  # no made-up point
    with pytest.raises(redis.RedisError, match="connection refused"):
        monitor.unsettled(client)  # a probe must not pass on stale figures


def test_the_chart_has_one_point_per_poll_and_the_fault_windows(tmp_path) -> None:
    monitor, client = LiveMonitor(tmp_path), FakeRedis()
    append_fault(
        tmp_path,
        {"experiment": "payment-outage", "action": "outage", "target": "payment-service",
         "started_at": 50.0, "ended_at": 60.0, "landed": True, "evidence": {}},
    )  # fmt: skip
    FaultWindow(tmp_path, "kill-saga-workers", "kill_replicas", "saga-worker").open(70.0)
    for i in range(3):
        write_lines(tmp_path, [_line(f"k{i}", "ok", f"ord-{i}", at=40.0 + i)])
        monitor.poll(client, now=45.0 + 10 * i)
    chart = monitor.chart()
    assert chart["series"]["t"] == [45.0, 55.0, 65.0]
    assert chart["series"]["accepted"] == [1, 2, 3]
    assert chart["faults"] == [
        {"label": "payment-outage: outage payment-service", "started_at": 50.0, "ended_at": 60.0},
        {"label": "kill-saga-workers: kill_replicas saga-worker", "started_at": 70.0, "ended_at": None},
    ]  # fmt: skip
    assert monitor.latest.active_faults == ["kill-saga-workers: kill_replicas saga-worker"]
    json.dumps(chart)  # served as is


def test_a_long_run_keeps_its_whole_span_in_a_bounded_chart(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(live, "MAX_POINTS", 10)
    monitor, client = LiveMonitor(tmp_path), FakeRedis()
    for i in range(25):
        monitor.poll(client, now=float(i))
    t = monitor.chart()["series"]["t"]
    assert len(t) <= 10 and t[-1] == 24.0 and t[0] <= 4.0
    assert t == sorted(t)


def test_one_monitor_per_run_folder(tmp_path) -> None:
    assert live.monitor_for(tmp_path) is live.monitor_for(tmp_path / ".")
    assert live.monitor_for(tmp_path) is not live.monitor_for(tmp_path / "other")


def test_the_acceptance_rate_never_waits_for_a_poll_stuck_on_redis(tmp_path) -> None:
    """The safeguard asks for the acceptance rate while the terminal view's poll may be waiting
    for a Redis that does not answer: the answer comes from the ledgers, at once."""
    release = threading.Event()

    class StuckRedis(FakeRedis):
        def execute(self) -> list:
            release.wait(10)
            return super().execute()

    write_lines(tmp_path, [_line("k1", "ok", "ord-1", at=time.time())])
    monitor = LiveMonitor(tmp_path)
    poller = threading.Thread(target=monitor.poll, args=(StuckRedis(),))
    poller.start()
    try:
        time.sleep(0.2)  # the poll is now waiting on Redis
        write_lines(tmp_path, [_line("k2", "failed", "ord-2", at=time.time())])
        started = time.monotonic()
        seen = monitor.acceptance(60)
        assert time.monotonic() - started < 1.0
        assert (seen["ok"], seen["failed"]) == (1, 1)
    finally:
        release.set()
        poller.join(10)
    assert monitor.latest.accepted == 1
