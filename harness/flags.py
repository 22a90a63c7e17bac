"""Command-line flags whose default is an environment variable, and the numbers they take.

A flag's variable must be a setting of harness/settings.py (so the settings table lists it);
its text is checked by the flag's own `type`, and a bad one names the variable rather than
the flag, as a bad setting does: `environment variable SAGAQUAKE_PROCESSES='x' is not a whole
number of 1 or more`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pydantic import BeforeValidator

from harness.errors import ConfigError
from harness.numbers import bounds_from_metadata, number, whole_number
from harness.settings import declared, env_text, env_value, field_type

__all__ = ["env_flag", "real", "whole"]


class _FromEnv(str):
    """A flag's default as read from its environment variable."""


def env_flag(
    parser: argparse.ArgumentParser | Any, *names: str, env: str, default: object = None, **kw: Any
) -> None:
    """A flag whose default comes from the environment variable `env` (unless it is empty)."""
    help_text = str(kw.pop("help", ""))
    text = env_text(env)
    value = _FromEnv(text) if text is not None else default
    if text is not None and kw.get("action") == "store_true":
        value = env_value(env)  # a yes or no, checked now
    declared_type = _declared_number(env) if "type" not in kw else None
    if declared_type is not None and kw.get("action") != "store_true":
        kw["type"] = declared_type  # the bounds the setting declares
    if text is not None and callable(kw.get("type")):
        kw["type"] = _naming(env, kw["type"])
    parser.add_argument(*names, default=value, help=f"{help_text} [env {env}]", **kw)


def _naming(env: str, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except (argparse.ArgumentTypeError, ValueError) as exc:
            if not isinstance(text, _FromEnv):
                raise
            reason = str(exc)
            sep = "=" if reason.startswith(repr(str(text))) else ": "
            raise ConfigError(f"environment variable {env}{sep}{reason}") from None

    parse.__name__ = getattr(kind, "__name__", "value")  # argparse's "invalid <name> value"
    return parse


def _declared_number(env: str) -> Callable[[str], Any] | None:
    """The argparse `type` of a flag whose setting is a number: its bounds as the setting
    declares them (stated once, in harness/settings.py). None for any other setting, and for a
    number with a validator of its own (a duration)."""
    group, name = declared(env)
    kind, metadata = field_type(group.model_fields[name])
    if kind not in (int, float) or any(isinstance(m, BeforeValidator) for m in metadata):
        return None
    bounds = bounds_from_metadata(metadata)
    if kind is int:
        low, high = bounds.get("minimum"), bounds.get("maximum")
        return whole(None if low is None else int(low), None if high is None else int(high))
    return real(minimum=bounds.get("minimum"), above=bounds.get("above"))


def _argument_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse `type` from a check that raises ConfigError: argparse then names the flag."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def whole(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number in [minimum, maximum]."""
    return _argument_type(lambda text: whole_number(text, None, minimum=minimum, maximum=maximum))


def real(*, minimum: float | None = None, above: float | None = None) -> Callable[[str], float]:
    """An argparse `type`: a number (above or from a bound)."""
    return _argument_type(lambda text: number(text, None, minimum=minimum, above=above))
