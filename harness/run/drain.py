"""The drain: after the load stops, wait for every saga in flight to finish, up to a deadline.

Done means Temporal runs no OrderSaga any more, and the projection has applied every event
(its consumer group has no lag and nothing pending). An order still running at the deadline is
not waited for: the verifier reports it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from temporalio.client import Client

from harness.chaos.observe import group_backlog
from harness.platforms.base import Endpoints

__all__ = ["DrainResult", "count_sagas", "drain", "running_sagas"]

RUNNING = "WorkflowType='OrderSaga' AND ExecutionStatus='Running'"


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    waited_s: float
    running: int  # sagas still running at the end (-1: Temporal did not answer)
    projection_lag: int


async def _count(address: str, namespace: str, query: str) -> int:
    client = await Client.connect(address, namespace=namespace)
    return int((await client.count_workflows(query)).count)


def count_sagas(endpoints: Endpoints, query: str) -> int:
    """How many workflows match the visibility query (-1 when Temporal does not answer)."""
    try:
        address, namespace = endpoints.temporal_address, endpoints.temporal_namespace
        return asyncio.run(asyncio.wait_for(_count(address, namespace, query), 10))
    except Exception:
        return -1


def running_sagas(endpoints: Endpoints) -> int:
    """How many OrderSaga workflows are running (-1 when Temporal does not answer)."""
    return count_sagas(endpoints, RUNNING)


def drain(
    endpoints: Endpoints,
    deadline_s: float,
    on_tick: Callable[[int, int, float], None] | None = None,
) -> DrainResult:
    """Wait until nothing runs and the projection caught up, or the deadline passes."""
    started = time.monotonic()
    r = redis.Redis.from_url(endpoints.redis_url, decode_responses=True, socket_timeout=5)
    try:
        while True:
            running, lag = running_sagas(endpoints), group_backlog(r)
            waited = time.monotonic() - started
            if on_tick:
                on_tick(running, lag, waited)
            if running == 0 and lag == 0:
                return DrainResult(True, waited, running, lag)
            if waited >= deadline_s:
                return DrainResult(False, waited, running, lag)
            time.sleep(1.0)
    finally:
        r.close()
