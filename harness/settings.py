"""Every default of the harness in one place, each overridable by an environment variable."""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass, fields, replace
from pathlib import Path

from harness.errors import ConfigError

__all__ = [
    "LocalOptions",
    "LocalPorts",
    "env",
    "free_port",
    "isolated_env",
    "port_is_free",
    "reports_root",
    "state_dir",
]


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a whole number") from None


def reports_root() -> Path:
    """Where run folders go (`reports/` of the working directory unless SAGAQUAKE_REPORTS_DIR)."""
    return Path(env("SAGAQUAKE_REPORTS_DIR", "reports")).resolve()


def state_dir() -> Path:
    """Where the pointer to the running stack lives (`.sagaquake/` unless SAGAQUAKE_STATE_DIR)."""
    return Path(env("SAGAQUAKE_STATE_DIR", ".sagaquake")).resolve()


def _port_var(field: str) -> str:
    return f"SAGAQUAKE_{field.upper()}_PORT"


@dataclass(frozen=True)
class LocalPorts:
    """Ports of the local stack, all on 127.0.0.1. Env: SAGAQUAKE_<FIELD>_PORT, e.g. SAGAQUAKE_REDIS_PORT."""

    redis: int = 16379
    temporal: int = 17233
    temporal_ui: int = 18233
    temporal_http: int = 17243
    temporal_metrics: int = 17253
    order: int = 18080
    payment: int = 18081
    inventory: int = 18082
    notification: int = 18083
    health_base: int = 18100  # each replica answers /readyz on health_base + its slot

    @classmethod
    def from_env(cls) -> LocalPorts:
        base = cls()
        return replace(
            base,
            **{f.name: _env_int(_port_var(f.name), getattr(base, f.name)) for f in fields(cls)},
        )

    @classmethod
    def free(cls) -> LocalPorts:
        """Ports free now (tests, parallel stacks), taken below the ephemeral range (32768+) that
        outgoing connections use, so a busy machine does not take them back before we bind."""
        names = [f.name for f in fields(cls) if f.name != "health_base"]
        start = _free_block(len(names) + _HEALTH_BLOCK)
        values = {name: start + i for i, name in enumerate(names)}
        return cls(**values, health_base=start + len(names))

    def as_env(self) -> dict[str, str]:
        """The SAGAQUAKE_<FIELD>_PORT variables under which `from_env()` returns these ports."""
        return {_port_var(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def named(self) -> dict[str, int]:
        """Every fixed port by what uses it (the health block is checked per replica)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "health_base"}


def isolated_env(folder: Path) -> dict[str, str]:
    """Environment for a `sagaquake` subprocess with free ports and its own state and reports
    folders under `folder`, so that it never meets a user's stack or another test's."""
    return {
        **os.environ,
        "SAGAQUAKE_STATE_DIR": str(folder / "state"),
        "SAGAQUAKE_REPORTS_DIR": str(folder / "reports"),
        **LocalPorts.free().as_env(),
    }


_HEALTH_BLOCK = 60  # six Python services, ten replicas each
_LOW, _HIGH = 20000, 32000


def _free_block(size: int) -> int:
    """The start of `size` consecutive free ports in [20000, 32000)."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(_LOW, _HIGH - size)
        if all(port_is_free(p) for p in range(start, start + size)):
            return start
    raise ConfigError(f"could not find {size} free consecutive ports between {_LOW} and {_HIGH}")


def free_port() -> int:
    """One port free now, in the same range as `LocalPorts.free()` (below the ephemeral range)."""
    return _free_block(1)


def port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class LocalOptions:
    """How the local stack runs. Env: SAGAQUAKE_<FIELD> (upper case)."""

    order_replicas: int = (
        2  # the API, like any stateless service in production: a kill is not downtime
    )
    payment_replicas: int = 2
    worker_replicas: int = 2
    redis_maxmemory: str = "1gb"
    redis_appendfsync: str = "always"  # always | everysec | no
    decline_rate: float = 0.03
    reclaim_idle_s: float = 60.0  # the projection's SAGAQUAKE_RECLAIM_IDLE_S
    catalogue: str = "skus=200,stock=100000,scarce=4,scarce_stock=25"
    ready_timeout_s: float = 120.0

    @classmethod
    def from_env(cls) -> LocalOptions:
        base = cls()
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"SAGAQUAKE_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(base, f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"environment variable SAGAQUAKE_{f.name.upper()}={raw!r} is not a {kind.__name__}"
                ) from None
        options = replace(base, **values)
        if options.redis_appendfsync not in ("always", "everysec", "no"):
            raise ConfigError(
                f"redis appendfsync {options.redis_appendfsync!r} is not one of always, everysec, no"
            )
        return options
