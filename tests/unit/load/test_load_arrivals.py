"""The open-model arrival schedule: counts follow the integral of the rate; shares add up."""

from __future__ import annotations

import math

import pytest

from harness.load.arrivals import ArrivalSchedule, ArrivalStats, pool_size
from harness.load.profile_loader import load_profile, parse_profile

pytestmark = pytest.mark.unit


def _count(schedule: ArrivalSchedule, a: float, b: float) -> int:
    return sum(1 for x in schedule if a <= x.t_s < b)


@pytest.mark.parametrize(
    "name,start", [("daily-50k", 8), ("peak-75k", 14.5), ("black-friday", 5), ("flat", 0)]
)
def test_uniform_arrivals_in_any_window_match_the_integral(name: str, start: float) -> None:
    curve = load_profile(name).curve(compress=24, start_hour=start)
    duration = 600.0
    arrivals = list(ArrivalSchedule(curve, duration, "uniform"))
    assert len(arrivals) == round(curve.cumulative(duration))
    for a, b in [(0, 60), (60, 90), (123.4, 456.7), (0, duration)]:
        got = sum(1 for x in arrivals if a <= x.t_s < b)
        assert abs(got - (curve.cumulative(b) - curve.cumulative(a))) <= 1.0


def test_uniform_arrivals_are_evenly_spaced_at_a_flat_rate() -> None:
    curve = load_profile("flat").curve()  # 10 orders/s
    times = [x.t_s for x in ArrivalSchedule(curve, 5.0, "uniform")]
    assert times[:3] == pytest.approx([0.05, 0.15, 0.25])
    assert len(times) == 50


def test_poisson_arrivals_match_the_integral_within_their_noise() -> None:
    curve = load_profile("daily-50k").curve(compress=24, start_hour=8)
    duration = 1200.0
    schedule = ArrivalSchedule(curve, duration, "poisson", seed=7)
    times = [x.t_s for x in schedule]
    for a, b in [(0, duration), (0, 300), (600, 1200)]:
        expected = curve.cumulative(b) - curve.cumulative(a)
        got = sum(1 for t in times if a <= t < b)
        assert abs(got - expected) <= 4 * math.sqrt(expected)  # 4 sigma
    assert times == sorted(times)


def test_poisson_arrivals_are_reproducible_from_their_seed() -> None:
    curve = load_profile("flat").curve()
    first = [x.t_s for x in ArrivalSchedule(curve, 30, "poisson", seed=3)]
    again = [x.t_s for x in ArrivalSchedule(curve, 30, "poisson", seed=3)]
    other = [x.t_s for x in ArrivalSchedule(curve, 30, "poisson", seed=4)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("mode", ["uniform", "poisson"])
@pytest.mark.parametrize("workers", [2, 3, 7])
def test_the_shares_of_the_workers_add_up_to_the_whole_schedule(mode: str, workers: int) -> None:
    curve = load_profile("peak-75k").curve(compress=24, start_hour=14.8)
    whole = [(x.k, x.t_s) for x in ArrivalSchedule(curve, 300, mode, seed=11)]
    shares = [
        [(x.k, x.t_s) for x in ArrivalSchedule(curve, 300, mode, seed=11, share=(i, workers))]
        for i in range(workers)
    ]
    assert sorted(pair for share in shares for pair in share) == whole
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1  # every N-th arrival: the load is split evenly


def test_the_schedule_ends_at_the_duration_and_stays_ended() -> None:
    schedule = ArrivalSchedule(load_profile("flat").curve(), 1.0, "uniform")
    assert [x.k for x in schedule] == list(range(10))
    assert schedule.exhausted
    assert schedule.next() is None


def test_a_silent_hour_gets_no_arrivals() -> None:
    weights = [1] * 24
    weights[3] = 0
    weights[2] = weights[4] = 0
    profile = parse_profile({"orders_per_day": 24000, "hourly_weights": weights})
    curve = profile.curve(compress=1, start_hour=3)
    # between 03:00 and 03:30 the curve is 0 (linear between the midpoints of silent hours)
    assert curve.cumulative(1800) == pytest.approx(0)
    assert list(ArrivalSchedule(curve, 1800, "uniform")) == []


def test_the_pool_survives_the_slowest_answers() -> None:
    curve = load_profile("flat").curve()  # 10/s
    policy = load_profile("flat").retry  # 3 attempts of 5 s, pauses 0.5 + 1
    assert policy.worst_case_s == pytest.approx(16.5)
    assert pool_size(curve, 0, 20, policy.worst_case_s) == math.ceil(10 * 16.5) + 5
    assert pool_size(curve, 0, 20, policy.worst_case_s, share_count=2) == math.ceil(5 * 16.5) + 5
    assert pool_size(curve, 0, 20, policy.worst_case_s, cap=50) == 50


def test_the_pool_is_sized_for_the_spike_ahead() -> None:
    profile = load_profile("peak-75k")
    curve = profile.curve(compress=24, start_hour=14.9)  # 15:00 is 15 s of wall time away
    before = pool_size(curve, 0, 5, 16.5)
    ahead = pool_size(curve, 0, 30, 16.5)
    assert ahead >= 1.9 * before  # the 15:00 e-mail doubles the rate: the pool doubles ahead of it


def test_lag_statistics() -> None:
    stats = ArrivalStats()
    for lag in [0.0, 0.01, 0.2, 1.5, -0.1]:
        stats.record(lag)
    s = stats.summary()
    assert s["sent"] == 5
    assert s["late_100ms"] == 2
    assert s["late_1s"] == 1
    assert s["lag_max_s"] == 1.5
