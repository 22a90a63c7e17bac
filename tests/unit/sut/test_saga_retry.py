"""The saga's steps retry inside the worker only briefly (issue 17): a step that keeps failing
waits on a workflow timer and frees its workflow-task slot, so new orders keep being placed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio import workflow

from system_under_test.saga import workflows
from system_under_test.saga.models import LineItem, OrderInput
from system_under_test.saga.workflows import LOCAL_RETRY_THRESHOLD, RETRY, OrderSaga

pytestmark = pytest.mark.unit


def test_the_threshold_sends_long_retries_to_a_timer() -> None:
    # zero would mean "unset" to the SDK (Temporal's default: 1 minute, above our whole backoff)
    assert LOCAL_RETRY_THRESHOLD.total_seconds() > 0
    assert RETRY.maximum_interval is not None
    assert RETRY.maximum_interval > LOCAL_RETRY_THRESHOLD
    # the first retry of a blip stays in the worker
    assert RETRY.initial_interval <= LOCAL_RETRY_THRESHOLD


def test_every_step_of_the_happy_path_carries_the_threshold(monkeypatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def local_activity(activity: Any, arg: Any, **kwargs: Any) -> Any:
        calls.append((activity.__name__, kwargs))
        return True

    monkeypatch.setattr(workflow, "execute_local_activity_method", local_activity)
    monkeypatch.setattr(workflows, "_takes", lambda patch_id: False)
    order = OrderInput("ord-1", "cust-1", [LineItem("sku-1", 1)], 1000, "EUR")
    result = asyncio.run(OrderSaga().run(order))
    assert result.status == "completed"
    assert [name for name, _ in calls] == [
        "place_order",
        "reserve_inventory",
        "capture_payment",
        "commit_inventory",
        "complete_order",
        "send_confirmation",
    ]
    for name, kwargs in calls:
        assert kwargs["local_retry_threshold"] == LOCAL_RETRY_THRESHOLD, name
        assert kwargs["retry_policy"] is RETRY, name
