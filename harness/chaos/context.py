"""Where an experiment acts: which platform, which run folder, which experiment, how compressed.

Chaos Toolkit hands every activity the experiment's `configuration`. The extension reads these
keys from it (each experiment file declares them with environment variables and defaults):

| key | env | default |
| --- | --- | --- |
| `sagaquake_platform` | SAGAQUAKE_PLATFORM | `local` |
| `sagaquake_run_dir` | SAGAQUAKE_RUN_DIR | the stack's own run folder (`platform.run_dir`) |
| `sagaquake_experiment` | — | the file's name (set in each file; `sagaquake chaos` sets it too) |
| `sagaquake_compress` | SAGAQUAKE_COMPRESS | run.json's `compress`, else 1 |

Durations that shape a fault (how long an outage lasts, how often to kill) are given in
*production* seconds and played `compress` times faster, as the load profile plays the day;
time-outs (how long to wait for a replica to come back) are wall-clock seconds and never
compressed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.numbers import number as check_number
from harness.platforms import attach
from harness.platforms.base import SERVICES, Platform
from harness.runs import RunFolder, read_json_or_empty
from harness.settings import RunSettings

__all__ = [
    "CONFIG_KEYS",
    "ChaosContext",
    "chaos_context",
    "flag",
    "number",
    "platform_for",
    "reset_platforms",
    "service_name",
]

CONFIG_KEYS = {
    "platform": "sagaquake_platform",
    "run_dir": "sagaquake_run_dir",
    "experiment": "sagaquake_experiment",
    "compress": "sagaquake_compress",
}

_PLATFORMS: dict[str, Platform] = {}
_PLATFORMS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ChaosContext:
    platform: Platform
    run_dir: Path
    experiment: str
    compress: float

    def wall_s(self, production_s: Any, name: str = "duration_s") -> float:
        """Wall-clock seconds of a duration given in production seconds."""
        return number(production_s, name, minimum=0) / self.compress

    def production(self, name: str, production_s: Any) -> dict[str, float]:
        """Both clocks of a duration, for evidence: {name: wall, name_production: given}."""
        given = number(production_s, name, minimum=0)
        return {name: round(given / self.compress, 3), f"{name}_production": given}


def number(
    value: Any, name: str, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A configuration or argument value as a float (environment values arrive as text)."""
    return check_number(value, f"argument {name}", minimum=minimum, maximum=maximum)


def flag(value: Any, name: str) -> bool:
    """A configuration or argument value as a boolean (environment values arrive as text)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"argument {name}={value!r} is not true or false")


def service_name(value: Any) -> str:
    if value not in SERVICES:
        raise ConfigError(f"unknown service {value!r}; use one of: {', '.join(SERVICES)}")
    return str(value)


def platform_for(kind: str) -> Platform:
    """The running stack on platform `kind`, attached once per process (re-attached locally
    when the stack it knew has gone)."""
    kind = "k8s" if kind == "kubernetes" else kind
    with _PLATFORMS_LOCK:
        platform = _PLATFORMS.get(kind)
        if platform is None or (kind == "local" and not platform.is_up()):
            platform = _PLATFORMS[kind] = attach(kind)
        return platform


def reset_platforms() -> None:
    """Forget attached platforms (a new stack was started in this process)."""
    with _PLATFORMS_LOCK:
        _PLATFORMS.clear()


def _setting(configuration: Any, key: str) -> Any:
    value = (configuration or {}).get(CONFIG_KEYS[key])
    if value in (None, "") and key in RunSettings.model_fields:
        value = RunSettings.field_from_env(key)
    return value


def _compress(configuration: Any, run_dir: Path) -> float:
    value = _setting(configuration, "compress")
    if value in (None, ""):
        value = read_json_or_empty(RunFolder(run_dir).run_json).get("compress")
    if value in (None, ""):
        return 1.0
    return check_number(value, CONFIG_KEYS["compress"], above=0)


def chaos_context(configuration: Any = None) -> ChaosContext:
    """The context of an activity from its configuration (see the module's table)."""
    platform = platform_for(str(_setting(configuration, "platform") or "local"))
    run_dir = Path(_setting(configuration, "run_dir") or platform.run_dir).resolve()
    experiment = str(_setting(configuration, "experiment") or "chaos")
    return ChaosContext(platform, run_dir, experiment, _compress(configuration, run_dir))
