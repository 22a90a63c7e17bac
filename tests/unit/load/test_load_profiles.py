"""Profile math: day totals, compression, spikes, the inverse of the cumulative rate."""

from __future__ import annotations

import pytest

from harness.load.curve import DAY_S
from harness.load.profile_loader import (
    PROFILES_DIR,
    available_profiles,
    load_profile,
    parse_profile,
)

pytestmark = pytest.mark.unit

SHIPPED = ["black-friday", "daily-50k", "flat", "peak-75k"]


def _profile(**overrides):
    doc = {"orders_per_day": 24000, "hourly_weights": [1] * 24}
    doc.update(overrides)
    return parse_profile(doc, source="test.yaml", name="test")


def test_the_shipped_profiles_are_all_valid() -> None:
    assert available_profiles() == SHIPPED
    for name in SHIPPED:
        profile = load_profile(name)
        assert profile.name == name
        assert profile.source.endswith(f"{name}.yaml")


def test_a_daily_50k_day_sums_to_50000() -> None:
    day = load_profile("daily-50k").expected_orders(DAY_S, compress=1, start_hour=0)
    assert day == pytest.approx(50_000, rel=0.005)
    # and whatever the hour the day starts at
    assert load_profile("daily-50k").expected_orders(
        DAY_S, compress=1, start_hour=13.5
    ) == pytest.approx(50_000, rel=0.005)


@pytest.mark.parametrize(
    "name,total", [("peak-75k", 75_000), ("black-friday", 250_000), ("flat", 36_000)]
)
def test_every_shipped_day_sums_to_its_orders_per_day(name: str, total: int) -> None:
    assert load_profile(name).expected_orders(DAY_S, compress=1, start_hour=0) == pytest.approx(
        total, rel=0.005
    )


@pytest.mark.parametrize("compress", [1, 6, 24, 60])
def test_compression_scales_the_rate_not_the_totals(compress: float) -> None:
    p = load_profile("daily-50k")
    # the same window of the day (08:00-12:00) holds the same orders at any compression
    window = 4 * 3600 / compress
    assert p.expected_orders(window, compress, 8) == pytest.approx(
        p.expected_orders(4 * 3600, 1, 8), rel=1e-9
    )
    # and is played `compress` times faster
    assert p.rate_at(window / 2, compress, 8) == pytest.approx(
        compress * p.rate_at(2 * 3600, 1, 8), rel=1e-9
    )
    # a whole day at 24x takes an hour and still holds the day's orders
    assert p.full_day_s(24) == 3600
    assert p.expected_orders(3600, 24, 0) == pytest.approx(50_000, rel=1e-9)


def test_a_flat_profile_is_flat() -> None:
    p = load_profile("flat")
    assert p.rate_at(0) == pytest.approx(10.0)
    assert p.rate_at(1234.5) == pytest.approx(10.0)
    assert p.expected_orders(60) == pytest.approx(600.0)


def test_the_diurnal_curve_has_its_trough_at_night_and_its_peak_in_the_evening() -> None:
    p = load_profile("daily-50k")
    hourly = [p.expected_orders(3600, 1, h) for h in range(24)]
    assert min(range(24), key=hourly.__getitem__) in (3, 4)
    assert max(range(24), key=hourly.__getitem__) in (19, 20, 21)


def test_a_spike_raises_its_own_hour_and_keeps_the_day_total() -> None:
    p = _profile(spikes=[{"at": "15:00", "duration_min": 60, "multiplier": 3}])
    hours = [p.expected_orders(3600, 1, h) for h in range(24)]
    assert sum(hours) == pytest.approx(24_000)
    # 23 hours of weight 1 and one of weight 3: 24000 / 26 per ordinary hour
    assert hours[15] == pytest.approx(3 * hours[14])
    assert hours[14] == pytest.approx(24_000 / 26)
    assert hours[16] == pytest.approx(hours[14])
    assert p.rate_at(15.5 * 3600, 1, 0) == pytest.approx(3 * p.rate_at(14.5 * 3600, 1, 0))


def test_the_peak_75k_day_has_its_spike_at_three_pm_on_the_daily_50k_curve() -> None:
    peak, daily = load_profile("peak-75k"), load_profile("daily-50k")
    hours = [peak.expected_orders(3600, 1, h) for h in range(24)]
    assert sum(hours) == pytest.approx(75_000, rel=0.005)
    assert max(range(24), key=hours.__getitem__) == 15

    # the shape outside the spike is daily-50k's; inside, the e-mail doubles, then adds half
    def relative(p, hour: float) -> float:
        return p.rate_at(hour * 3600, 1, 0) / p.rate_at(10 * 3600, 1, 0)

    assert relative(peak, 20) == pytest.approx(relative(daily, 20))
    assert relative(peak, 15.25) == pytest.approx(2 * relative(daily, 15.25))
    assert relative(peak, 16.0) == pytest.approx(1.5 * relative(daily, 16.0))


def test_black_friday_ramps_steeply_in_the_morning() -> None:
    p = load_profile("black-friday")
    assert p.expected_orders(DAY_S, 1, 0) >= 4 * load_profile("daily-50k").expected_orders(
        DAY_S, 1, 0
    )
    assert p.rate_at(9 * 3600, 1, 0) > 4 * p.rate_at(5 * 3600, 1, 0)


def test_a_spike_across_midnight_wraps() -> None:
    p = _profile(spikes=[{"at": "23:30", "duration_min": 60, "multiplier": 2}])
    assert p.rate_at(23.75 * 3600, 1, 0) == pytest.approx(2 * p.rate_at(12 * 3600, 1, 0))
    assert p.rate_at(0.25 * 3600, 1, 0) == pytest.approx(2 * p.rate_at(12 * 3600, 1, 0))
    assert p.rate_at(0.75 * 3600, 1, 0) == pytest.approx(p.rate_at(12 * 3600, 1, 0))


def test_a_run_longer_than_a_day_repeats_the_day() -> None:
    p = load_profile("daily-50k")
    assert p.expected_orders(2 * DAY_S + 3600, 1, 6) == pytest.approx(
        100_000 + p.expected_orders(3600, 1, 6)
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_time_for_count_inverts_the_cumulative_count(name: str) -> None:
    curve = load_profile(name).curve(compress=24)
    for n in [0.5, 1, 17.25, 500, 4321.5, curve.cumulative(3599.0)]:
        t = curve.time_for_count(n)
        assert curve.cumulative(t) == pytest.approx(n, rel=1e-9, abs=1e-6)


def test_max_rate_finds_the_spike_inside_a_window() -> None:
    p = _profile(spikes=[{"at": "15:00", "duration_min": 1, "multiplier": 10}])
    curve = p.curve(compress=1, start_hour=14)
    base = curve.rate_at(0)
    assert curve.max_rate(0, 3000) == pytest.approx(base)
    assert curve.max_rate(0, 7200) == pytest.approx(10 * base)
    assert curve.max_rate(3630, 3640) == pytest.approx(10 * base)


def test_a_profile_is_found_by_name_or_path(tmp_path) -> None:
    by_name = load_profile("flat")
    by_path = load_profile(PROFILES_DIR / "flat.yaml")
    assert by_name.expected_orders(60) == by_path.expected_orders(60)
    copy = tmp_path / "mine.yml"
    copy.write_text((PROFILES_DIR / "flat.yaml").read_text())
    assert load_profile(str(copy)).name == "mine"
