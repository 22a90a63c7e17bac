"""Durations, environment variables and the CLI flags' defaults."""

from __future__ import annotations

import argparse

import pytest

from harness.errors import ConfigError
from harness.load.cli import add_load_arguments
from harness.load.settings import ENV, LoadSettings

pytestmark = pytest.mark.unit


def _environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ENV.values():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(
        monkeypatch,
        {
            "SAGAQUAKE_PROFILE": "flat",
            "SAGAQUAKE_COMPRESS": "12",
            "SAGAQUAKE_DURATION_S": "60",
            "SAGAQUAKE_SEED": "9",
            "SAGAQUAKE_RUN_DIR": "reports/x",
        },
    )
    s = LoadSettings.from_env()
    assert (s.profile, s.compress, s.duration_s, s.seed, str(s.run_dir)) == (
        "flat",
        12.0,
        60.0,
        9,
        "reports/x",
    )
    _environment(monkeypatch, {"SAGAQUAKE_DURATION": "10m"})
    assert LoadSettings.from_env().duration_s == 600
    _environment(monkeypatch, {})
    defaults = LoadSettings.from_env()
    assert (
        defaults.profile == "daily-50k" and defaults.duration_s is None and defaults.processes == 1
    )


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch, {"SAGAQUAKE_SEED": "seven"})
    with pytest.raises(ConfigError, match="SAGAQUAKE_SEED='seven' is not a whole number"):
        LoadSettings.from_env()


def test_every_flag_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SAGAQUAKE_PROFILE": "peak-75k",
        "SAGAQUAKE_COMPRESS": "6",
        "SAGAQUAKE_DURATION": "10m",
        "SAGAQUAKE_START_HOUR": "14:30",
        "SAGAQUAKE_PROCESSES": "3",
        "SAGAQUAKE_SEED": "4",
        "SAGAQUAKE_ARRIVALS": "uniform",
        "SAGAQUAKE_MAX_USERS": "900",
        "SAGAQUAKE_WEB": "1",
        "SAGAQUAKE_WEB_HOST": "0.0.0.0",
        "SAGAQUAKE_WEB_PORT": "9000",
        "SAGAQUAKE_AUTOSTART": "true",
    }.items():
        monkeypatch.setenv(name, value)
    args = add_load_arguments(argparse.ArgumentParser()).parse_args([])
    assert vars(args) == {
        "profile": "peak-75k",
        "compress": 6.0,
        "duration": "10m",
        "start_hour": "14:30",
        "processes": 3,
        "seed": 4,
        "arrivals": "uniform",
        "max_users": 900,
        "web": True,
        "web_host": "0.0.0.0",
        "web_port": 9000,
        "autostart": True,
    }
    # and a flag beats its variable
    assert (
        add_load_arguments(argparse.ArgumentParser()).parse_args(["--compress", "24"]).compress
        == 24.0
    )


def test_flag_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAGAQUAKE_PROFILE", "SAGAQUAKE_COMPRESS", "SAGAQUAKE_WEB", "SAGAQUAKE_PROCESSES"):
        monkeypatch.delenv(name, raising=False)
    args = add_load_arguments(argparse.ArgumentParser()).parse_args([])
    assert (args.profile, args.compress, args.web, args.processes) == ("daily-50k", None, False, 1)
