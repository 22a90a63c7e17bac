"""The local platform's whole life on its own stack: up, an order, a SIGKILL, a 20 s outage,
scaling, and a down that leaves no process and no port behind."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from harness.errors import StackAlreadyRunningError
from harness.platforms.local import LocalPlatform
from harness.platforms.stackstate import marked_processes
from harness.settings import LocalOptions, LocalPorts, port_is_free
from tests.integration.orders import key_where, order_body, place, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_up_kill_outage_scale_down(tmp_path, monkeypatch) -> None:
    # a stack of its own, beside the session's: its own pointer to the running stack
    monkeypatch.setenv("SAGAQUAKE_STATE_DIR", str(tmp_path / "state"))
    ports = LocalPorts.free()
    platform = LocalPlatform(tmp_path, ports, LocalOptions())
    platform.up(timeout_s=180)
    try:
        e = platform.endpoints()
        with pytest.raises(StackAlreadyRunningError, match="already running"):
            LocalPlatform(tmp_path / "second", LocalPorts.free(), LocalOptions()).up()

        first = place(e, order_body(), key_where(False)).json()["order_id"]
        assert wait_terminal(e, first)[-1] == "NotificationSent"

        # SIGKILL one payment replica: it comes back by itself as a new process, ready
        [evidence] = platform.kill("payment-service", count=1, signal="KILL")
        assert evidence.landed and evidence.restarts_after == evidence.restarts_before + 1
        assert (
            not psutil.pid_exists(int(evidence.old_uid))
            or psutil.Process(int(evidence.old_uid)).status() == "zombie"
        )
        assert all(r.ready for r in platform.status() if r.service == "payment-service")

        # a 20 s payment outage while orders keep arriving: they complete once it returns
        ids: list[str] = []

        def arrivals() -> None:
            for _ in range(10):
                ids.append(place(e, order_body("SKU-0050"), key_where(False)).json()["order_id"])
                time.sleep(2)

        platform.stop("payment-service")
        sender = threading.Thread(target=arrivals)
        sender.start()
        time.sleep(20)
        assert not [
            r for r in platform.status() if r.service == "payment-service" and r.state == "RUNNING"
        ]
        platform.start("payment-service")
        sender.join()
        for order_id in ids:
            assert wait_terminal(e, order_id, 90)[-1] == "NotificationSent"

        # scale out and in, like a Deployment
        platform.scale("payment-service", 3)
        assert sum(r.ready for r in platform.status() if r.service == "payment-service") == 3
        platform.scale("payment-service", 1)
        assert [r.name for r in platform.status() if r.service == "payment-service"] == [
            "payment-service_00"
        ]
        assert (
            wait_terminal(e, place(e, order_body(), key_where(False)).json()["order_id"])[-1]
            == "NotificationSent"
        )
        pids = [p.pid for p in marked_processes(platform.stack_id)]
        assert len(pids) >= 9
    finally:
        platform.down()
    time.sleep(0.5)
    assert not [
        pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert marked_processes(platform.stack_id) == []
    taken = {name: port for name, port in ports.named().items() if not port_is_free(port)}
    assert taken == {}
    assert not platform.is_up()
