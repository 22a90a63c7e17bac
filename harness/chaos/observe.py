"""Read-only views of the stack and of the run folder, shared by probes, actions and the safeguard.

Nothing here changes the system: Redis is read through the platform's endpoint with a client
that fails fast (a probe must answer during a Redis restart, not retry for a minute), Temporal
through its client, and the client ledgers of the run folder through `harness.load.ledger`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import keys
from harness.load.ledger import LedgerTail
from harness.platforms.base import Endpoints

__all__ = [
    "LedgerWatch",
    "group_backlog",
    "ledger_watch",
    "reader",
    "temporal_view",
]

SETTLED = ("NotificationSent", "OrderCancelled")  # an order's last event on either path

_READERS: dict[str, redis.Redis] = {}
_WATCHES: dict[Path, LedgerWatch] = {}
_LOCK = threading.Lock()


def reader(endpoints: Endpoints) -> redis.Redis:
    """A shared, thread-safe Redis client for reads: short time-outs, one retry."""
    with _LOCK:
        client = _READERS.get(endpoints.redis_url)
        if client is None:
            client = _READERS[endpoints.redis_url] = redis.Redis.from_url(
                endpoints.redis_url,
                decode_responses=True,
                socket_timeout=3,
                socket_connect_timeout=2,
                retry=Retry(NoBackoff(), 1),
            )
        return client


class LedgerWatch:
    """Follows every client ledger of a run folder: recent answers (acceptance rate) and the
    orders clients were told were accepted that have not settled yet (no last event)."""

    def __init__(self, run_dir: Path, window_s: float = 600.0) -> None:
        self.tail = LedgerTail(run_dir)
        self.window_s = window_s
        self.recent: deque[tuple[float, str]] = deque()  # (answered_at, outcome)
        self.pending: dict[str, float] = {}  # order id -> first sent_at
        self.settled: set[str] = set()
        self.lock = threading.Lock()

    def _read(self) -> None:
        for line in self.tail.read_new():
            answered = line.get("answered_at") or line.get("sent_at") or 0.0
            self.recent.append((float(answered), str(line.get("outcome"))))
            order_id = line.get("order_id")
            if line.get("outcome") == "ok" and order_id and order_id not in self.settled:
                sent = float(line.get("sent_at") or answered)
                self.pending[order_id] = min(self.pending.get(order_id, sent), sent)
        horizon = time.time() - self.window_s
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()

    def acceptance(self, window_s: float) -> dict[str, Any]:
        """Answers of the last `window_s` seconds, by outcome, and the share that was not ok."""
        with self.lock:
            self._read()
            since = time.time() - window_s
            outcomes = [o for t, o in self.recent if t >= since]
        ok = outcomes.count("ok")
        failed = outcomes.count("failed")
        requests = len(outcomes)
        return {
            "window_s": window_s,
            "requests": requests,
            "ok": ok,
            "failed": failed,
            "unknown": requests - ok - failed,
            "error_ratio": round((requests - ok) / requests, 4) if requests else 0.0,
        }

    def unsettled(
        self, client: redis.Redis, sent_before: float | None = None, examples: int = 5
    ) -> dict[str, Any]:
        """Orders told `ok` (first sent before `sent_before`, if given) whose last event
        (NotificationSent or OrderCancelled) is not in the stream yet."""
        with self.lock:
            self._read()
            ids = list(self.pending)
            if ids:
                pipe = client.pipeline(transaction=False)
                for order_id in ids:
                    pipe.hmget(keys.dedupe(order_id), *SETTLED)
                for order_id, found in zip(ids, pipe.execute(), strict=True):
                    if any(found):
                        self.settled.add(order_id)
                        del self.pending[order_id]
            oldest = sorted(
                (kv for kv in self.pending.items() if sent_before is None or kv[1] < sent_before),
                key=lambda kv: kv[1],
            )
            accepted = len(self.pending) + len(self.settled)
        now = time.time()
        return {
            "accepted": accepted,
            "unsettled": len(oldest),
            "oldest_age_s": round(now - oldest[0][1], 3) if oldest else 0.0,
            "oldest": [order_id for order_id, _ in oldest[:examples]],
        }


def ledger_watch(run_dir: Path) -> LedgerWatch:
    """The watch of a run folder, shared by every probe of this process."""
    with _LOCK:
        watch = _WATCHES.get(Path(run_dir))
        if watch is None:
            watch = _WATCHES[Path(run_dir)] = LedgerWatch(Path(run_dir))
        return watch


async def _temporal_view(endpoints: Endpoints, sample: int) -> dict[str, Any]:
    from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await asyncio.wait_for(
        Client.connect(endpoints.temporal_address, namespace=endpoints.temporal_namespace), 5
    )
    running_query = "WorkflowType='OrderSaga' AND ExecutionStatus='Running'"
    running = (await client.count_workflows(running_query)).count
    total = (await client.count_workflows("WorkflowType='OrderSaga'")).count
    queue = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=endpoints.temporal_namespace,
            task_queue=TaskQueue(name=endpoints.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
    )
    activities: list[dict[str, Any]] = []
    if sample and running:
        async for wf in client.list_workflows(running_query, limit=sample):
            described = await client.get_workflow_handle(wf.id).describe()
            for pending in described.raw_description.pending_activities:
                activities.append(
                    {
                        "workflow_id": wf.id,
                        "activity": pending.activity_type.name,
                        "state": PendingActivityState.Name(pending.state).removeprefix(
                            "PENDING_ACTIVITY_STATE_"
                        ),
                        "attempt": pending.attempt,
                    }
                )
    return {
        "workflows": int(total),
        "running_workflows": int(running),
        "activity_pollers": len(queue.pollers),
        "activity_backlog": int(queue.stats.approximate_backlog_count),
        "activity_backlog_age_s": round(queue.stats.approximate_backlog_age.ToTimedelta().total_seconds(), 3),
        "pending_activities": activities,
    }  # fmt: skip


def temporal_view(endpoints: Endpoints, sample: int = 0) -> dict[str, Any]:
    """Running OrderSaga workflows, the activity task queue (pollers = live workers, backlog),
    and the pending activities of up to `sample` running workflows."""
    return asyncio.run(_temporal_view(endpoints, sample))


def group_backlog(
    r: redis.Redis, stream: str = keys.EVENTS, group: str = keys.PROJECTION_GROUP, cap: int = 10_000
) -> int:
    """Entries of `stream` not yet delivered to `group` plus those delivered but not acked (-1
    when Redis does not answer). Undelivered entries are counted with XRANGE after the group's
    last-delivered id, up to `cap`.

    Why not XINFO GROUPS' `lag`: Redis derives it from a read counter that can go wrong (seen on
    Redis 7.0 after the chaos experiments: lag 6,643 with every entry delivered, so the drain
    waited for its deadline), and it is nil when Redis cannot tell."""

    def text(value: object) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    try:
        found = next((g for g in r.xinfo_groups(stream) if text(g["name"]) == group), None)
        if found is None:  # nobody has read yet
            return min(int(r.xlen(stream)), cap)
        last = text(found["last-delivered-id"])
        undelivered = 0
        if last != text(r.xinfo_stream(stream)["last-generated-id"]):
            undelivered = len(r.xrange(stream, min=f"({last}", count=cap) or [])
        return undelivered + int(found["pending"])
    except redis.RedisError:
        return -1
