"""Is a part of the stack ready? Small probes the platforms and the chaos probes share."""

from __future__ import annotations

import httpx
import redis

__all__ = ["http_ready", "redis_ready", "temporal_ready"]


def http_ready(url: str, timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def redis_ready(url: str, timeout_s: float = 2.0) -> bool:
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def temporal_ready(http_base: str, namespace: str = "default", timeout_s: float = 2.0) -> bool:
    """The frontend answers and the namespace exists (Temporal's HTTP API)."""
    return http_ready(f"{http_base}/api/v1/namespaces/{namespace}", timeout_s)
