"""A bare Temporal workflow with the saga's shape and none of its work: bench_saga's baseline.

Why it looks like this: the ratio "our saga / bare workflow" is only fair when the two differ in
nothing but our code. So `BareSaga` runs 6 do-nothing *local* activities in a row, with
OrderSaga's own timeout and retry policy, outside the sandbox (as OrderSaga is); it takes an
`OrderInput` and returns an `OrderResult` (same payload sizes); it is started like the
order-service starts a saga (`REJECT_DUPLICATE`, a fingerprint memo); and its workers have the
saga worker's limits. `BareSagaRegular` does the same with regular activities, for context
(what local activities save on this server).

    .venv/bin/python benchmarks/bare_workflow.py --address 127.0.0.1:7233 --task-queue bare
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.worker import Worker

from system_under_test.config import settings
from system_under_test.saga.models import LineItem, OrderInput, OrderResult
from system_under_test.saga.workflows import RETRY, STEP_TIMEOUT

__all__ = [
    "WORKFLOWS",
    "WORKFLOW_TYPES",
    "BareActivities",
    "BareSaga",
    "BareSagaRegular",
    "StartLog",
    "run_worker",
    "start_at_rate",
]

STEPS = 6  # OrderSaga's happy path: place, reserve, capture, commit, complete, confirm


class BareActivities:
    """Six activities that do nothing, one per step of the saga's happy path."""

    @activity.defn(name="bare_place_order")
    async def place_order(self, order: OrderInput) -> None:
        return None

    @activity.defn(name="bare_reserve_inventory")
    async def reserve_inventory(self, order: OrderInput) -> None:
        return None

    @activity.defn(name="bare_capture_payment")
    async def capture_payment(self, order: OrderInput) -> None:
        return None

    @activity.defn(name="bare_commit_inventory")
    async def commit_inventory(self, order: OrderInput) -> None:
        return None

    @activity.defn(name="bare_complete_order")
    async def complete_order(self, order: OrderInput) -> None:
        return None

    @activity.defn(name="bare_send_confirmation")
    async def send_confirmation(self, order: OrderInput) -> None:
        return None

    def all(self) -> list[Any]:
        return [getattr(self, step.__name__) for step in _STEP_METHODS]


_STEP_METHODS = [
    BareActivities.place_order,
    BareActivities.reserve_inventory,
    BareActivities.capture_payment,
    BareActivities.commit_inventory,
    BareActivities.complete_order,
    BareActivities.send_confirmation,
]


async def _happy_path(order: OrderInput, execute: Any) -> OrderResult:
    """Every step in order through `execute` (a local or a regular activity), as OrderSaga."""
    steps: list[str] = []
    for step in _STEP_METHODS:
        steps.append(step.__name__)
        await execute(step, order, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY)
    return OrderResult(order.order_id, "completed", "", steps)


@workflow.defn(name="BareSaga", sandboxed=False)
class BareSaga:
    """OrderSaga's happy path with local activities that do nothing."""

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        return await _happy_path(order, workflow.execute_local_activity_method)


@workflow.defn(name="BareSagaRegular", sandboxed=False)
class BareSagaRegular:
    """The same with regular activities (each one a round trip through the server's queues)."""

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        return await _happy_path(order, workflow.execute_activity_method)


WORKFLOWS: dict[str, Any] = {"local": BareSaga, "regular": BareSagaRegular}
WORKFLOW_TYPES = {"local": "BareSaga", "regular": "BareSagaRegular"}


async def run_worker(
    address: str, task_queue: str, stop: asyncio.Event, ready_file: Path | None = None
) -> None:
    """One worker process with the saga worker's limits (SAGAQUAKE_WORKER_CONCURRENCY)."""
    cfg = settings()
    client = await Client.connect(address, namespace=cfg.temporal_namespace)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BareSaga, BareSagaRegular],
        activities=BareActivities().all(),
        max_concurrent_activities=cfg.worker_concurrency,
        max_concurrent_local_activities=cfg.worker_concurrency,
        max_concurrent_workflow_tasks=cfg.worker_concurrency,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    async with worker:
        if ready_file is not None:
            ready_file.write_text("polling\n")
        await stop.wait()


def order_input(workflow_id: str, i: int) -> OrderInput:
    """An input of the size a real order has (one to three line items)."""
    items = [LineItem(f"SKU-{(i * 7 + n) % 200 + 1:04d}", 1 + n % 2) for n in range(1 + i % 3)]
    return OrderInput(
        order_id=workflow_id,
        customer_id=f"cus-{i % 5000 + 1:05d}",
        items=items,
        amount_cents=1999 + (i * 37) % 20000,
        currency="EUR",
        idempotency_key=f"bench-{workflow_id}",
        accepted_at_ms=int(time.time() * 1000),
    )


@dataclass
class StartLog:
    """What the starter did: when each start was due and sent, and how many were refused."""

    t0: float
    rate: float
    duration_s: float
    due: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def lag_p99_s(self) -> float:
        lags = sorted(s - d for s, d in zip(self.sent, self.due, strict=True))
        return lags[int(0.99 * (len(lags) - 1))] if lags else 0.0


async def start_at_rate(
    client: Client, kind: str, rate: float, duration_s: float, task_queue: str, prefix: str
) -> StartLog:
    """Start `rate` workflows per second for `duration_s`, evenly spaced (an open model: a slow
    start does not delay the next one), and wait until every start was answered."""
    wf = WORKFLOWS[kind]
    n = max(1, round(rate * duration_s))
    log = StartLog(t0=time.time() + 0.2, rate=rate, duration_s=duration_s)

    async def one(i: int, due: float) -> None:
        workflow_id = f"{prefix}-{i:06d}"
        log.due.append(due)
        log.sent.append(time.time())
        try:
            await client.start_workflow(
                wf.run,
                order_input(workflow_id, i),
                id=workflow_id,
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                memo={"fingerprint": f"{i:064x}"},
            )
        except Exception as exc:
            log.failed += 1
            if len(log.errors) < 5:
                log.errors.append(f"{type(exc).__name__}: {exc}")

    tasks = []
    for i in range(n):
        due = log.t0 + (i + 0.5) / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="Temporal frontend, host:port")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--ready-file", type=Path, help="written once the worker polls")
    args = parser.parse_args(argv)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(args.address, args.task_queue, stop, args.ready_file)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
