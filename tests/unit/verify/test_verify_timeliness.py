"""timeliness: time to terminal, recovery time after faults, and the suite's limits."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.verify.timeliness import recovery_times, timeliness, validate_thresholds
from tests.unit.verify.builders import COMPLETED_PATH, HistoryBuilder, example

pytestmark = pytest.mark.unit


def _run() -> HistoryBuilder:
    b = HistoryBuilder(step_s=0.01)
    for _ in range(10):
        b.completed()
    return b


def test_without_limits_the_metrics_are_reported_and_it_passes() -> None:
    result = timeliness(_run().history())
    assert result.status == "pass"
    ttt = result.metrics["time_to_terminal_s"]
    assert ttt["count"] == 10
    assert 0 < ttt["p50"] <= ttt["p90"] <= ttt["p99"] <= ttt["max"]
    assert result.metrics["recovery"] == []
    assert result.metrics["thresholds"] == []


def test_generous_limits_pass() -> None:
    result = timeliness(_run().history(), thresholds={"p99_time_to_terminal_s": 30})
    assert result.status == "pass"
    [check] = result.metrics["thresholds"]
    assert check["name"] == "p99_time_to_terminal_s"
    assert check["ok"] is True
    assert check["op"] == "<="
    assert check["limit"] == 30


def test_a_slow_order_breaks_a_percentile_limit() -> None:
    b = _run()
    slow = b.new_order()
    b.request(slow)
    b.tick(12.0)
    b.steps(slow, *COMPLETED_PATH)
    b.workflow(slow.order_id)
    result = timeliness(b.history(), thresholds={"max_time_to_terminal_s": 10})
    assert result.status == "fail"
    item = example(result, slow.order_id)
    assert item["why"].startswith("took 12.")
    assert "max_time_to_terminal_s is 12." in item["why"]
    assert item["why"].endswith("limit 10 s")
    assert result.metrics["thresholds"][0]["ok"] is False


def test_recovery_is_the_drain_of_the_orders_a_fault_touched() -> None:
    b = _run()
    touched = b.new_order()
    b.request(touched)  # in flight when the fault starts
    began = b.tick()
    b.step(touched, "OrderPlaced")
    ended = b.tick(2.0)
    b.fault(began, ended)
    b.tick(5.0)  # the saga only resumes 5 s after the fault ended
    b.steps(touched, *COMPLETED_PATH[1:5])
    finished = int(b.streams["orders:events"][-1][1]["ts"]) / 1000
    b.step(touched, "NotificationSent")
    b.workflow(touched.order_id)
    [fault] = recovery_times(b.history())
    assert fault["fault"] == 0
    assert fault["backlog"] == 1
    assert fault["slowest_order"] == touched.order_id
    assert fault["recovery_time_s"] == pytest.approx(finished - ended, abs=1e-3)

    result = timeliness(b.history(), thresholds={"max_recovery_time_s": 1})
    assert result.status == "fail"
    [item] = result.counterexamples
    assert item["fault"] == 0
    assert item["why"].startswith("fault #0 (kill-payment-pods) recovered in 5.")
    assert item["why"].endswith("limit 1 s")


def test_a_fault_that_touched_nothing_recovers_at_once() -> None:
    b = _run()
    b.tick(10.0)
    b.fault(b.now, b.now + 1.0)
    [fault] = recovery_times(b.history())
    assert fault["recovery_time_s"] == 0.0
    assert fault["backlog"] == 0


def test_an_order_stuck_by_a_fault_means_no_recovery() -> None:
    b = _run()
    stuck = b.in_flight(upto="InventoryReserved")
    b.fault(b.now - 0.01, b.now + 1.0)
    [fault] = recovery_times(b.history())
    assert fault["recovery_time_s"] is None
    assert fault["still_open"] == 1
    result = timeliness(b.history(), thresholds={"max_recovery_time_s": 60})
    assert result.status == "fail"
    assert result.counterexamples[0]["why"] == (
        "fault #0 (kill-payment-pods) did not recover; limit 60 s"
    )
    assert result.counterexamples[0]["slowest_order"] == stuck.order_id


def test_without_terminal_orders_timeliness_is_unknown() -> None:
    b = HistoryBuilder()
    b.in_flight()
    result = timeliness(b.history())
    assert result.status == "unknown"
    assert result.error == "no order reached a terminal event: no time to terminal"


def test_a_recovery_limit_without_fault_windows_is_unknown() -> None:
    result = timeliness(_run().history(omit=("faults",)), thresholds={"max_recovery_time_s": 5})
    assert result.status == "unknown"
    assert result.error == "history/faults.jsonl is missing"


def test_time_to_terminal_counts_from_the_first_request() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order, outcome="unknown", status=None)
    b.tick(4.0)
    b.request(order, attempt=2)
    b.steps(order, *COMPLETED_PATH)
    b.workflow(order.order_id)
    result = timeliness(b.history())
    assert result.metrics["time_to_terminal_s"]["max"] > 4.0


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"p98_time_to_terminal_s": 3},
            "unknown threshold 'p98_time_to_terminal_s': the verifier knows p50_time_to_terminal_s",
        ),
        (
            {"p99_time_to_terminal_s": "fast"},
            "threshold 'p99_time_to_terminal_s' is 'fast': expected a number of 0 or more (seconds)",
        ),
        (
            {"max_recovery_time_s": -1},
            "threshold 'max_recovery_time_s' is -1: expected a number of 0 or more (seconds)",
        ),
    ],
)
def test_bad_limits_are_config_errors(limits: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_thresholds(limits)
    assert str(err.value).startswith(message)
