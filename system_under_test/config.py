"""Settings of every process of the system, read from environment variables (one place for defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["Settings", "settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    """What a service needs to find its dependencies. Defaults match the local platform's."""

    redis_url: str = field(
        default_factory=lambda: _env("SAGAQUAKE_REDIS_URL", "redis://127.0.0.1:16379/0")
    )
    temporal_address: str = field(
        default_factory=lambda: _env("SAGAQUAKE_TEMPORAL_ADDRESS", "127.0.0.1:17233")
    )
    temporal_namespace: str = field(
        default_factory=lambda: _env("SAGAQUAKE_TEMPORAL_NAMESPACE", "default")
    )
    task_queue: str = field(default_factory=lambda: _env("SAGAQUAKE_TASK_QUEUE", "order-saga"))
    payment_url: str = field(
        default_factory=lambda: _env("SAGAQUAKE_PAYMENT_URL", "http://127.0.0.1:18081")
    )
    inventory_url: str = field(
        default_factory=lambda: _env("SAGAQUAKE_INVENTORY_URL", "http://127.0.0.1:18082")
    )
    notification_url: str = field(
        default_factory=lambda: _env("SAGAQUAKE_NOTIFICATION_URL", "http://127.0.0.1:18083")
    )
    bind_host: str = field(default_factory=lambda: _env("SAGAQUAKE_BIND_HOST", "127.0.0.1"))
    # The port a service shares between its replicas (SO_REUSEPORT), as pods share a Service.
    port: int = field(default_factory=lambda: int(_env("SAGAQUAKE_PORT", "0")))
    # A port of this replica alone, for its /healthz and /readyz (0 = none).
    health_port: int = field(default_factory=lambda: int(_env("SAGAQUAKE_HEALTH_PORT", "0")))
    decline_rate: float = field(
        default_factory=lambda: float(_env("SAGAQUAKE_DECLINE_RATE", "0.03"))
    )
    catalogue: str = field(
        default_factory=lambda: _env(
            "SAGAQUAKE_CATALOGUE", "skus=200,stock=100000,scarce=4,scarce_stock=25"
        )
    )
    # How long an HTTP call from an activity to a service may take before it counts as a time-out.
    http_timeout_s: float = field(
        default_factory=lambda: float(_env("SAGAQUAKE_HTTP_TIMEOUT_S", "5"))
    )
    # uvicorn's event loop and HTTP parser in every service: "auto" takes uvloop and httptools
    # (uvicorn[standard]) when installed, else asyncio and h11; benchmarks/bench_http.py
    # measures each. The service logs which ones it runs at start.
    http_loop: str = field(default_factory=lambda: _env("SAGAQUAKE_HTTP_LOOP", "auto"))
    http_parser: str = field(default_factory=lambda: _env("SAGAQUAKE_HTTP_PARSER", "auto"))
    worker_concurrency: int = field(
        default_factory=lambda: int(_env("SAGAQUAKE_WORKER_CONCURRENCY", "100"))
    )
    # How many steps per second the whole task queue hands to workers while sagas wait out a
    # failing dependency (regular activities; Temporal's server-side limit, 0 = none): a payment
    # service coming back is not hit by every waiting saga at once, and new orders keep their
    # share of the machine meanwhile (docs/system.md#waiting-out-a-failing-step).
    waiting_steps_per_s: float = field(
        default_factory=lambda: float(_env("SAGAQUAKE_WAITING_STEPS_PER_S", "8"))
    )
    log_level: str = field(default_factory=lambda: _env("SAGAQUAKE_LOG_LEVEL", "INFO"))
    # The projection takes over entries another consumer has left pending this long (and looks
    # for them this often): how late the read model catches up after a consumer is lost.
    reclaim_idle_s: float = field(
        default_factory=lambda: float(_env("SAGAQUAKE_RECLAIM_IDLE_S", "60"))
    )
    # After a batch shorter than its maximum the projection waits this long before reading again,
    # so the next read takes what arrived meanwhile: the read model lags by at most this much,
    # and each round trip carries ten to forty entries at the saga's rate (0 = read at once).
    projection_linger_s: float = field(
        default_factory=lambda: float(_env("SAGAQUAKE_PROJECTION_LINGER_S", "0.1"))
    )
    # Which version of the saga a worker runs (docs/system.md): 1, or 2 (the fraud check before
    # the charge). A worker of either version finishes sagas started on the other.
    saga_version: int = field(default_factory=lambda: int(_env("SAGAQUAKE_SAGA_VERSION", "1")))
    # Worker Deployment Versioning (docs/system.md): the Temporal Worker Deployment this worker
    # belongs to, as version `saga-v<saga_version>` with PINNED sagas; empty = unversioned.
    worker_deployment: str = field(default_factory=lambda: _env("SAGAQUAKE_WORKER_DEPLOYMENT", ""))
    # Version 2's fraud check cancels an order whose amount reaches this many cents.
    fraud_limit_cents: int = field(
        default_factory=lambda: int(_env("SAGAQUAKE_FRAUD_LIMIT_CENTS", "1000000"))
    )


def settings() -> Settings:
    """Settings read now (tests change the environment between processes)."""
    return Settings()
