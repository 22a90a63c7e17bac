"""Determinism guard: recorded histories (tests/data/histories, made by
tests/data/record_histories.py on a real stack) must replay against today's workflow code: the
four OrderSaga paths recorded by version 1 before version 2 existed, a version 2 saga (the fraud
check behind its patch), two sagas that waited out a payment outage or hang as a regular activity
(behind the STEPS_WAIT_AS_ACTIVITIES patch), and the runs of a ReprocessOrders chain that continued as new."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from system_under_test.reprocess.workflows import ReprocessOrders
from system_under_test.saga.activities import SagaActivities
from system_under_test.saga.models import OrderInput, OrderResult
from system_under_test.saga.workflows import (
    FRAUD_CHECK,
    RETRY,
    STEP_TIMEOUT,
    STEPS_WAIT_AS_ACTIVITIES,
    OrderSaga,
)

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
        "completed_v2",
        "waited_for_payment",
        "waited_after_local_timeout",
        "reprocess_0",
        "reprocess_1",
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_on_the_current_workflow(path: Path) -> None:
    result = await Replayer(workflows=[OrderSaga, ReprocessOrders]).replay_workflow(
        _history(path), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


def _patches(path: Path) -> list[dict[str, object]]:
    return [
        json.loads(base64.b64decode(attrs["details"]["patch-data"]["payloads"][0]["data"]))
        for event in json.loads(path.read_text())["events"]
        if (attrs := event.get("markerRecordedEventAttributes", {})).get("markerName")
        == "core_patch"
    ]


def test_a_saga_that_waited_for_payment_did_so_as_a_regular_activity_behind_its_patch() -> None:
    waited = HISTORIES[0].parent / "waited_for_payment.json"
    events = json.loads(waited.read_text())["events"]
    assert _patches(waited) == [{"id": STEPS_WAIT_AS_ACTIVITIES, "deprecated": False}]
    scheduled = [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    assert scheduled == ["capture_payment"]  # the other steps ran locally
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_a_local_time_out_replayed_as_a_bare_timeout_error_still_waits_as_an_activity() -> None:
    """Taken from a default-suite run under overload: the charge's local attempt ran out of its
    budget (its marker holds a bare TimeoutFailure, which the SDK raises unwrapped on replay,
    where it raised an ActivityError live) and the saga handed the charge to the server. The
    first version of the hand-over caught only ActivityError, so this history failed to replay."""
    events = json.loads((HISTORIES[0].parent / "waited_after_local_timeout.json").read_text())[
        "events"
    ]
    failures = [
        e["markerRecordedEventAttributes"]["failure"]
        for e in events
        if "failure" in e.get("markerRecordedEventAttributes", {})
    ]
    assert [f.get("timeoutFailureInfo", {}).get("timeoutType") for f in failures] == [
        "TIMEOUT_TYPE_SCHEDULE_TO_CLOSE"
    ]
    assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" in {e["eventType"] for e in events}


def _markers(path: Path) -> list[str]:
    """The names of the markers a history recorded, with the keys of their details, in order."""
    out = []
    for event in json.loads(path.read_text())["events"]:
        attrs = event.get("markerRecordedEventAttributes")
        if attrs:
            details = attrs.get("details", {})
            out.append(attrs["markerName"] + (":" + str(sorted(details)) if details else ""))
    return out


def test_version_2_recorded_its_patch_and_version_1_did_not() -> None:
    by_name = {p.stem: p for p in HISTORIES}
    v2, v1 = by_name["completed_v2"].read_text(), by_name["completed"].read_text()
    assert any("core_patch" in m for m in _markers(by_name["completed_v2"]))
    assert not any("core_patch" in m for m in _markers(by_name["completed"]))
    assert _patches(by_name["completed_v2"]) == [{"id": FRAUD_CHECK, "deprecated": False}]
    assert "EVENT_TYPE_TIMER_STARTED" in v2 and "EVENT_TYPE_TIMER_STARTED" not in v1


def test_the_reprocess_chain_continued_as_new() -> None:
    first = json.loads((HISTORIES[0].parent / "reprocess_0.json").read_text())["events"]
    last = json.loads((HISTORIES[0].parent / "reprocess_1.json").read_text())["events"]
    assert first[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    assert last[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


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
