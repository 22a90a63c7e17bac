"""What the local platform reads from the kernel for its faults: frozen processes, and the
requests a process holds unread in its sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import psutil
import pytest

from harness.platforms.local_faults import freeze, frozen, run_slice, socket_queues, thaw

pytestmark = pytest.mark.unit


def _until(check, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_freeze_stops_a_process_and_its_children_and_thaw_lets_them_go() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    try:
        _until(lambda: psutil.Process(parent.pid).children())
        seen = freeze(parent.pid)
        child = psutil.Process(parent.pid).children()[0].pid
        assert seen == {"pids": sorted([parent.pid, child]), "stopped": True}
        procs = [psutil.Process(parent.pid)]
        assert {p.pid for p in frozen([*procs, psutil.Process(child)])} == {parent.pid, child}
        assert thaw(procs) == sorted([parent.pid, child])
        assert frozen([*procs, psutil.Process(child)]) == []
        assert thaw(procs) == []  # nothing frozen any more: idempotent
    finally:
        parent.kill()
        parent.wait()


def test_a_slice_lets_a_frozen_process_count_and_stops_it_again() -> None:
    """The process really runs during the slice (it counts), is stopped after it, and the
    measured slice is the one asked for plus little (the signals go straight to the pid)."""
    counter = subprocess.Popen(
        ["python3", "-c", "import sys\nn = 0\nwhile True:\n    n += 1\n    sys.stdout.write(f'{n}\\n')\n    sys.stdout.flush()"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert counter.stdout is not None
        counter.stdout.readline()
        freeze(counter.pid)
        os.set_blocking(counter.stdout.fileno(), False)
        while counter.stdout.read():  # drain what it wrote before it stopped
            pass
        ran = run_slice([counter.pid], 5)
        assert 5 <= ran < 100, ran
        assert frozen([psutil.Process(counter.pid)])  # stopped again
        time.sleep(0.05)
        written = counter.stdout.read() or b""
        assert written.count(b"\n") >= 1  # it ran: it wrote lines during the slice
        time.sleep(0.05)
        assert not counter.stdout.read()  # and nothing after
    finally:
        counter.kill()
        counter.wait()


def test_freeze_of_a_process_that_is_gone_says_it_did_not_stop() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert freeze(proc.pid) == {"pids": [], "stopped": False}


def test_socket_queues_count_connections_not_accepted_and_bytes_not_read() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        assert socket_queues(os.getpid(), port) == {
            "accept_queue": 0, "unread_bytes": 0, "connections_with_unread": 0,
        }  # fmt: skip
        with socket.create_connection(("127.0.0.1", port)) as client:
            _until(lambda: socket_queues(os.getpid(), port)["accept_queue"] == 1)
            conn, _ = server.accept()
            with conn:
                client.sendall(b"GET / HTTP/1.1\r\n\r\n")
                _until(lambda: socket_queues(os.getpid(), port)["unread_bytes"] == 18)
                assert socket_queues(os.getpid(), port)["connections_with_unread"] == 1
                conn.recv(100)
                _until(lambda: socket_queues(os.getpid(), port)["unread_bytes"] == 0)


def test_socket_queues_of_another_process_do_not_count() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            _until(lambda: socket_queues(os.getpid(), port)["accept_queue"] == 1)
            sleeper = subprocess.Popen(["sleep", "5"])
            try:
                assert socket_queues(sleeper.pid, port)["accept_queue"] == 0
            finally:
                sleeper.kill()
                sleeper.wait()


def test_resume_passes_over_a_replica_that_died_since_supervisord_listed_it(
    tmp_path, monkeypatch
) -> None:
    """A kill mid-request resumes the service right after the SIGKILL, while supervisord may
    still list the killed replica: the one still there is resumed, the dead one passed over."""
    from harness.platforms.local import LocalPlatform
    from harness.settings import LocalOptions, LocalPorts

    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(alive.pid, signal.SIGSTOP)
        platform = LocalPlatform(tmp_path, LocalPorts.free(), LocalOptions())
        listed = {"projection_00": dead.pid, "projection_01": alive.pid}
        monkeypatch.setattr(platform, "_pids_of", lambda service: listed)
        monkeypatch.setattr(psutil, "pid_exists", lambda pid: True)  # listed, then gone
        assert platform.resume("projection") == ["projection_01"]
        assert psutil.Process(alive.pid).status() != psutil.STATUS_STOPPED
    finally:
        alive.kill()
        alive.wait()
