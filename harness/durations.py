"""The one duration grammar of the harness: flags, environment variables and suite files alike.

`90` (seconds), `90s`, `250ms`, `10m`, `1.5h`, `1h30m`, `2d`: number-and-unit parts, largest
first or not, each unit at most once; a bare number only on its own.
"""

from __future__ import annotations

import re
from typing import Any

from harness.errors import ConfigError

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BARE = re.compile(r"\d+(?:\.\d+)?")
_EXAMPLES = "90s, 10m, 1h30m or 250ms"


def parse_duration(value: Any, where: str, *, positive: bool = False) -> float:
    """Seconds from a number or a duration text; a ConfigError naming `where` and quoting the
    value otherwise (and for 0 when `positive`: a run or a window must last)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like {_EXAMPLES}, got {value!r}")
    seconds = float(value) if isinstance(value, int | float) else _parse_text(str(value), where)
    if seconds < 0:
        raise ConfigError(f"{where}: a duration cannot be negative, got {value!r}")
    if positive and seconds == 0:
        raise ConfigError(f"{where}: must be longer than 0 seconds, got {value!r}")
    return seconds


def _parse_text(raw: str, where: str) -> float:
    text = raw.strip().lower().replace(" ", "")
    if _BARE.fullmatch(text):
        return float(text)
    parts = _PART.findall(text)
    units = [unit for _, unit in parts]
    if not parts or "".join(n + u for n, u in parts) != text or len(set(units)) != len(units):
        raise ConfigError(f"{where}: expected a duration like {_EXAMPLES}, got {raw!r}")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """`1h30m`, `59s`, `0s`: whole seconds, the way parse_duration reads them back."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"
