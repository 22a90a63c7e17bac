"""The throughput ceiling: step the arrival rate until completions fall behind.

Why a ladder of fixed-rate steps rather than one ramp: at a fixed offered rate a system either
keeps up (completions match arrivals, the backlog stays flat) or it does not (the backlog
grows for as long as the step lasts), and both are visible within one step. A ramp mixes the
two. One definition serves our saga and the bare workflow, so their ceilings compare.

Definitions (printed by bench_saga and recorded in its JSON):

- A **step** offers `rate` arrivals per second, evenly spaced, for `step_s` seconds. Its
  **window** is `[t0 + warmup_s, t0 + step_s)`, `t0` being the schedule's start; the first
  `warmup_s` seconds are not measured.
- **completed rate**: workflows that closed inside the window / the window's length.
- **backlog(t)**: arrivals sent by `t` minus workflows closed by `t`, both counted from the
  step's start (each step starts with nothing in flight: the previous one has settled).
- A step **keeps up** when completed rate >= 95% of the offered rate, the backlog grew by at most
  2 seconds' worth of arrivals (`max(3, 2 s x rate)`) over the window, and, for the saga, the
  projection's lag at the window's end is at most 2 seconds' worth of events
  (`max(20, 2 s x rate x 6 events)`).
- When a step fails and the generator itself sent less than 95% of the offered rate, `why` says
  so: that step measured the load generator, not the system.
- The **ceiling** is the offered rate of the highest step that keeps up. The ladder climbs by
  `factor` from `start` until a step does not keep up (if the first one does not, it descends),
  then bisects (geometrically) `refine` times between the last step that kept up and the first
  that did not. The **saturated rate** (the highest completed rate of any step) is reported
  beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "BACKLOG_GROWTH_S",
    "COMPLETION_RATIO",
    "EVENTS_PER_ORDER",
    "Ladder",
    "Step",
    "climb",
    "judge",
]

COMPLETION_RATIO = 0.95
BACKLOG_GROWTH_S = 2.0
EVENTS_PER_ORDER = 6  # the happy path's events in orders:events


@dataclass
class Step:
    """One fixed-rate step and what it showed."""

    system: str
    offered_rate: float
    window_s: float
    sent_rate: float  # what the generator actually sent in the window
    completed_rate: float
    backlog_start: int
    backlog_end: int
    orders_sent: int = 0  # over the whole step, warm-up included (the span of cpu_s)
    projection_lag_end: int | None = None  # saga only: entries not yet applied by the projection
    send_lag_p99_s: float | None = None
    failed_sends: int = 0
    keeps_up: bool = False
    why: str = ""
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process group, over the step
    wall_s: float = 0.0  # the step's wall time (for CPU shares)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def backlog_growth(self) -> int:
        return self.backlog_end - self.backlog_start

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "backlog_growth": self.backlog_growth}


def judge(step: Step) -> Step:
    """Apply the keeps-up rule to a measured step (sets keeps_up and why)."""
    problems = []
    if step.completed_rate < COMPLETION_RATIO * step.offered_rate:
        problems.append(
            f"completed {step.completed_rate:.2f}/s < {COMPLETION_RATIO:.0%} of {step.offered_rate:.2f}/s"
        )
    allowed = max(3.0, BACKLOG_GROWTH_S * step.offered_rate)
    if step.backlog_growth > allowed:
        problems.append(f"backlog grew by {step.backlog_growth} > {allowed:.0f}")
    if step.projection_lag_end is not None:
        lag_allowed = max(20.0, BACKLOG_GROWTH_S * step.offered_rate * EVENTS_PER_ORDER)
        if step.projection_lag_end < 0 or step.projection_lag_end > lag_allowed:
            problems.append(f"projection lag {step.projection_lag_end} > {lag_allowed:.0f}")
    if problems and step.sent_rate < COMPLETION_RATIO * step.offered_rate:
        # the generator itself fell behind: the step says more about the harness than the system
        problems.append(f"the generator sent only {step.sent_rate:.2f}/s")
    step.keeps_up = not problems
    step.why = "; ".join(problems) or "keeps up"
    return step


@dataclass
class Ladder:
    system: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ceiling(self) -> Step | None:
        passing = [s for s in self.steps if s.keeps_up]
        return max(passing, key=lambda s: s.offered_rate) if passing else None

    @property
    def saturated_rate(self) -> float | None:
        return max((s.completed_rate for s in self.steps), default=None)

    def as_dict(self) -> dict[str, Any]:
        c = self.ceiling
        return {
            "system": self.system,
            "ceiling_rate": c.offered_rate if c else None,
            "ceiling_completed_rate": c.completed_rate if c else None,
            "saturated_rate": self.saturated_rate,
            "steps": [s.as_dict() for s in self.steps],
        }


def climb(
    system: str,
    measure: Callable[[float], Step],
    start: float,
    factor: float,
    refine: int,
    max_rate: float,
    max_steps: int = 30,
    on_step: Callable[[Step], None] | None = None,
) -> Ladder:
    """Run the ladder: climb (or descend) by `factor`, then bisect `refine` times."""
    ladder = Ladder(system)

    def run(rate: float) -> Step:
        step = measure(rate)
        ladder.steps.append(step)
        if on_step is not None:
            on_step(step)
        return step

    first = run(start)
    if first.keeps_up:
        rate = start * factor
        while rate <= max_rate and len(ladder.steps) < max_steps and ladder.steps[-1].keeps_up:
            run(rate)
            rate *= factor
    else:
        rate = start / factor
        while len(ladder.steps) < min(max_steps, 4) and not ladder.steps[-1].keeps_up:
            run(rate)
            rate /= factor
    for _ in range(refine):
        passing = [s.offered_rate for s in ladder.steps if s.keeps_up]
        failing = [s.offered_rate for s in ladder.steps if not s.keeps_up]
        if not passing or not failing or len(ladder.steps) >= max_steps:
            break
        low = max(passing)
        above = [r for r in failing if r > low]
        if not above:
            break
        run(math.sqrt(low * min(above)))
    return ladder
