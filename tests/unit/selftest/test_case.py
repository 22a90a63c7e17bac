"""A case's child process: past its budget it is stopped (SIGINT first, so `sagaquake run` can
roll back and tear down) and the case is not mistaken for the user's Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

import harness.selftest.case as case
from harness.selftest.case import _own_group, _wait

pytestmark = pytest.mark.unit


def test_a_child_past_its_budget_gets_sigint_and_the_case_timed_out() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    raise SystemExit(130)"],
        preexec_fn=_own_group,
    )  # fmt: skip
    ticks: list[float] = []
    code, ended = _wait(child, 1.0, ticks.append)
    assert (code, ended) == (130, "timed out")  # it got Ctrl-C (KeyboardInterrupt), not a kill
    assert ticks and ticks[-1] >= 1.0


def test_a_child_that_ends_by_itself_is_done() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"], preexec_fn=_own_group)
    assert _wait(child, 60.0, lambda _: None) == (1, "done")


def test_a_child_that_ignores_sigint_is_terminated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(case, "CLEANUP_WAIT_S", 1.0)
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)"],
        preexec_fn=_own_group,
    )  # fmt: skip
    code, ended = _wait(child, 0.5, lambda _: None)
    assert (code, ended) == (-signal.SIGTERM, "timed out")
