"""The live views read what the system writes: the live monitor behind `sagaquake run`'s view
and the Locust Saga ledger tab, against a real redis-server holding keys written with the *system's* own names
(the harness names them itself, in harness/keys.py), and a client ledger written by the load
generator's own writer.

The tab imports locust (which monkey-patches the interpreter), so it runs in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from harness.ids import order_id_for
from harness.live import LiveMonitor, LiveSnapshot, connect
from harness.load.ledger import ClientLedger
from system_under_test.projection.readmodel import COUNT_SETS, INFLIGHT
from system_under_test.streams import PAYMENTS_LEDGER, dedupe_key
from tests.integration.test_snapshot import redis_url  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[3]


def _history(run_dir: Path, url: str) -> str:
    """Three orders asked for, two accepted a minute ago (k1 placed and completed, k2 never
    placed), one refused; k1 captured twice; one order of another run in flight."""
    told = time.time() - 60
    with ClientLedger.create(run_dir, "c1") as ledger:
        for i, (key, outcome) in enumerate([("k1", "ok"), ("k2", "ok"), ("k3", "failed")]):
            ledger.record(
                op_id=f"c1-{i}", idempotency_key=key, customer_id="cus-1", amount_cents=100,
                currency="EUR", items=1, attempt=1, sent_at=told - 1, answered_at=told,
                status=202 if outcome == "ok" else 422, outcome=outcome,
            )  # fmt: skip
    placed, unplaced = order_id_for("k1"), order_id_for("k2")
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    r.hset(dedupe_key(placed), mapping={"OrderPlaced": "1-0", "NotificationSent": "6-0"})
    r.sadd(COUNT_SETS["placed"], placed, "ord-other")
    r.sadd(COUNT_SETS["completed"], placed)
    r.zadd(INFLIGHT, {"ord-other": (told - 5) * 1000})
    for _ in range(2):
        r.xadd(PAYMENTS_LEDGER, {"kind": "capture", "order_id": placed, "amount_cents": "100"})
    r.close()
    return unplaced


def test_the_live_monitor_reads_the_system_s_keys(
    tmp_path: Path,
    redis_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    _history(tmp_path, redis_url)
    got: list[LiveSnapshot] = []
    seen = threading.Event()
    client = connect(redis_url)
    monitor = LiveMonitor(tmp_path).start(
        client, every_s=0.1, on_update=lambda s: (got.append(s), seen.set())
    )
    try:
        assert seen.wait(20), "the live monitor never updated"
    finally:
        monitor.stop()
        client.close()
    snap = got[-1]
    assert snap.redis_ok and not snap.problem
    assert (snap.sent, snap.accepted) == (3, 2)
    assert (snap.completed, snap.cancelled, snap.in_flight) == (1, 0, 1)
    assert snap.oldest_in_flight_s >= 60
    assert (snap.suspected_lost, snap.double_captures) == (1, 1)


_TAB = """
import json, sys
from harness.live import LiveMonitor, connect
from harness.load.webui import ledger_rows
rows = ledger_rows(LiveMonitor(sys.argv[1]).poll(connect(sys.argv[2])))
print(json.dumps({row["metric"]: [row["value"], row["note"]] for row in rows}))
"""


def test_the_saga_ledger_tab_reads_the_system_s_keys(
    tmp_path: Path,
    redis_url: str,  # noqa: F811  (the fixture imported above)
) -> None:
    unplaced = _history(tmp_path, redis_url)
    out = subprocess.run(
        [sys.executable, "-c", _TAB, str(tmp_path), redis_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout.splitlines()[-1])
    assert rows["accepted (client told 202)"][0] == "2"
    assert rows["placed (OrderPlaced)"][0] == "1"
    assert rows["placed (OrderPlaced)"][1].startswith("whole system: 2 ")
    completed, cancelled = rows["completed (NotificationSent)"], rows["cancelled (OrderCancelled)"]
    assert completed[0] == "1" and completed[1].startswith("whole system: 1 ")
    assert cancelled[0] == "0"
    assert rows["in flight (whole system)"][0] == "1"
    assert rows["oldest in flight"][1].startswith("ord-other")
    count, note = rows["accepted, no OrderPlaced yet"]
    assert count == "1" and note.startswith(f"oldest {unplaced}")
