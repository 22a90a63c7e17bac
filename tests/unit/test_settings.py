"""Settings: one model per group, one line per bad value, one table in the docs, one number check."""

from __future__ import annotations

import argparse
import os
import re

import pytest

from harness import cli, settings_table
from harness.errors import ConfigError
from harness.numbers import number, whole_number
from harness.settings import (
    GROUPS,
    KubernetesSettings,
    LoadSettings,
    LocalOptions,
    LocalPorts,
    RunSettings,
    VerifySettings,
    _deprecated,
    env_text,
    env_value,
)

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SAGAQUAKE_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("group", "variable", "value", "message"),
    [
        (LocalPorts, "SAGAQUAKE_ORDER_PORT", "http", "'http' is not a whole number from 1 to 65535"),
        (LocalPorts, "SAGAQUAKE_REDIS_PORT", "70000", "'70000' is not a whole number from 1 to 65535"),
        (LocalOptions, "SAGAQUAKE_ORDER_REPLICAS", "0", "'0' is not a whole number of 1 or more"),
        (LocalOptions, "SAGAQUAKE_DECLINE_RATE", "lots", "'lots' is not a number from 0 to 1"),
        (LocalOptions, "SAGAQUAKE_DECLINE_RATE", "nan", "'nan' is not a number from 0 to 1"),
        (LocalOptions, "SAGAQUAKE_REDIS_MAXMEMORY", "xyz", ": 'xyz' is not a memory size: give bytes or e.g. 512mb, 1gb"),
        (LocalOptions, "SAGAQUAKE_REDIS_MAXMEMORY", "1.5gb", ": '1.5gb' is not a memory size: give bytes or e.g. 512mb, 1gb"),
        (LocalOptions, "SAGAQUAKE_REDIS_APPENDFSYNC", "often", "'often' is not one of always, everysec, no"),
        (LocalOptions, "SAGAQUAKE_READY_TIMEOUT_S", "soon", ": expected a duration like 90s, 10m, 1h30m or 250ms, got 'soon'"),
        (LocalOptions, "SAGAQUAKE_RECLAIM_IDLE_S", "0", ": must be longer than 0 seconds, got '0'"),
        (LoadSettings, "SAGAQUAKE_PROCESSES", "x", "'x' is not a whole number of 1 or more"),
        (LoadSettings, "SAGAQUAKE_ARRIVALS", "burst", "'burst' is not one of poisson, uniform"),
        (LoadSettings, "SAGAQUAKE_UI_OVERDUE_S", "-1s", ": expected a duration like 90s, 10m, 1h30m or 250ms, got '-1s'"),
        (LoadSettings, "SAGAQUAKE_WEB", "maybe", "'maybe' is not a yes or no: use 1 or 0"),
        (RunSettings, "SAGAQUAKE_COMPRESS", "0", "'0' is not a number above 0"),
        (RunSettings, "SAGAQUAKE_COMPRESS", "inf", "'inf' is not a number above 0"),
        (VerifySettings, "SAGAQUAKE_VERIFY_WORKERS", "2.5", "'2.5' is not a whole number of 1 or more"),
        (KubernetesSettings, "SAGAQUAKE_K8S_POD_EXEC", "2", "'2' is not a yes or no: use 1 or 0"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, group: type, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        group.from_env()  # type: ignore[attr-defined]
    sep = "" if message.startswith(":") else "="
    assert str(err.value) == f"environment variable {variable}{sep}{message}"


def test_values_and_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LocalOptions.from_env() == LocalOptions()  # nothing set: the defaults
    monkeypatch.setenv("SAGAQUAKE_RECLAIM_IDLE_S", "1m30s")
    monkeypatch.setenv("SAGAQUAKE_ORDER_REPLICAS", " 3 ")
    monkeypatch.setenv("SAGAQUAKE_REDIS_MAXMEMORY", "")  # empty: unset
    options = LocalOptions.from_env()
    assert (options.reclaim_idle_s, options.order_replicas, options.redis_maxmemory) == (
        90,
        3,
        "1gb",
    )
    monkeypatch.setenv("SAGAQUAKE_TEMPORAL_UI_PORT", "20001")
    assert LocalPorts.from_env() == LocalPorts(temporal_ui=20001)
    assert LocalPorts.from_env().as_env()["SAGAQUAKE_TEMPORAL_UI_PORT"] == "20001"


def test_building_a_group_in_code_never_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGAQUAKE_ORDER_REPLICAS", "5")
    monkeypatch.setenv("SAGAQUAKE_REDIS_PORT", "not a port")
    assert LocalOptions().order_replicas == 2
    assert LocalPorts().redis == 16379


def test_the_defaults_are_the_documented_ones() -> None:
    options, ports = LocalOptions(), LocalPorts()
    assert (options.order_replicas, options.redis_appendfsync, options.ready_timeout_s) == (
        2, "always", 120.0,
    )  # fmt: skip
    assert (ports.redis, ports.order, ports.health_base) == (16379, 18080, 18100)
    load = LoadSettings()
    assert (load.profile, load.processes, load.order_api) == (
        "daily-50k", 1, "http://127.0.0.1:18080",
    )  # fmt: skip


def test_every_variable_has_one_name_and_a_description() -> None:
    seen: dict[str, str] = {}
    for group in GROUPS:
        for name, field in group.model_fields.items():
            var = group.env_name(name)
            assert var.startswith("SAGAQUAKE_") and field.description, var
            if var in seen:  # read by two groups: the same setting
                assert name == seen[var], var
            seen[var] = name
    with pytest.raises(KeyError, match="SAGAQUAKE_NO_SUCH"):
        env_text("SAGAQUAKE_NO_SUCH")


def test_the_old_name_of_the_processes_still_works_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _deprecated.cache_clear()
    monkeypatch.setenv("SAGAQUAKE_LOAD_PROCESSES", "3")
    assert env_text("SAGAQUAKE_PROCESSES") == "3"
    assert env_text("SAGAQUAKE_PROCESSES") == "3"
    assert capsys.readouterr().err == (
        "warning: SAGAQUAKE_LOAD_PROCESSES is deprecated: set SAGAQUAKE_PROCESSES instead\n"
    )  # once
    monkeypatch.setenv("SAGAQUAKE_PROCESSES", "2")  # the one name wins
    assert env_text("SAGAQUAKE_PROCESSES") == "2"


@pytest.mark.parametrize(
    ("argv", "variable", "value", "message"),
    [
        (["load"], "SAGAQUAKE_PROCESSES", "x", "error: environment variable SAGAQUAKE_PROCESSES='x' is not a whole number of 1 or more"),
        (["load"], "SAGAQUAKE_COMPRESS", "fast", "error: environment variable SAGAQUAKE_COMPRESS='fast' is not a number above 0"),
        (["load"], "SAGAQUAKE_WEB", "maybe", "error: environment variable SAGAQUAKE_WEB='maybe' is not a yes or no"),
        (["run"], "SAGAQUAKE_PROCESSES", "0", "error: environment variable SAGAQUAKE_PROCESSES='0' is not a whole number of 1 or more"),
        (["up"], "SAGAQUAKE_ORDER_REPLICAS", "99", "error: environment variable SAGAQUAKE_ORDER_REPLICAS='99' is not a whole number from 1 to"),
        (["up"], "SAGAQUAKE_REDIS_MAXMEMORY", "lots", "error: environment variable SAGAQUAKE_REDIS_MAXMEMORY: 'lots' is not a memory size"),
        (["up"], "SAGAQUAKE_READY_TIMEOUT_S", "soon", "error: environment variable SAGAQUAKE_READY_TIMEOUT_S: expected a duration"),
    ],
)  # fmt: skip
def test_a_bad_variable_behind_a_flag_is_named_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("value", "kwargs", "result"),
    [("2.5", {}, 2.5), (3, {"minimum": 0}, 3.0), (" 1e3 ", {"above": 0}, 1000.0)],
)
def test_numbers(value: object, kwargs: dict[str, float], result: float) -> None:
    assert number(value, "n", **kwargs) == result


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: number("soon", "wait_s"), "wait_s='soon' is not a number"),
        (lambda: number(-1, "wait_s", minimum=0), "wait_s=-1 is not a number of 0 or more"),
        (lambda: number("nan", "x", minimum=0), "x='nan' is not a number of 0 or more"),
        (lambda: number(True, "x"), "x=True is not a number"),
        (lambda: number(0, "compress", above=0), "compress=0 is not a number above 0"),
        (lambda: number(11, "x", maximum=10), "x=11 is not a number of 10 or less"),
        (lambda: whole_number("1.5", "n", minimum=1), "n='1.5' is not a whole number of 1 or more"),
        (
            lambda: whole_number(0, None, minimum=1, maximum=9),
            "0 is not a whole number from 1 to 9",
        ),
    ],
)
def test_one_message_for_a_bad_number(call: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        call()  # type: ignore[operator]
    assert str(err.value) == message


def test_the_settings_table_in_the_docs_is_up_to_date() -> None:
    text = settings_table.DOC.read_text()
    assert settings_table.updated(text) == text, (
        "docs/settings.md is out of date: run python -m harness.settings_table --write"
    )
    for group in GROUPS:
        for name in group.model_fields:
            assert f"`{group.env_name(name)}`" in text


def test_every_flag_default_is_its_settings_default() -> None:
    """A flag's own default (when it has one) is the one its variable's setting declares."""
    parser, _ = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for verb, command in sub.choices.items():
        for action in command._actions:
            found = re.search(r"\[env (\w+)\]", action.help or "")
            if not found or action.default is None or action.dest == "run_dir":
                continue  # no default of its own (the stack's, the suite's); report's folder
            value = action.default
            if isinstance(value, str) and callable(action.type):
                value = action.type(value)
            assert value == env_value(found.group(1)), (verb, action.dest)
            checked += 1
    assert checked >= 20
