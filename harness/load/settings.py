"""Every setting of a load run, its environment variable and its default: the one place for them.

The CLI flags (`harness.load.cli`) read their defaults from these variables, the runner passes
them to the Locust process, and the locustfile reads them, so `locust -f scenarios/load/locustfile.py`
also works by hand with the same variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.durations import parse_duration
from harness.errors import ConfigError
from harness.settings import LocalPorts

__all__ = [
    "DEFAULTS",
    "ENV",
    "Defaults",
    "LoadSettings",
    "env_flag",
]

_N = TypeVar("_N", int, float)

# setting -> environment variable
ENV = {
    "profile": "SAGAQUAKE_PROFILE",
    "compress": "SAGAQUAKE_COMPRESS",
    "duration": "SAGAQUAKE_DURATION",  # CLI: "10m", "90s", "1h", seconds
    "duration_s": "SAGAQUAKE_DURATION_S",  # what the runner hands the locustfile (seconds)
    "start_hour": "SAGAQUAKE_START_HOUR",
    "processes": "SAGAQUAKE_PROCESSES",
    "seed": "SAGAQUAKE_SEED",
    "arrivals": "SAGAQUAKE_ARRIVALS",
    "run_dir": "SAGAQUAKE_RUN_DIR",
    "order_api": "SAGAQUAKE_ORDER_API",
    "redis_url": "SAGAQUAKE_REDIS_URL",
    "max_users": "SAGAQUAKE_MAX_USERS",
    "ledger_fsync_every": "SAGAQUAKE_LEDGER_FSYNC_EVERY",
    "web": "SAGAQUAKE_WEB",
    "web_host": "SAGAQUAKE_WEB_HOST",
    "web_port": "SAGAQUAKE_WEB_PORT",
    "autostart": "SAGAQUAKE_AUTOSTART",
    "overdue_s": "SAGAQUAKE_UI_OVERDUE_S",
}


_PORTS = LocalPorts()


@dataclass(frozen=True)
class Defaults:
    """What a setting is when neither its flag nor its environment variable says."""

    profile: str = "daily-50k"
    compress: float | None = None  # the profile's
    duration: str | None = None  # a whole day at the compression
    start_hour: str | None = None  # the profile's
    processes: int = 1
    seed: int = 1
    arrivals: str | None = None  # the profile's
    run_dir: str = "reports/load-manual"
    order_api: str = f"http://127.0.0.1:{_PORTS.order}"  # the local stack's
    redis_url: str = f"redis://127.0.0.1:{_PORTS.redis}/0"
    max_users: int = 5000  # per Locust process
    ledger_fsync_every: int = 0  # 0: every line goes to the kernel at once; fsync only at close
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8089
    autostart: bool = False
    overdue_s: float = 10.0  # accepted orders without OrderPlaced after this long are flagged


DEFAULTS = Defaults()


def env_flag(value: str | None) -> bool:
    """A boolean environment variable: 1, true, yes, on."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class LoadSettings:
    """What the locustfile needs, read from the environment (see ENV)."""

    profile: str
    compress: float | None
    duration_s: float | None
    start_hour: str | None
    seed: int
    arrivals: str | None
    run_dir: Path
    order_api: str
    redis_url: str
    processes: int
    max_users: int
    ledger_fsync_every: int
    overdue_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadSettings:
        env = os.environ if env is None else env

        def get(key: str) -> str | None:
            value = env.get(ENV[key])
            return value if value not in (None, "") else None

        def number(key: str, kind: type[_N], default: _N) -> _N:
            raw = get(key)
            if raw is None:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(
                    f"environment variable {ENV[key]}={raw!r} is not {'an integer' if kind is int else 'a number'}"
                ) from None

        duration_raw = get("duration_s") or get("duration")
        return cls(
            profile=get("profile") or DEFAULTS.profile,
            compress=number("compress", float, 0.0) or None,
            duration_s=parse_duration(duration_raw, ENV["duration_s"], positive=True)
            if duration_raw
            else None,
            start_hour=get("start_hour"),
            seed=number("seed", int, DEFAULTS.seed),
            arrivals=get("arrivals"),
            run_dir=Path(get("run_dir") or DEFAULTS.run_dir),
            order_api=get("order_api") or DEFAULTS.order_api,
            redis_url=get("redis_url") or DEFAULTS.redis_url,
            processes=number("processes", int, DEFAULTS.processes),
            max_users=number("max_users", int, DEFAULTS.max_users),
            ledger_fsync_every=number("ledger_fsync_every", int, DEFAULTS.ledger_fsync_every),
            overdue_s=number("overdue_s", float, DEFAULTS.overdue_s),
        )
