"""A malformed profile file is refused before anything starts, naming the file and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.load.profile_loader import PROFILES_DIR, load_profile

pytestmark = pytest.mark.unit

VALID = (PROFILES_DIR / "flat.yaml").read_text()
WEIGHTS_24 = "hourly_weights: [" + ", ".join(["1"] * 24) + "]"


def _write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return str(info.value)


def test_weights_of_the_wrong_length(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "orders_per_day: 100\nhourly_weights: [" + ", ".join(["1"] * 23) + "]\n"
    )
    assert _error(path) == f"{path}: key 'hourly_weights': expected 24 numbers, got 23"


@pytest.mark.parametrize(
    "body,key,expected",
    [
        (f"{WEIGHTS_24}\n", "orders_per_day", "missing; this key is required"),
        (
            f"orders_per_day: -5\n{WEIGHTS_24}\n",
            "orders_per_day",
            "expected a number above 0 and up to 1e+09, got -5",
        ),
        (
            f"orders_per_day: lots\n{WEIGHTS_24}\n",
            "orders_per_day",
            "expected a number above 0 and up to 1e+09, got 'lots'",
        ),
        (
            f"orders_per_day: true\n{WEIGHTS_24}\n",
            "orders_per_day",
            "expected a number above 0 and up to 1e+09, got True",
        ),
        ("orders_per_day: 10\nhourly_weights: 5\n", "hourly_weights", "expected 24 numbers, got 5"),
        (
            "orders_per_day: 10\nhourly_weights: [" + ", ".join(["1"] * 23) + ", x]\n",
            "hourly_weights[23]",
            "expected a number of 0 or more, got 'x'",
        ),
        (
            "orders_per_day: 10\nhourly_weights: [" + ", ".join(["0"] * 24) + "]\n",
            "hourly_weights",
            "expected at least one weight > 0, got all 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nhourly_weight: 3\n",
            "hourly_weight",
            "unknown key; expected one of",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nspikes:\n  - {{at: '25:00', duration_min: 5, multiplier: 2}}\n",
            "spikes[0].at",
            "expected a time of day \"HH:MM\", got '25:00'",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nspikes:\n  - {{at: '15:00', multiplier: 2}}\n",
            "spikes[0].duration_min",
            "missing; this key is required",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nspikes:\n  - {{at: '15:00', duration_min: 0, multiplier: 2}}\n",
            "spikes[0].duration_min",
            "expected a number above 0 and up to 1440, got 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nspikes:\n  - {{at: '15:00', duration_min: 5, mult: 2}}\n",
            "spikes[0].mult",
            "unknown key",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\ncompress: 0\n",
            "compress",
            "expected a number above 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nstart_hour: '24:30'\n",
            "start_hour",
            "expected an hour in [0, 24)",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\narrivals: bursty\n",
            "arrivals",
            "expected 'poisson' or 'uniform', got 'bursty'",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\norder_mix:\n  skus: {{count: 0}}\n",
            "order_mix.skus.count",
            "expected a whole number from 1 to 9999, got 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\norder_mix:\n  currencies: {{EUR: 1, JPY: 1}}\n",
            "order_mix.currencies.JPY",
            "expected one of EUR, USD, GBP, got 'JPY'",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\norder_mix:\n  items_per_order: {{0: 1}}\n",
            "order_mix.items_per_order.0",
            "expected a whole number from 1 to 20, got 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\norder_mix:\n  unit_price_cents: {{min: 100, max: 50}}\n",
            "order_mix.unit_price_cents.max",
            "expected a whole number of 100 or more, got 50",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\norder_mix:\n  unit_price_cents: {{min: 1, max: 200000000}}\n",
            "order_mix.unit_price_cents.max",
            "above the api's 100000000",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nretry:\n  max_attempts: 0\n",
            "retry.max_attempts",
            "got 0",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nretry:\n  timeout: 5\n",
            "retry.timeout",
            "unknown key",
        ),
        (
            f"orders_per_day: 10\n{WEIGHTS_24}\nretry:\n  retry_on_status: [200]\n",
            "retry.retry_on_status[0]",
            "expected a whole number from 400 to 599, got 200",
        ),
    ],
)
def test_the_error_names_the_file_and_the_key(
    tmp_path: Path, body: str, key: str, expected: str
) -> None:
    path = _write(tmp_path, body)
    message = _error(path)
    assert message.startswith(f"{path}: key '{key}': "), message
    assert expected in message


def test_a_spike_that_silences_the_whole_day(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        f"orders_per_day: 10\n{WEIGHTS_24}\nspikes:\n  - {{at: '00:00', duration_min: 1440, multiplier: 0}}\n",
    )
    assert _error(path).startswith(f"{path}: key 'hourly_weights': the day has no orders")


def test_not_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders_per_day: [1, 2\n")
    assert _error(path).startswith(f"{path}: not valid yaml: ")


def test_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- 1\n- 2\n")
    assert _error(path) == f"{path}: expected a mapping of keys at the top level, got a list of 2"


def test_an_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_profile("daily-5k")
    message = str(info.value)
    assert message.startswith(
        "unknown profile 'daily-5k': expected one of black-friday, daily-50k, flat, peak-75k"
    )


def test_a_missing_profile_file() -> None:
    with pytest.raises(ConfigError, match=r"profile file 'nowhere/x\.yaml' does not exist"):
        load_profile("nowhere/x.yaml")


def test_the_shipped_file_is_the_valid_baseline(tmp_path: Path) -> None:
    assert load_profile(_write(tmp_path, VALID)).orders_per_day == 36_000


def test_patience_is_read_with_defaults_and_checked(tmp_path: Path) -> None:
    base = f"orders_per_day: 100\n{WEIGHTS_24}\n"
    default = load_profile(_write(tmp_path, base)).patience
    assert (default.after_s, default.cancel_share) == (300.0, 0.25)
    given = load_profile(_write(tmp_path, base + "patience: {after_s: 60, cancel_share: 0}\n"))
    assert (given.patience.after_s, given.patience.cancel_share) == (60.0, 0.0)
    bad = _write(tmp_path, base + "patience: {cancel_share: 1.5}\n")
    assert "patience.cancel_share" in _error(bad)
    unknown = _write(tmp_path, base + "patience: {after: 60}\n")
    assert "after" in _error(unknown)
