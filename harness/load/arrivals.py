"""The open-model arrival schedule: when each order is due, whatever the system's answer times.

Arrival times invert the cumulative rate Λ(t) of a `RateCurve`: arrival k is due when Λ reaches
k + ½ (`uniform`) or the k-th point of a unit-rate Poisson process (`poisson`, seeded). The
schedule is global and numbered; with several Locust processes, process i of N sends the
arrivals k ≡ i (mod N), so the shares add up to the whole schedule, arrival for arrival.

A process's users are a pool: an idle user claims the next due arrival, sleeps until it is due,
sends it (retries included) and claims again. The pool is sized for the slowest answers
(`pool_size`); when every user is busy anyway, the arrival is sent late and the lag is measured
(`ArrivalStats`), never hidden.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from harness.load.curve import RateCurve

__all__ = [
    "Arrival",
    "ArrivalSchedule",
    "ArrivalStats",
    "pool_size",
]


@dataclass(frozen=True)
class Arrival:
    k: int  # number of the arrival in the whole schedule (all processes), from 0
    t_s: float  # when it is due, seconds after the run's start


class ArrivalSchedule:
    """The arrivals of one process, in time order, until `duration_s`."""

    def __init__(
        self,
        curve: RateCurve,
        duration_s: float,
        mode: str = "poisson",
        seed: int = 0,
        share: tuple[int, int] = (0, 1),
    ) -> None:
        index, count = share
        if mode not in ("poisson", "uniform"):
            raise ValueError(f"unknown arrival mode {mode!r}")
        if not (count >= 1 and 0 <= index < count):
            raise ValueError(f"bad share {share!r}")
        self.curve = curve
        self.duration_s = float(duration_s)
        self.mode = mode
        self.seed = seed
        self.share = (index, count)
        self.total_expected = curve.cumulative(self.duration_s)  # Λ(duration), all processes
        self._it = self._generate()
        self.exhausted = False

    def _points(self) -> Iterator[tuple[int, float]]:
        """(k, Λ-value) of every arrival of the whole schedule, in order."""
        end = self.total_expected
        if self.mode == "uniform":
            k = 0
            while k + 0.5 <= end:
                yield k, k + 0.5
                k += 1
        else:
            rng = random.Random(f"arrivals:{self.seed}")
            u, k = rng.expovariate(1.0), 0
            while u <= end:
                yield k, u
                u += rng.expovariate(1.0)
                k += 1

    def _generate(self) -> Iterator[Arrival]:
        index, count = self.share
        for k, u in self._points():
            if k % count == index:
                yield Arrival(k, min(self.curve.time_for_count(u), self.duration_s))

    def next(self) -> Arrival | None:
        """The next arrival of this process, or None once the schedule is over."""
        if self.exhausted:
            return None
        arrival = next(self._it, None)
        if arrival is None:
            self.exhausted = True
        return arrival

    def __iter__(self) -> Iterator[Arrival]:
        while (a := self.next()) is not None:
            yield a


def pool_size(
    curve: RateCurve,
    t_s: float,
    horizon_s: float,
    per_order_s: float,
    share_count: int = 1,
    margin: int = 5,
    cap: int | None = None,
) -> int:
    """Users one process needs so that its share of the rate survives the slowest answers.

    Each order can keep a user busy for `per_order_s` (every attempt timing out, full backoffs),
    so the pool is the peak rate of the coming `horizon_s` (this process's share) times that
    time, plus a margin; capped at `cap`.
    """
    peak = curve.max_rate(t_s, t_s + horizon_s) / share_count
    users = math.ceil(peak * per_order_s) + margin
    return min(users, cap) if cap else users


class ArrivalStats:
    """How late arrivals were sent: the measure that tells an open model from a closed one."""

    def __init__(self) -> None:
        self.claimed = 0
        self.sent = 0
        self.lags = array("d")

    def record(self, lag_s: float) -> None:
        self.sent += 1
        self.lags.append(max(0.0, lag_s))

    def summary(self) -> dict[str, float | int]:
        lags = sorted(self.lags)
        n = len(lags)

        def pct(q: float) -> float:
            return lags[min(n - 1, int(q * n))] if n else 0.0

        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "lag_p50_s": round(pct(0.50), 4),
            "lag_p99_s": round(pct(0.99), 4),
            "lag_max_s": round(lags[-1], 4) if n else 0.0,
            "late_100ms": sum(1 for x in lags if x > 0.1),
            "late_1s": sum(1 for x in lags if x > 1.0),
        }
