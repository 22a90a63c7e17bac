"""A restarted API replica takes no connection before it can answer it: its port listens only
once the app has started (a replica that listens at process start is handed, through the shared
SO_REUSEPORT port, connections it leaves unanswered while it connects to Temporal)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from harness.settings import free_port
from system_under_test.order.app import STARTUP_CONNECT_S

pytestmark = pytest.mark.integration


def connects(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_order_api_listens_only_once_started_and_serves_not_ready_when_temporal_is_silent() -> (
    None
):
    # a Temporal that accepts the TCP connection and never answers: the start-up connect waits
    silent = socket.create_server(("127.0.0.1", 0))
    port = free_port()
    env = {
        **os.environ,
        "SAGAQUAKE_PORT": str(port),
        "SAGAQUAKE_TEMPORAL_ADDRESS": f"127.0.0.1:{silent.getsockname()[1]}",
        "SAGAQUAKE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "system_under_test.order"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not connects(port):
            assert proc.poll() is None, "the order-service exited"
            assert time.monotonic() - started < 60, "the order-service never listened"
            time.sleep(0.05)
        listened_after = time.monotonic() - started
        # it waited out the start-up connect before it listened ...
        assert listened_after >= STARTUP_CONNECT_S
        # ... and then serves, saying what it lacks
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 503 and "temporal" in ready.text
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        silent.close()
