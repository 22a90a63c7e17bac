"""A day of order traffic as a rate curve, its exact integral and its inverse.

`DayCurve` is orders per production second over one day: linear between the hour midpoints of
the hourly weights (so a day's total is exact and there are no steps at the hour), multiplied by
spikes (steps), made of linear segments whose integral (piecewise quadratic) is exact and
invertible. `RateCurve` is that day as one run sees it: production time = start + wall time x
compress, days repeating.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.errors import ConfigError

__all__ = ["DAY_S", "DayCurve", "RateCurve"]

DAY_S = 86400.0


@dataclass(frozen=True)
class DayCurve:
    """Orders per production second over one day, as linear segments (jumps at spike edges)."""

    starts: tuple[float, ...]  # segment start times, production seconds after midnight
    ends: tuple[float, ...]
    r0: tuple[float, ...]  # rate at the start of the segment (orders per production second)
    r1: tuple[float, ...]  # rate at its end
    cum: tuple[float, ...]  # orders from midnight to the segment's start
    total: float

    @staticmethod
    def build(
        weights: Sequence[float],
        spikes: Iterable[tuple[float, float, float]],
        orders_per_day: float,
        source: str = "<profile>",
    ) -> DayCurve:
        """The day of 24 hourly weights (linear between hour midpoints) and spikes (start s,
        duration s, multiplier), scaled so that it sums to `orders_per_day`."""
        mids = [(h + 0.5) * 3600.0 for h in range(24)]

        def base(p: float) -> float:
            # linear through the hour midpoints, wrapping around midnight
            if p < mids[0]:
                left, right, lw, rw = mids[23] - DAY_S, mids[0], weights[23], weights[0]
            elif p >= mids[23]:
                left, right, lw, rw = mids[23], mids[0] + DAY_S, weights[23], weights[0]
            else:
                h = int((p - 1800.0) // 3600.0)
                left, right, lw, rw = mids[h], mids[h + 1], weights[h], weights[h + 1]
            return lw + (rw - lw) * (p - left) / (right - left)

        windows: list[tuple[float, float, float]] = []
        for at_s, duration_s, k in spikes:
            a, b = at_s, at_s + duration_s
            if b <= DAY_S:
                windows.append((a, b, k))
            else:  # wraps past midnight
                windows.append((a, DAY_S, k))
                windows.append((0.0, b - DAY_S, k))

        def multiplier(p: float) -> float:
            m = 1.0
            for a, b, k in windows:
                if a <= p < b:
                    m *= k
            return m

        points = sorted({0.0, DAY_S, *mids, *(w[0] for w in windows), *(w[1] for w in windows)})
        starts, ends, r0, r1, cum = [], [], [], [], []
        acc = 0.0
        for a, b in itertools.pairwise(points):
            if b <= a:
                continue
            m = multiplier((a + b) / 2.0)
            ra, rb = base(a) * m, base(b) * m
            starts.append(a)
            ends.append(b)
            r0.append(ra)
            r1.append(rb)
            cum.append(acc)
            acc += (ra + rb) / 2.0 * (b - a)
        if acc <= 0:
            raise ConfigError(
                f"{source}: key 'hourly_weights': the day has no orders "
                "(every weight or spike multiplier is 0); give some hour a weight > 0"
            )
        scale = orders_per_day / acc
        return DayCurve(
            starts=tuple(starts),
            ends=tuple(ends),
            r0=tuple(r * scale for r in r0),
            r1=tuple(r * scale for r in r1),
            cum=tuple(c * scale for c in cum),
            total=float(orders_per_day),
        )

    def _segment(self, p: float) -> int:
        return max(0, min(len(self.starts) - 1, bisect.bisect_right(self.starts, p) - 1))

    def rate(self, p: float) -> float:
        """Orders per production second at `p` seconds after midnight (0 <= p < a day)."""
        i = self._segment(p)
        a, b = self.starts[i], self.ends[i]
        return self.r0[i] + (self.r1[i] - self.r0[i]) * (p - a) / (b - a)

    def cumulative(self, p: float) -> float:
        """Orders from production time 0 to `p` (any p >= 0; days repeat)."""
        days = math.floor(p / DAY_S)
        q = p - days * DAY_S
        i = self._segment(q)
        a, b = self.starts[i], self.ends[i]
        ra = self.r0[i]
        slope = (self.r1[i] - ra) / (b - a)
        y = q - a
        return days * self.total + self.cum[i] + ra * y + slope * y * y / 2.0

    def inverse(self, n: float) -> float:
        """The production time at which the cumulative count reaches `n`."""
        days = math.floor(n / self.total)
        r = n - days * self.total
        i = max(0, min(len(self.cum) - 1, bisect.bisect_right(self.cum, r) - 1))
        # skip segments without orders so the answer is the first time the count is reached
        while i + 1 < len(self.cum) and self.cum[i + 1] <= r and self.r0[i] == self.r1[i] == 0:
            i += 1
        a, b = self.starts[i], self.ends[i]
        ra = self.r0[i]
        slope = (self.r1[i] - ra) / (b - a)
        rest = r - self.cum[i]
        if rest <= 0:
            y = 0.0
        else:
            root = math.sqrt(max(0.0, ra * ra + 2.0 * slope * rest))
            y = 2.0 * rest / (ra + root) if ra + root > 0 else 0.0
        return days * DAY_S + a + min(max(y, 0.0), b - a)

    def max_rate(self, p0: float, p1: float) -> float:
        """The highest rate over production times [p0, p1] (any p0 <= p1)."""
        if p1 - p0 >= DAY_S:
            return max(max(self.r0), max(self.r1))
        best = 0.0
        for lo, hi in _split_days(p0, p1):
            best = max(best, self.rate(min(lo, DAY_S - 1e-9)))
            for k in range(self._segment(lo), len(self.starts)):
                a, b = self.starts[k], self.ends[k]
                if a > hi:
                    break
                x0, x1 = max(a, lo), min(b, hi)
                if x1 < x0:
                    continue
                slope = (self.r1[k] - self.r0[k]) / (b - a)
                best = max(best, self.r0[k] + slope * (x0 - a), self.r0[k] + slope * (x1 - a))
        return best


def _split_days(p0: float, p1: float) -> list[tuple[float, float]]:
    """[p0, p1] as windows of single days, in time-of-day seconds."""
    out = []
    while p0 < p1:
        day = math.floor(p0 / DAY_S) * DAY_S
        hi = min(p1, day + DAY_S)
        out.append((p0 - day, hi - day))
        p0 = hi
    return out or [(p0 % DAY_S, p0 % DAY_S)]


@dataclass(frozen=True)
class RateCurve:
    """The profile's rate as seen by one run: production time = start + wall time x compress."""

    day: DayCurve
    compress: float
    start_s: float  # production seconds after midnight where the run starts

    def production_time(self, t_s: float) -> float:
        return self.start_s + t_s * self.compress

    def rate_at(self, t_s: float) -> float:
        """Orders per wall-clock second at wall second `t_s` of the run."""
        return self.compress * self.day.rate(self.production_time(t_s) % DAY_S)

    def expected_orders(self, duration_s: float) -> float:
        """Orders placed between wall seconds 0 and `duration_s`."""
        return self.cumulative(duration_s)

    def cumulative(self, t_s: float) -> float:
        return self.day.cumulative(self.production_time(t_s)) - self.day.cumulative(self.start_s)

    def time_for_count(self, n: float) -> float:
        """The wall second at which the run has placed `n` orders (the inverse of `cumulative`)."""
        p = self.day.inverse(self.day.cumulative(self.start_s) + n)
        return max(0.0, (p - self.start_s) / self.compress)

    def max_rate(self, t0_s: float, t1_s: float) -> float:
        """The highest wall-clock rate between wall seconds t0 and t1."""
        return self.compress * self.day.max_rate(
            self.production_time(t0_s), self.production_time(t1_s)
        )
