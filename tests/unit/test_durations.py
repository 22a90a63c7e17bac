"""The one duration grammar: the same text means the same time in a flag, a variable and a suite."""

from __future__ import annotations

import pytest

from harness.durations import format_duration, parse_duration
from harness.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150),
        (60, 60), ("1.5h", 5400), ("250ms", 0.25), ("1m30s", 90), ("2d", 172800), (" 10 m ", 600),
        ("0", 0), (0, 0),
    ],
)  # fmt: skip
def test_durations(text, seconds) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "5m3", "-5m", "1m1m", "m", "1.h"])
def test_bad_durations_name_the_place_and_quote_the_value(text) -> None:
    with pytest.raises(ConfigError) as err:
        parse_duration(text, "--duration")
    assert str(err.value).startswith("--duration: ") and repr(text) in str(err.value)


def test_negative_zero_and_booleans() -> None:
    with pytest.raises(ConfigError, match="cannot be negative"):
        parse_duration(-1, "x")
    with pytest.raises(ConfigError, match="longer than 0 seconds, got '0'"):
        parse_duration("0", "--duration", positive=True)
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_duration(True, "x")


def test_a_suite_and_the_flag_read_the_same_texts() -> None:
    """Once, `--duration 1h30m` worked and a suite's `duration: 1h30m` did not (and `ms` the
    other way round): there is one grammar now."""
    for text in ("1h30m", "250ms", "45s"):
        assert parse_duration(text, "--duration", positive=True) == parse_duration(text, "suite")


def test_format_duration_reads_back() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(59.6) == "1m"
    assert format_duration(0) == "0s"
    for seconds in (1, 59, 61, 3599, 3661, 86399):
        assert parse_duration(format_duration(seconds), "x") == seconds
