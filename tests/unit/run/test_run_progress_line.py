"""In a log that is not a terminal (CI), each progress update is one line, whatever its length,
with the phase shown and counts from one source."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.run.progress import Progress, RunState
from harness.run.watch import WatchSnapshot

pytestmark = pytest.mark.unit


def test_an_update_in_a_log_is_one_unwrapped_line_with_its_phase() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=False)
    state = RunState(run_dir="/tmp/run", load_duration_s=60, target_rate=5)
    state.phase = "load"
    state.active_fault = "payment-lost-replies"
    state.watch = WatchSnapshot(sent=120, accepted=118, completed=100, inflight=18)
    Progress(state, console).refresh()
    (line,) = out.getvalue().splitlines()
    assert line == (
        "load: sent 120 accepted 118 completed 100 in flight 18 fault: payment-lost-replies "
        "suspected lost 0 double captures 0"
    )
