"""The Saga ledger tab in a real headless browser: a real Locust web UI (the project's
locustfile, a run started through its own /swarm) and a real redis-server written with the
system's own key names; Chromium loads the tab and the chart must be drawn from the monitor's
data: a line per series with a point per poll, the legend, the fault windows shaded (the one on
now as well), and Locust's table beside it. `make setup` installs chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.chaos.faults import FaultWindow, append_fault
from harness.ids import order_id_for
from harness.load.ledger import ClientLedger
from harness.settings import free_port
from system_under_test.projection.readmodel import INFLIGHT
from system_under_test.streams import dedupe_key
from tests.integration.test_snapshot import redis_url  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SERIES = ("accepted", "placed", "terminal", "in_flight")
POLLS = 6  # chart points to wait for before the browser looks


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (make setup installs it: apt-get install chromium)")


def _get(url: str, data: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)


@pytest.fixture
def locust_ui(
    tmp_path: Path,
    redis_url: str,  # noqa: F811  (the fixture imported above)
) -> Iterator[str]:
    """Locust's web UI on a free port, its run started; the order API it sends to is closed
    (its attempts are `unknown` in its own ledger), the orders the test accepts are its own."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SAGAQUAKE_RUN_DIR": str(tmp_path),
        "SAGAQUAKE_REDIS_URL": redis_url,
        "SAGAQUAKE_PROFILE": "flat",
        "SAGAQUAKE_DURATION_S": "120",
    }
    log = tmp_path / "locust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios/load/locustfile.py"),
             "--host", f"http://127.0.0.1:{free_port()}",
             "--web-host", "127.0.0.1", "--web-port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/saga-ledger.json")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"locust web ui did not come up:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        # the extended tabs only show while a run is on
        assert _get(f"{base}/swarm", data=b"").get("success"), log.read_text()[-3000:]
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _orders_flow(run_dir: Path, url: str, base: str) -> None:
    """Orders accepted, placed and completed over a few polls, under two fault windows: one
    ended, one on now."""
    now = time.time()
    append_fault(
        run_dir,
        {"experiment": "payment-outage", "action": "outage", "target": "payment-service",
         "started_at": now - 1, "ended_at": now + 2, "landed": True, "evidence": {}},
    )  # fmt: skip
    FaultWindow(run_dir, "kill-saga-workers", "kill_replicas", "saga-worker").open(now + 4)
    r = redis.Redis.from_url(url, decode_responses=True)
    with ClientLedger.create(run_dir, "browser") as ledger:
        for i in range(40):
            key, at = f"b{i}", time.time()
            ledger.record(
                op_id=f"browser-{i}", idempotency_key=key, customer_id="cus-1", amount_cents=100,
                currency="EUR", items=1, attempt=1, sent_at=at, answered_at=at, status=202,
                outcome="ok",
            )  # fmt: skip
            order = order_id_for(key)
            r.hset(dedupe_key(order), "OrderPlaced", "1-0")
            r.zadd(INFLIGHT, {order: at * 1000})
            if i >= 5:  # the order of five steps ago completes
                done = order_id_for(f"b{i - 5}")
                r.hset(dedupe_key(done), "NotificationSent", "9-0")
                r.zrem(INFLIGHT, done)
            if i % 5 == 4 and len(_get(f"{base}/saga-ledger.json")["series"]["t"]) > POLLS:
                break
            time.sleep(0.25)
    r.close()


def _dom(chromium: str, url: str, profile: Path) -> str:
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--dump-dom", url],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _drawn(dom: str) -> dict[str, int]:
    """Points of each series' polyline in the chart."""
    lines = re.findall(r'<polyline class="series (\w+)"[^>]*points="([^"]*)"', dom)
    return {name: len(points.split()) for name, points in lines}


def test_the_saga_ledger_tab_draws_its_chart_in_a_real_browser(
    tmp_path: Path,
    redis_url: str,  # noqa: F811  (the fixture imported above)
    locust_ui: str,
) -> None:
    chromium = _chromium()
    _orders_flow(tmp_path, redis_url, locust_ui)
    deadline = time.monotonic() + 30
    while len(_get(f"{locust_ui}/saga-ledger.json")["series"]["t"]) < POLLS:
        assert time.monotonic() < deadline, "the monitor did not poll"
        time.sleep(0.5)

    dom = _dom(chromium, f"{locust_ui}/?tab=saga-ledger", tmp_path / "chromium")
    assert 'class="saga-ledger-chart"' in dom, dom[-3000:]
    drawn = _drawn(dom)
    assert set(drawn) == set(SERIES)
    assert all(n >= POLLS for n in drawn.values()), drawn
    legend = re.findall(r'<g class="legend" data-series="(\w+)">.*?<text[^>]*>([^<]*)</text>', dom)
    assert [name for name, _ in legend] == list(SERIES)
    accepted = int(legend[0][1].split(": ")[1].replace(",", ""))
    assert accepted >= 5  # the test's orders, counted from the ledger by the monitor
    assert re.search(r'<rect class="fault"', dom), "the ended fault window is not shaded"
    assert re.search(r'<rect class="fault active"', dom), "the fault on now is not shaded"
    assert "fault now: kill-saga-workers: kill_replicas saga-worker" in dom
    assert "accepted (client told 202)" in dom  # Locust's table of the tab, beside the chart

    page = _dom(chromium, f"{locust_ui}/saga-ledger", tmp_path / "chromium")
    assert set(_drawn(page)) == set(SERIES) and "suspected lost" in page
