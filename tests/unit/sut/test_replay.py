"""Determinism guard: recorded OrderSaga histories (tests/data/histories, made by
tests/data/record_histories.py on a real stack) must replay against today's workflow code."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from system_under_test.saga.activities import SagaActivities
from system_under_test.saga.models import OrderInput, OrderResult
from system_under_test.saga.workflows import RETRY, STEP_TIMEOUT, OrderSaga

pytestmark = pytest.mark.unit

HISTORIES = sorted((Path(__file__).parents[2] / "data" / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_every_saga_path_was_recorded() -> None:
    assert {p.stem for p in HISTORIES} == {
        "completed",
        "payment_declined",
        "out_of_stock",
        "refunded",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_on_the_current_workflow(path: Path) -> None:
    result = await Replayer(workflows=[OrderSaga]).replay_workflow(
        _history(path), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


@workflow.defn(name="OrderSaga")
class _ChargesBeforeReserving:
    """A careless change: the same saga with two steps swapped."""

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        for step in (
            SagaActivities.place_order,
            SagaActivities.capture_payment,
            SagaActivities.reserve_inventory,
        ):
            await workflow.execute_activity_method(
                step, order, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
            )
        return OrderResult(order.order_id, "completed")


async def test_a_reordered_saga_fails_the_replay() -> None:
    completed = next(p for p in HISTORIES if p.stem == "completed")
    # unsandboxed: the sandbox would re-import this test module, which is not workflow-safe
    replayer = Replayer(
        workflows=[_ChargesBeforeReserving], workflow_runner=UnsandboxedWorkflowRunner()
    )
    result = await replayer.replay_workflow(_history(completed), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
