"""Load profiles: a day of order traffic as data, and its rate at any second of a compressed run.

A profile (read and checked from `scenarios/load/profiles/<name>.yaml` by profile_loader.py)
gives the orders of one production day, an hourly curve, spikes and the client's order mix,
retry policy and patience. `Profile.curve()` turns it into a `RateCurve`: orders per wall-clock
second for a run that starts at `start_hour` of the day and plays production time `compress`
times faster. Totals follow production time, so compression scales the rate, never the number
of orders of a window of the day.

The hourly weights are the relative orders of each hour; the curve interpolates linearly between
hour midpoints (no steps at hour boundaries), which keeps the day's total exact. A spike multiplies
the curve inside its window; the whole day, spikes included, then sums to `orders_per_day`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from harness.errors import ConfigError
from harness.load.curve import DAY_S, DayCurve, RateCurve
from harness.numbers import number

__all__ = ["OrderMix", "Patience", "Profile", "RetryPolicy", "Spike"]


@dataclass(frozen=True)
class Spike:
    """A window of the day whose rate is multiplied (a marketing e-mail, a flash sale)."""

    at_s: float  # seconds after midnight, production time
    duration_s: float
    multiplier: float

    @property
    def at(self) -> str:
        return f"{int(self.at_s // 3600):02d}:{int(self.at_s % 3600 // 60):02d}"


@dataclass(frozen=True)
class RetryPolicy:
    """What a client does when an answer is lost: retry with the same idempotency key."""

    timeout_s: float = 5.0
    max_attempts: int = 3
    backoff_s: float = 0.5
    backoff_multiplier: float = 2.0
    max_backoff_s: float = 5.0
    jitter: float = 0.5  # each backoff is shortened by up to this fraction, at random
    retry_on_status: tuple[int, ...] = (503,)

    def backoff(self, attempt: int) -> float:
        """The longest pause after failed attempt `attempt` (1-based), before jitter."""
        return min(self.max_backoff_s, self.backoff_s * self.backoff_multiplier ** (attempt - 1))

    @property
    def worst_case_s(self) -> float:
        """The longest one order can keep a client busy: every attempt times out, full backoffs."""
        pauses = sum(self.backoff(a) for a in range(1, self.max_attempts))
        return self.max_attempts * self.timeout_s + pauses


@dataclass(frozen=True)
class Patience:
    """Customers whose order has not finished after `after_s` production seconds look at it,
    and `cancel_share` of them cancel it: an outage turns into cancellations, and a charge that
    went through before the cancel must be refunded in full."""

    after_s: float = 300.0
    cancel_share: float = 0.25


@dataclass(frozen=True)
class OrderMix:
    """What orders look like: line items, SKU popularity, customers, prices, currencies."""

    items_per_order: dict[int, float] = field(default_factory=lambda: {1: 1.0})
    qty_per_item: dict[int, float] = field(default_factory=lambda: {1: 1.0})
    sku_count: int = 200
    zipf_s: float = 1.0
    rank_seed: int | None = None
    customers: int = 10000
    unit_price_min_cents: int = 500
    unit_price_max_cents: int = 20000
    currencies: dict[str, float] = field(default_factory=lambda: {"EUR": 1.0})


@dataclass(frozen=True)
class Profile:
    """One day of order traffic (see the module docstring and docs/load.md)."""

    name: str
    source: str
    orders_per_day: float
    hourly_weights: tuple[float, ...]
    spikes: tuple[Spike, ...] = ()
    compress: float = 24.0
    start_hour: float = 0.0
    arrivals: str = "poisson"
    description: str = ""
    order_mix: OrderMix = field(default_factory=OrderMix)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    patience: Patience = field(default_factory=Patience)

    @cached_property
    def _day(self) -> DayCurve:
        spikes = [(x.at_s, x.duration_s, x.multiplier) for x in self.spikes]
        return DayCurve.build(self.hourly_weights, spikes, self.orders_per_day, self.source)

    def curve(self, compress: float | None = None, start_hour: float | None = None) -> RateCurve:
        """The rate of a run at this compression, starting at this hour (the profile's by default)."""
        c = self.compress if compress is None else compress
        h = self.start_hour if start_hour is None else start_hour
        c = number(c, "compress", above=0)
        if not (isinstance(h, int | float) and 0 <= h < 24):
            raise ConfigError(f"start hour must be in [0, 24), got {h!r}")
        return RateCurve(self._day, c, float(h) * 3600.0)

    def rate_at(
        self, t_s: float, compress: float | None = None, start_hour: float | None = None
    ) -> float:
        """Orders per wall-clock second at second `t_s` of a compressed run."""
        return self.curve(compress, start_hour).rate_at(t_s)

    def expected_orders(
        self, duration_s: float, compress: float | None = None, start_hour: float | None = None
    ) -> float:
        """Orders a run of `duration_s` wall-clock seconds places (the integral of the rate)."""
        return self.curve(compress, start_hour).expected_orders(duration_s)

    def full_day_s(self, compress: float | None = None) -> float:
        """Wall-clock seconds that replay a whole day at this compression."""
        return DAY_S / (self.compress if compress is None else compress)
