"""Fault windows: one faults.jsonl line per window, written when the fault ends (also on an
error or Ctrl-C), and windows left open by a dead action closed by whoever rolls back."""

from __future__ import annotations

import json

import pytest

from harness.chaos.faults import (
    FaultNotLanded,
    FaultWindow,
    append_fault,
    close_open_windows,
    read_faults,
)
from harness.chaos.state import read_state, updating
from harness.runs import RunFolder

pytestmark = pytest.mark.unit


def test_a_window_is_written_when_its_fault_ends_with_the_documented_fields(tmp_path) -> None:
    with FaultWindow(tmp_path, "kill-payment-pods", "kill_replicas", "payment-service") as w:
        assert read_faults(tmp_path) == []  # nothing until the fault ends
        assert w.id in read_state(tmp_path)["open_windows"]
        w.land(killed=[{"name": "payment-service_00", "old_pid": 1, "new_pid": 2}])
    (line,) = read_faults(tmp_path)
    assert set(line) == {
        "experiment", "action", "target", "started_at", "ended_at", "landed", "evidence",
    }  # fmt: skip
    assert line["experiment"] == "kill-payment-pods" and line["landed"] is True
    assert line["started_at"] <= line["ended_at"]
    assert line["evidence"]["killed"][0]["new_pid"] == 2
    assert read_state(tmp_path)["open_windows"] == {}


def test_a_fault_that_did_not_land_is_written_with_landed_false_and_the_error(tmp_path) -> None:
    with pytest.raises(FaultNotLanded), FaultWindow(tmp_path, "e", "outage", "redis"):
        raise FaultNotLanded("redis still answered PING after the stop")
    (line,) = read_faults(tmp_path)
    assert line["landed"] is False
    assert line["evidence"]["error"] == "FaultNotLanded: redis still answered PING after the stop"


def test_ctrl_c_in_a_window_still_writes_it_and_says_it_was_interrupted(tmp_path) -> None:
    with pytest.raises(KeyboardInterrupt), FaultWindow(tmp_path, "e", "outage", "redis") as w:
        w.land(down=True)
        raise KeyboardInterrupt
    (line,) = read_faults(tmp_path)
    assert line["landed"] is True and line["evidence"]["interrupted"] == "KeyboardInterrupt"


def test_windows_left_open_are_closed_by_the_rollback_selectively(tmp_path) -> None:
    memory = FaultWindow(tmp_path, "e", "lower_redis_maxmemory", "redis").open()
    outage = FaultWindow(tmp_path, "e", "outage", "payment-service").open()
    other = FaultWindow(tmp_path, "e", "outage", "redis").open()
    closed = close_open_windows(
        tmp_path, None, "rollback", exclude=other.id, skip_actions=("lower_redis_maxmemory",)
    )
    assert [c["target"] for c in closed] == ["payment-service"]
    assert closed[0]["evidence"]["closed_by"] == "rollback" and closed[0]["ended_at"]
    assert set(read_state(tmp_path)["open_windows"]) == {memory.id, other.id}
    assert [f["action"] for f in read_faults(tmp_path)] == ["outage"]
    assert outage.id not in read_state(tmp_path)["open_windows"]


def test_closing_twice_writes_one_line(tmp_path) -> None:
    w = FaultWindow(tmp_path, "e", "outage", "redis").open()
    w.close()
    w.close()
    assert len(read_faults(tmp_path)) == 1


def test_a_torn_last_line_is_skipped(tmp_path) -> None:
    append_fault(tmp_path, {"experiment": "e", "action": "a", "target": "t"})
    with RunFolder(tmp_path).faults.open("a") as f:
        f.write('{"experiment": "e", "act')
    assert len(read_faults(tmp_path)) == 1


def test_state_updates_are_written_atomically_and_read_back(tmp_path) -> None:
    with updating(tmp_path) as state:
        state["redis_maxmemory"] = {"original": "1073741824"}
    assert json.loads((tmp_path / "chaos" / "state.json").read_text()) == {
        "redis_maxmemory": {"original": "1073741824"}
    }
    with pytest.raises(RuntimeError), updating(tmp_path) as state:
        state.clear()
        raise RuntimeError("half-way")
    assert read_state(tmp_path) == {"redis_maxmemory": {"original": "1073741824"}}
