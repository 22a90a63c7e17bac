"""The terminal view of a run: phase, time, target vs achieved orders/s, in flight, faults active
now, and violations seen so far. Rendered by rich; plain lines when the output is not a terminal
(CI logs), so a log shows the same facts without cursor tricks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.live import LiveSnapshot

__all__ = ["Progress", "RunState"]


@dataclass
class RunState:
    """What the run is doing now; written by the orchestrator, read by the display."""

    run_dir: str = ""
    phase: str = "starting"
    started: float = field(default_factory=time.time)
    load_started: float | None = None
    load_duration_s: float = 0.0
    target_rate: float = 0.0  # the profile's mean orders/s over the run
    target_so_far: float | None = None  # orders the schedule had due by now
    sent: int = 0
    active_fault: str = ""
    experiments: list[tuple[str, str]] = field(default_factory=list)  # (name, status)
    watch: LiveSnapshot = field(default_factory=LiveSnapshot)  # the live monitor's latest
    note: str = ""


def _clock(seconds: float) -> str:
    minutes, sec = divmod(max(int(seconds), 0), 60)
    return f"{minutes:d}:{sec:02d}"


def _sent(state: RunState) -> int:
    """Orders sent so far, as shown beside the monitor's `accepted`.

    Two readers count them, each tailing the same ledgers at its own moment: the load runner
    (`state.sent`, every 2 s) and the live monitor (`state.watch.sent`, counted in the same pass
    as its `accepted`, so never below it). Both only grow, so the larger is the fresher, and
    being at least the monitor's own `sent` it is never below `accepted`: the view cannot show
    more orders accepted than sent, whichever reader read last."""
    return max(state.sent, state.watch.sent)


def render(state: RunState) -> Group:
    now = time.time()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("phase", f"[cyan]{state.phase}[/]  (elapsed {_clock(now - state.started)})")
    if state.load_started is not None:
        elapsed = now - state.load_started
        left = max(state.load_duration_s - elapsed, 0.0)
        sent = _sent(state)
        achieved = sent / elapsed if elapsed > 0 else 0.0
        table.add_row(
            "load", f"{_clock(elapsed)} of {_clock(state.load_duration_s)}, {_clock(left)} left"
        )
        due = f", {state.target_so_far:.0f} due" if state.target_so_far is not None else ""
        table.add_row(
            "orders/s",
            f"target {state.target_rate:.1f}  achieved {achieved:.1f}  ({sent} sent{due})",
        )
    w = state.watch
    table.add_row(
        "orders",
        f"accepted {w.accepted}  completed {w.completed}  cancelled {w.cancelled}  "
        f"in flight {w.in_flight} (oldest {w.oldest_in_flight_s:.0f} s)",
    )
    table.add_row(
        "fault now", f"[magenta]{state.active_fault}[/]" if state.active_fault else "none"
    )
    if state.experiments:
        done = "  ".join(
            f"{name} [{'green' if s == 'completed' else 'red'}]{s}[/]"
            for name, s in state.experiments
        )
        table.add_row("experiments", done)
    seen = w.suspected_lost + w.double_captures
    style = "bold red" if seen else "green"
    table.add_row(
        "violations so far",
        f"[{style}]{w.suspected_lost} suspected lost, {w.double_captures} double captures[/]"
        + ("" if w.redis_ok else "  [yellow](redis not answering)[/]"),
    )
    parts: list[Table | Text] = [table]
    if state.note:
        parts.append(Text(state.note, style="dim"))
    return Group(*parts)


class Progress:
    """Refreshes the view a few times a second in a terminal; a line every 15 s otherwise."""

    def __init__(self, state: RunState, console: Console) -> None:
        self.state = state
        self._console = console
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self._console.is_terminal:
            self._live = Live(
                render(self.state), console=self._console, refresh_per_second=2, transient=False
            )
            self._live.__enter__()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        every = 0.5 if self._live else 15.0
        while not self._stop.wait(every):
            self.refresh()

    def refresh(self) -> None:
        if self._live:
            self._live.update(render(self.state))
        else:
            # one unwrapped line per update (CI logs): soft_wrap leaves long lines to the log's
            # reader, whatever width rich guessed; sent and accepted cannot contradict (_sent)
            s, w = self.state, self.state.watch
            self._console.print(
                f"{s.phase}: sent {_sent(s)} accepted {w.accepted} completed {w.completed} "
                f"in flight {w.in_flight} fault: {s.active_fault or 'none'} "
                f"suspected lost {w.suspected_lost} double captures {w.double_captures}",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip

    def log(self, message: str) -> None:
        """A line that stays above the live view (phase changes, experiment results); in a log
        that is not a terminal, one line whatever its length, like the updates."""
        self._console.print(message, soft_wrap=not self._console.is_terminal)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._live:
            self._live.update(render(self.state))
            self._live.__exit__(None, None, None)
