"""`sagaquake up / status / endpoints / heal / down` as a user runs them, including the clean-up
of a stack whose supervisor died (a crash of the harness's process tree)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from harness.platforms.stackstate import marked_processes
from harness.settings import LocalPorts, isolated_env, port_is_free

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sagaquake(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_up_status_down_and_a_second_up_is_refused(tmp_path) -> None:
    env = isolated_env(tmp_path)
    up = sagaquake(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Temporal Web UI" in up.stdout and "order API" in up.stdout and "logs" in up.stdout

        again = sagaquake(env, "up")
        assert again.returncode == 3
        assert "already running" in again.stderr and "sagaquake down" in again.stderr
        assert "Traceback" not in again.stderr

        status = json.loads(sagaquake(env, "status", "--json").stdout)
        assert status["ready"] is True
        assert set(status["endpoints"]) >= {
            "order_api",
            "redis_url",
            "temporal_address",
            "temporal_ui",
        }
        names = [p["name"] for p in status["processes"]]
        assert {
            "redis",
            "temporal",
            "payment-service_00",
            "payment-service_01",
            "saga-worker_01",
            "projection_00",
        } <= set(names)

        endpoints = sagaquake(env, "endpoints", "--platform", "local")
        assert endpoints.returncode == 0 and json.loads(endpoints.stdout) == status["endpoints"]
        heal = sagaquake(env, "heal")  # nothing to undo: no fault was injected
        assert heal.returncode == 0, heal.stdout + heal.stderr
        assert {k: v for k, v in json.loads(heal.stdout).items() if k != "stale"} == {
            "healed": [],
            "resumed": [],
            "errors": [],
        }

        table = sagaquake(env, "status")
        assert (
            table.returncode == 0
            and "payment-service_01" in table.stdout
            and "restarts" in table.stdout
        )
    finally:
        down = sagaquake(env, "down")
    assert down.returncode == 0 and "stack stopped" in down.stdout
    missing = sagaquake(env, "status")
    assert missing.returncode == 3 and "no local stack is running" in missing.stderr


def test_a_stack_whose_supervisor_died_is_cleaned_up(tmp_path) -> None:
    env = isolated_env(tmp_path)
    assert sagaquake(env, "up").returncode == 0
    state = json.loads((tmp_path / "state" / "stack.json").read_text())
    stack_id = state["stack_id"]
    os.kill(state["supervisord_pid"], signal.SIGKILL)  # the children are orphaned, still running
    time.sleep(1)
    orphans = marked_processes(stack_id)
    assert orphans, "the children should have outlived their supervisor"
    down = sagaquake(env, "down")
    assert down.returncode == 0
    assert "stale stack" in down.stdout and "leftover" in down.stdout
    time.sleep(0.5)
    assert [p for p in marked_processes(stack_id) if p.status() != psutil.STATUS_ZOMBIE] == []
    # and by their ports, which sees even a process whose marker could not be read
    port_vars = set(LocalPorts().as_env()) - {"SAGAQUAKE_HEALTH_BASE_PORT"}
    assert {var: env[var] for var in port_vars if not port_is_free(int(env[var]))} == {}
