"""OrderSaga: place → reserve → capture → commit → complete → notify, compensating in reverse.

Every effect is an activity. Technical failures are retried without limit, so an outage pauses
orders instead of losing them; business rejections (declined card, no stock) cancel the order
after compensation, and so does the customer's cancel (the `cancel` signal), honoured between
steps until the stock is committed.

Two choices for throughput, measured on 2 cores (docs/performance.md):
- Steps are *local* activities: each is a short call (one HTTP request or one Lua script), and a
  local activity's result is recorded as a marker in the workflow task instead of a round trip
  through the server's task queues. This cut the Temporal server's CPU per order by two thirds.
  Retries keep the same policy (unlimited, backoff to 10 s); a worker that dies mid-step leaves
  the workflow task to time out and another worker replays it and redoes the step (idempotent).
- The workflow runs outside the sandbox (`sandboxed=False`): the sandbox's per-run instance set-up
  was a third of the worker's CPU. The code here is deterministic by construction (no clock, no
  randomness, no I/O outside activities), and tests/unit/sut/test_replay.py fails any change that
  would break recorded histories.

A step whose dependency is down must not keep new orders from starting (issue 17): a local
activity that keeps failing retries inside its worker and holds a workflow-task slot all the
while, so a few hundred sagas waiting out a payment outage used to stop every new order from even
being placed. Behind the patch STEPS_WAIT_AS_ACTIVITIES, a step is tried locally for a few seconds
(LOCAL_BUDGET); when it still fails for a technical reason (not a business answer) it is handed to
the server as a regular activity with the same unlimited retries: it waits in Temporal, holding
no slot and writing no history until it ends. On the happy path nothing changes. The hand-over
repeats a call that may have gone through (a time-out is ambiguous), which every step absorbs:
services dedupe by idempotency key or order id, appends by (order, event type).

Versions (docs/system.md): version 2 adds a fraud check before the charge. The new step sits
behind `workflow.patched(FRAUD_CHECK)`, and which version a worker runs is configuration
(SAGAQUAKE_SAGA_VERSION), not a copy of this code: the worker activates the patches of its
version (`patches_for`) for the sagas whose path it decides (Temporal's patch activation
callback), and every worker follows the recorded patch markers of a saga it replays. So a
version 2 worker finishes a saga that a version 1 worker started, without the new step, and a
version 1 worker (after a rollback) finishes one that version 2 started, with it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import CancelledError as TemporalCancelled

with workflow.unsafe.imports_passed_through():
    from system_under_test.saga.activities import SagaActivities
    from system_under_test.saga.models import (
        BUSINESS_FAILURES,
        CUSTOMER_CANCELLED,
        CancelInput,
        OrderInput,
        OrderResult,
    )

__all__ = [
    "FRAUD_CHECK",
    "FRAUD_HOLD",
    "STEPS_WAIT_AS_ACTIVITIES",
    "VERSIONS",
    "OrderSaga",
    "patches_for",
]

# The patches each version of the saga activates for the sagas its workers decide.
FRAUD_CHECK = "fraud-check-before-charge"
# Not a version's feature: every version waits out a failing step as a regular activity. It is
# behind a patch so that sagas started before it (their histories hold no marker) replay.
STEPS_WAIT_AS_ACTIVITIES = "failing-step-waits-as-activity"
_EVERY_VERSION = frozenset({STEPS_WAIT_AS_ACTIVITIES})
VERSIONS: dict[int, frozenset[str]] = {
    1: _EVERY_VERSION,
    2: _EVERY_VERSION | {FRAUD_CHECK},
}
# Version 2 holds an order this long before scoring it (the card network's scoring sees it first).
FRAUD_HOLD = timedelta(seconds=1)

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # until the dependency is back
    non_retryable_error_types=list(BUSINESS_FAILURES),
)
STEP_TIMEOUT = timedelta(seconds=15)
# How long a step is tried as a local activity before it waits as a regular one: a few quick
# attempts, so a refused connection or a 503 hands over within about 1.5 s and a hung service
# within LOCAL_BUDGET, well inside the workflow task's 10 s time-out (no heartbeat needed).
LOCAL_BUDGET = timedelta(seconds=5)
LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=list(BUSINESS_FAILURES),
)


def patches_for(version: int) -> frozenset[str]:
    """The patches a worker of saga `version` activates (ValueError for an unknown version)."""
    if version not in VERSIONS:
        known = ", ".join(map(str, VERSIONS))
        raise ValueError(f"unknown saga version {version!r}; one of: {known}")
    return VERSIONS[version]


def _takes(patch_id: str) -> bool:
    """Whether this saga takes the step behind `patch_id`: when replaying, what its history
    recorded (the patch marker); otherwise what this worker's version says, recorded as a marker."""
    return workflow.patched(patch_id)


def _worth_waiting_for(err: FailureError) -> bool:
    """Whether a step's failure is technical (a time-out, a refused connection, a 5xx): the step
    is worth waiting for. An answer (declined, out of stock, a response the saga cannot use) is
    final, and so is a cancel. A local activity's failure arrives wrapped in an ActivityError
    when it happens, but unwrapped when its marker is replayed (a time-out as a bare
    TimeoutError: temporalio 1.35, found by the chaos harness), so both shapes are read."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, TemporalCancelled):
        return False
    return not (
        isinstance(cause, ApplicationError)
        and (cause.non_retryable or cause.type in BUSINESS_FAILURES)
    )


def _reason(err: BaseException) -> str:
    """The cancel reason written to OrderCancelled: out_of_stock, payment_declined, or the failure type."""
    cause = err.cause if isinstance(err, ActivityError) else err
    failure = (
        cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    )
    return {
        "OutOfStock": "out_of_stock",
        "PaymentDeclined": "payment_declined",
        "UnknownSku": "unknown_sku",
        "FraudSuspected": "fraud_suspected",
    }.get(failure, failure)


@workflow.defn(name="OrderSaga", sandboxed=False)
class OrderSaga:
    def __init__(self) -> None:
        self._steps: list[str] = []
        self._cancel_reason = ""
        self._shipped = False

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """The customer cancels (POST /orders/{id}/cancel). Honoured between steps, never by
        interrupting one (a charge cut off mid-call may or may not have gone through), and only
        until the stock is committed: then the order ships and the cancel is too late."""
        self._cancel_reason = self._cancel_reason or reason or CUSTOMER_CANCELLED

    async def _cancelled_by_customer(self, order: OrderInput) -> bool:
        """Honour a cancel, if one came and the order has not shipped. A step's effect can be
        real without being in the history (local activities of a workflow task that was retried,
        for instance because this very signal arrived while it ran), so the cancel assumes any
        step may have happened: it asks the stock first (committed: too late, the saga goes on
        and completes), then refunds whatever was charged (nothing charged, nothing refunded)."""
        if not self._cancel_reason or self._shipped:
            return False
        if not await self._step(SagaActivities.release_for_cancel, order):
            self._shipped = True
            return False
        await self._step(SagaActivities.refund_payment, order)
        await self._step(SagaActivities.cancel_order, CancelInput(order, self._cancel_reason))
        return True

    async def _step(self, activity: Any, arg: Any) -> Any:
        self._steps.append(activity.__name__)
        if not _takes(STEPS_WAIT_AS_ACTIVITIES):  # a saga started before the patch
            return await workflow.execute_local_activity_method(
                activity, arg, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
            )
        try:
            return await workflow.execute_local_activity_method(
                activity,
                arg,
                schedule_to_close_timeout=LOCAL_BUDGET,
                start_to_close_timeout=LOCAL_BUDGET,
                retry_policy=LOCAL_RETRY,
            )
        except FailureError as err:
            if not _worth_waiting_for(err):
                raise
        return await workflow.execute_activity_method(
            activity, arg, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
        )

    @workflow.query
    def steps(self) -> list[str]:
        return list(self._steps)

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        await self._step(SagaActivities.place_order, order)
        compensations: list[Any] = []
        try:
            if await self._cancelled_by_customer(order):
                return self._result(order, "cancelled", self._cancel_reason)
            await self._step(SagaActivities.reserve_inventory, order)
            compensations.append(SagaActivities.release_inventory)
            if _takes(FRAUD_CHECK):
                await self._screen(order)
            if await self._cancelled_by_customer(order):
                return self._result(order, "cancelled", self._cancel_reason)
            await self._step(SagaActivities.capture_payment, order)
            compensations.append(SagaActivities.refund_payment)
            if await self._cancelled_by_customer(order):
                return self._result(order, "cancelled", self._cancel_reason)
            await self._step(SagaActivities.commit_inventory, order)
        except (ActivityError, ApplicationError, asyncio.CancelledError) as err:
            # a local activity's business failure arrives as the ApplicationError itself
            reason = (
                "workflow_cancelled" if isinstance(err, asyncio.CancelledError) else _reason(err)
            )
            await self._compensate(order, compensations, reason)
            return self._result(order, "cancelled", reason)
        await self._step(SagaActivities.complete_order, order)
        await self._step(SagaActivities.send_confirmation, order)
        return self._result(order, "completed", "")

    def _result(self, order: OrderInput, status: str, reason: str) -> OrderResult:
        return OrderResult(order.order_id, status, reason, list(self._steps))

    async def _screen(self, order: OrderInput) -> None:
        """Version 2's fraud check: hold the order (a durable timer, so the saga's next workflow
        task may run on another worker), then score it; FraudSuspected cancels the order."""
        await workflow.sleep(FRAUD_HOLD)
        await self._step(SagaActivities.screen_order, order)

    async def _compensate(self, order: OrderInput, compensations: list[Any], reason: str) -> None:
        """Undo in reverse order; compensations retry until they succeed (they are idempotent)."""
        for undo in reversed(compensations):
            await self._step(undo, order)
        await self._step(SagaActivities.cancel_order, CancelInput(order, reason))
