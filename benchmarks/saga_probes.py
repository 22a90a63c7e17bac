"""What the saga benchmark reads from a running stack: Temporal's workflow counts and the
projection's lag, and the asyncio loop the Temporal client needs.

Why Temporal's visibility store for completions: it is the one source that counts our saga and
the bare workflow the same way (a workflow's CloseTime), so their ceilings compare; the
projection's lag is read from its consumer group, the way the run's drain reads it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from temporalio.client import Client

from harness.chaos.observe import group_backlog

__all__ = ["Counts", "LagSampler", "LoopThread"]

_T = TypeVar("_T")


class LoopThread:
    """An asyncio loop in a thread, so synchronous code (run_load, the platform) can await the
    Temporal client, and Ctrl-C in the main thread still reaches the `finally` clean-ups."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="temporal", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout_s: float = 60.0) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Counts:
    """Workflow counts from Temporal's visibility store (the same source for saga and bare)."""

    def __init__(self, loop: LoopThread, address: str) -> None:
        self.loop = loop
        self.client: Client = loop.run(Client.connect(address))

    def _count(self, query: str) -> int:
        return int(self.loop.run(self.client.count_workflows(query)).count)

    def closed(self, wf_type: str, since: float, until: float) -> int:
        return self._count(
            f"WorkflowType='{wf_type}' AND ExecutionStatus!='Running' "
            f"AND CloseTime >= '{_rfc3339(since)}' AND CloseTime < '{_rfc3339(until)}'"
        )

    def running(self, wf_type: str) -> int:
        return self._count(f"WorkflowType='{wf_type}' AND ExecutionStatus='Running'")


class LagSampler:
    """The projection's lag every half second, to read it at the end of a step's window."""

    def __init__(self, redis_url: str) -> None:
        self._r = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append((time.time(), group_backlog(self._r)))

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._r.close()

    def at(self, t: float) -> int | None:
        if not self.samples:
            return None
        return min(self.samples, key=lambda s: abs(s[0] - t))[1]
