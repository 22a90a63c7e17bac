"""Read-only views of the stack, shared by probes, actions and the safeguard.

Nothing here changes the system: Redis is read through the platform's endpoint with a client
that fails fast (a probe must answer during a Redis restart, not retry for a minute), Temporal
through its client. The figures of the run's orders (acceptance, unsettled orders) are the live
monitor's (`harness.live`), which the probes share with `sagaquake run`'s view.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import keys
from harness.platforms.base import Endpoints

__all__ = ["group_backlog", "reader", "temporal_view"]

_READERS: dict[str, redis.Redis] = {}
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
