"""`sagaquake run` end to end, as CI and users run it: the smoke suite passes the gate, a
threshold that cannot be met fails it by name, and Ctrl-C in the middle of the chaos phase
leaves no process and no fault behind and still writes a report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.chaos.state import read_state
from harness.platforms.local_faults import nft_unsupported
from harness.platforms.stackstate import marked_processes
from harness.settings import isolated_env
from tests.integration.subprocesses import interruptible

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]


def _sagaquake(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def _run(tmp_path: Path, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """`sagaquake ARGS` to the end, isolated under tmp_path, its output captured."""
    return subprocess.run(
        _sagaquake(*args), env=isolated_env(tmp_path), capture_output=True, text=True,
        timeout=timeout_s,
    )  # fmt: skip


def _stack_id_of(run_dir: Path) -> str:
    conf = run_dir / "platform" / "supervisord.conf"
    return next(
        line.split("sagaquake-")[1]
        for line in conf.read_text().splitlines()
        if line.startswith("identifier=")
    )


def _stack_processes_of(run_dir: Path) -> list[psutil.Process]:
    """Processes of the stack this run started (every one carries its stack id)."""
    stack_id = _stack_id_of(run_dir)
    return [p for p in marked_processes(stack_id) if p.status() != psutil.STATUS_ZOMBIE]


def test_the_smoke_suite_passes_the_gate_and_writes_every_artefact(tmp_path) -> None:
    done = _run(tmp_path, "run", "--suite", "smoke")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "gate: PASS" in done.stdout
    run_dir = (tmp_path / "reports" / "latest").resolve()
    for name in (
        "report.html",
        "verdict.json",
        "gate.json",
        "summary.md",
        "junit.xml",
        "run.json",
        "locust/report.html",
        "chaos/kill-payment-pods.journal.json",
        "chaos/redis-memory-exhaustion.journal.json",
        "chaos/payment-lost-replies.journal.json",
        "history/faults.jsonl",
        "history/streams/orders.events.jsonl",
        "history/temporal.jsonl",
    ):
        assert (run_dir / name).exists(), name
    verdict = json.loads((run_dir / "verdict.json").read_text())
    gate = json.loads((run_dir / "gate.json").read_text())
    assert verdict["ok"] is True and gate["status"] == "pass" and gate["verdict"] == "pass"
    assert gate["thresholds"] and all(t["ok"] for t in gate["thresholds"])
    assert "thresholds" not in verdict or verdict["thresholds"] == []  # the verifier's own only
    faults = [
        json.loads(line) for line in (run_dir / "history" / "faults.jsonl").read_text().splitlines()
    ]
    assert {f["experiment"] for f in faults} == {
        "kill-payment-pods", "redis-memory-exhaustion", "payment-lost-replies",
    }  # fmt: skip
    assert all(f["landed"] for f in faults)
    lost = next(f for f in faults if f["action"] == "lose_replies")
    assert lost["evidence"]["unheard"]["count"] >= 1  # it reached the ambiguous window
    assert json.loads((run_dir / "run.json").read_text())["incomplete"] is False
    assert _stack_processes_of(run_dir) == []
    # the run folder stands alone: verify and report again, later, with nothing running
    again = _run(tmp_path, "verify", str(run_dir), timeout_s=300)
    assert again.returncode == 0, again.stdout + again.stderr


UNMEETABLE = """
name: unmeetable
profile: flat
compress: 12
duration: 20s
thresholds:
  lost_orders: "== 0"
  orders_completed: ">= 1000000"
"""


def test_a_threshold_that_cannot_be_met_fails_the_gate_naming_it(tmp_path) -> None:
    suite = tmp_path / "unmeetable.yaml"
    suite.write_text(UNMEETABLE)
    done = _run(tmp_path, "run", "--suite", str(suite))
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "threshold failed: orders_completed >= 1e+06" in done.stdout
    assert "gate: FAIL" in done.stdout
    junit = ((tmp_path / "reports" / "latest") / "junit.xml").read_text()
    assert "orders_completed" in junit and "<failure" in junit


HOLDS_A_FAULT = """
name: interrupted
profile: flat
compress: 12
duration: 120s
experiments:
  - experiment: {experiment}
    at: 5s
    configuration: {{{key}: 1200}}    # 100 s at 12x: still on when we press Ctrl-C
"""


@pytest.mark.parametrize(
    ("experiment", "key"),
    [
        ("redis-memory-exhaustion", "hold_s"),  # a lowered memory limit
        ("payment-lost-replies", "lose_for_s"),  # an nftables rule
        ("payment-hang", "hang_s"),  # frozen processes
    ],
)
def test_ctrl_c_in_the_chaos_phase_rolls_back_tears_down_and_still_reports(
    tmp_path, experiment: str, key: str
) -> None:
    if key == "lose_for_s" and nft_unsupported():
        pytest.skip(str(nft_unsupported()))
    suite = tmp_path / "interrupted.yaml"
    suite.write_text(HOLDS_A_FAULT.format(experiment=experiment, key=key))
    proc = subprocess.Popen(
        _sagaquake("run", "--suite", str(suite)),
        env=isolated_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
    )
    run_dir: Path | None = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until the fault is on
        latest = tmp_path / "reports" / "latest"
        state = latest / "chaos" / "state.json"
        windows = read_state(latest).get("open_windows", {}) if state.exists() else {}
        if any(w.get("landed") for w in windows.values()):
            run_dir = latest.resolve()
            break
        time.sleep(0.5)
    assert run_dir is not None, "the memory fault never started"
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-4000:]
    assert "interrupted" in out
    run = json.loads((run_dir / "run.json").read_text())
    assert run["incomplete"] is True and "interrupted" in run["problem"]
    assert (run_dir / "report.html").exists() and "INCOMPLETE" in (
        run_dir / "report.html"
    ).read_text().upper()
    faults = [
        json.loads(line) for line in (run_dir / "history" / "faults.jsonl").read_text().splitlines()
    ]
    assert faults and all(f.get("ended_at") for f in faults), faults
    assert _stack_processes_of(run_dir) == []
    assert not (tmp_path / "state" / "stack.json").exists()
    if not nft_unsupported():
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert f"sagaquake_{_stack_id_of(run_dir)}" not in tables
