"""In a log that is not a terminal (CI), each progress update is one line, whatever its length,
with the phase shown and counts that cannot contradict each other (accepted <= sent)."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from harness.live import LiveSnapshot
from harness.run.progress import Progress, RunState, render

pytestmark = pytest.mark.unit


def test_an_update_in_a_log_is_one_unwrapped_line_with_its_phase() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=False)
    state = RunState(run_dir="/tmp/run", load_duration_s=60, target_rate=5)
    state.phase = "load"
    state.active_fault = "payment-lost-replies"
    state.watch = LiveSnapshot(sent=120, accepted=118, completed=100, in_flight=18)
    Progress(state, console).refresh()
    (line,) = out.getvalue().splitlines()
    assert line == (
        "load: sent 120 accepted 118 completed 100 in flight 18 fault: payment-lost-replies "
        "suspected lost 0 double captures 0"
    )


def _line(state: RunState) -> str:
    out = io.StringIO()
    Progress(state, Console(file=out, width=40, force_terminal=False)).refresh()
    (line,) = out.getvalue().splitlines()
    return line


def test_sent_is_the_fresher_of_the_two_readers_never_below_accepted() -> None:
    """The load runner's count (state.sent) and the watch's are read at different moments: the
    line shows the larger, so a watch that read the ledgers last cannot show accepted > sent,
    and a watch frozen by a Redis outage does not freeze sent."""
    state = RunState(phase="load")
    state.sent = 100  # the runner read the ledgers before the watch did
    state.watch = LiveSnapshot(sent=130, accepted=125)
    assert _line(state).startswith("load: sent 130 accepted 125 ")
    state.sent = 400  # Redis down: the watch's counts stay where they were
    assert _line(state).startswith("load: sent 400 accepted 125 ")


def test_the_terminal_view_shows_the_same_sent() -> None:
    state = RunState(phase="load", load_started=time.time() - 10, load_duration_s=60)
    state.sent = 100
    state.watch = LiveSnapshot(sent=130, accepted=125)
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=True).print(render(state))
    text = out.getvalue()
    assert "(130 sent)" in text and "accepted 125" in text


def test_a_log_message_in_a_log_is_one_line() -> None:
    out = io.StringIO()
    progress = Progress(RunState(), Console(file=out, width=40, force_terminal=False))
    message = "the stack holds an earlier history (1234 events): starting it afresh"
    progress.log(message)
    assert out.getvalue().splitlines() == [message]
