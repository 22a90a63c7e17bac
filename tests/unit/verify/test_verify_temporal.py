"""temporal_agrees on crafted histories."""

from __future__ import annotations

import pytest

from harness.verify.temporal import temporal_agrees
from tests.unit.verify.builders import HistoryBuilder, example

pytestmark = pytest.mark.unit


def test_one_completed_run_per_finished_order() -> None:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    long_lived = b.completed()
    # A saga that continued as new is one saga in two runs.
    b.temporal[-1]["status"] = "CONTINUED_AS_NEW"
    b.workflow(long_lived.order_id, "COMPLETED")
    result = temporal_agrees(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["workflows"] == 3
    assert result.counts["runs"] == 4


def test_a_second_run_is_a_duplicate_saga() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.workflow(order.order_id, "COMPLETED")
    result = temporal_agrees(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == "2 workflow runs for one order: a duplicate saga"
    assert len(item["workflow_runs"]) == 2
    assert result.counts["duplicate_sagas"] == 1


def test_an_order_without_a_workflow() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.temporal.pop()
    result = temporal_agrees(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "in orders:events but Temporal has no OrderSaga workflow"
    )


def test_nothing_runs_after_the_drain() -> None:
    b = HistoryBuilder()
    order = b.in_flight(upto="InventoryReserved")
    result = temporal_agrees(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "workflow still RUNNING after the drain (last event InventoryReserved)"
    )


def test_a_completed_workflow_means_a_terminal_order() -> None:
    b = HistoryBuilder()
    order = b.in_flight(upto="PaymentCaptured")
    b.temporal[-1]["status"] = "COMPLETED"
    result = temporal_agrees(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "workflow COMPLETED but the order is not terminal (last event PaymentCaptured)"
    )


@pytest.mark.parametrize("status", ["FAILED", "TERMINATED", "TIMED_OUT", "CANCELED"])
def test_no_run_ends_badly(status: str) -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.temporal[-1]["status"] = status
    result = temporal_agrees(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == f"a workflow run ended {status}"


def test_without_temporal_jsonl_it_is_unknown() -> None:
    b = HistoryBuilder()
    b.completed()
    result = temporal_agrees(b.history(omit=("temporal",)))
    assert result.status == "unknown"
    assert result.error == "history/temporal.jsonl is missing"
