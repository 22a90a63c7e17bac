"""Rollbacks always run and put the stack back: after a method that fails half-way, after
Ctrl-C in a `chaos run` mid-fault, and after the safeguard aborts an experiment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.exceptions
import yaml

from harness.chaos.faults import read_faults
from harness.chaos.runner import EXPERIMENTS_DIR, run_experiment_file
from harness.chaos.state import read_state
from tests.integration.subprocesses import interruptible

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

CHAOS = Path(sys.executable).parent / "chaos"


def _redis_accepts_writes(stack) -> bool:  # type: ignore[no-untyped-def]
    return stack.platform.redis("SET", "test:chaos:write", "1", "EX", "10") is True


def test_a_method_failing_half_way_is_rolled_back(stack, chaos_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    original = stack.platform.redis("CONFIG", "GET", "maxmemory")["maxmemory"]
    experiment = {
        "title": "Lower Redis's memory, then fail",
        "description": "The second action fails while Redis refuses writes.",
        "configuration": {"sagaquake_experiment": "half-way"},
        "method": [
            {"type": "action", "name": "lower-maxmemory",
             "provider": {"type": "python", "module": "harness.chaos.actions",
                          "func": "lower_redis_maxmemory", "arguments": {"fraction": 0.5}}},
            {"type": "action", "name": "explode",
             "provider": {"type": "python", "module": "tests.integration.chaos.failing",
                          "func": "explode"}},
            {"type": "action", "name": "never-reached",
             "provider": {"type": "python", "module": "harness.chaos.actions",
                          "func": "kill_replicas", "arguments": {"service": "projection"}}},
        ],
        "rollbacks": [
            {"type": "action", "name": "restore-redis-maxmemory",
             "provider": {"type": "python", "module": "harness.chaos.rollbacks",
                          "func": "restore_redis_maxmemory"}},
            {"type": "action", "name": "every-service-is-up",
             "provider": {"type": "python", "module": "harness.chaos.rollbacks",
                          "func": "ensure_stack_ready"}},
        ],
    }  # fmt: skip
    path = tmp_path / "half-way.yaml"
    path.write_text(yaml.safe_dump(experiment))
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    journal = run_experiment_file(path, run_dir, "local")

    assert journal["status"] == "failed"
    (failure,) = journal["sagaquake"]["failed_actions"]
    assert failure.startswith("explode:") and "redis refused writes: True" in failure
    assert [r["activity"]["name"] for r in journal["run"]] == ["lower-maxmemory", "explode"]
    restored = journal["rollbacks"][0]
    assert restored["status"] == "succeeded" and restored["output"]["restored"] is True
    assert str(restored["output"]["maxmemory"]) == original
    assert journal["rollbacks"][1]["status"] == "succeeded"
    assert _redis_accepts_writes(stack)
    assert "redis_maxmemory" not in read_state(run_dir)
    (window,) = read_faults(run_dir)
    assert window["action"] == "lower_redis_maxmemory" and window["landed"] is True
    assert window["evidence"]["refused_write"].startswith("OutOfMemoryError")
    assert window["evidence"]["closed_by"] == "restore_redis_maxmemory"


def test_ctrl_c_during_chaos_run_still_rolls_back(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    journal_path = run_dir / "journal.json"
    env = {
        **os.environ,
        "SAGAQUAKE_RUN_DIR": str(run_dir),
        "SAGAQUAKE_CHAOS_HOLD_S": "300",  # far longer than the test waits
        "SAGAQUAKE_COMPRESS": "1",
        "HOME": str(run_dir),  # no user settings file
    }
    proc = subprocess.Popen(
        [str(CHAOS), "--no-version-check", "--no-log-file", "run", "--journal-path",
         str(journal_path), str(EXPERIMENTS_DIR / "redis-memory-exhaustion.yaml")],
        cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "redis_maxmemory" not in read_state(run_dir) or _redis_accepts_writes_quietly(stack):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the fault never landed"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # Ctrl-C mid-method, while Redis refuses writes
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert "Received a termination signal (Ctrl-C)" in out, out
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted"
    names = [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]]
    assert names == [("restore-redis-maxmemory", "succeeded"), ("every-service-is-up", "succeeded")]
    assert _redis_accepts_writes(stack)
    (window,) = read_faults(run_dir)
    assert window["landed"] is True and window["evidence"]["interrupted"] == "KeyboardInterrupt"
    assert window["evidence"]["restored"]["restored"] is True
    assert (run_dir / "chaos" / "redis-memory-exhaustion.journal.json").exists()


def _redis_accepts_writes_quietly(stack) -> bool:  # type: ignore[no-untyped-def]
    try:
        return _redis_accepts_writes(stack)
    except redis.exceptions.OutOfMemoryError:
        return False


def test_the_safeguard_aborts_an_experiment_out_of_budget_and_rolls_it_back(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    run_dir = chaos_run["sagaquake_run_dir"]
    started = time.monotonic()
    journal = run_experiment_file(
        "redis-memory-exhaustion",
        run_dir,
        "local",
        {
            "hold_s": 300,  # 5 minutes: the safeguard must cut it short
            "sagaquake_compress": 1,
            "safeguard_max_error_ratio": -1,  # every measure is out of this budget
            "safeguard_grace_s": 2,
        },
    )
    took = time.monotonic() - started
    assert took < 60, f"the safeguard did not cut the 300 s fault short ({took:.0f} s)"
    assert journal["status"] == "aborted"
    fired = journal["sagaquake"]["safeguard"]["fired"]
    assert fired["limit"] == "acceptance_rate.error_ratio <= -1" and fired["out_of_budget_s"] >= 2
    assert all(r["status"] == "succeeded" for r in journal["rollbacks"]), journal["rollbacks"]
    assert _redis_accepts_writes(stack)
    (window,) = read_faults(run_dir)
    assert window["landed"] is True and window["evidence"]["interrupted"] == "SystemExit: 20"
    assert window["ended_at"] - window["started_at"] < 30
