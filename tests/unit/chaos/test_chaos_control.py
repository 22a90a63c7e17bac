"""The sagaquake control's bookkeeping: a failed action fails the experiment, a SIGTERM inside
an activity interrupts it, a safeguard abort marks it aborted, and the journal lands in the run
folder with the run's fault windows."""

from __future__ import annotations

import json

import pytest
from chaoslib.exceptions import InvalidControl

from harness.chaos.context import ChaosContext
from harness.chaos.control import _Run, validate_control
from harness.chaos.faults import FaultWindow
from harness.chaos.safeguard import Limit, Safeguard

pytestmark = pytest.mark.unit


class FakePlatform:
    name = "local"


def run_for(tmp_path) -> tuple[_Run, dict]:
    run = _Run(ChaosContext(FakePlatform(), tmp_path, "payment-outage", 24.0), {})  # type: ignore[arg-type]
    journal: dict = {"status": None, "deviated": False}
    run.running({}, journal)
    return run, journal


def failed(name: str, error: str) -> tuple[dict, dict]:
    activity = {"type": "action", "name": name}
    return activity, {"status": "failed", "exception": ["Traceback…", f"ActivityFailed: {error}\n"]}


def test_a_failed_method_action_fails_the_experiment_and_stops_the_method(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    run.activity_completed(*failed("probe-before", "boom"))  # not in the method yet
    assert journal["status"] is None
    run.start_method({})
    run.activity_completed(*failed("payment-outage", "FaultNotLanded: still answered 200"))
    assert journal["status"] == "failed"  # chaoslib stops the method on this status
    journal["status"] = "completed"  # what chaoslib may write after the hypothesis
    run.finish(journal)
    assert journal["status"] == "failed"
    assert journal["sagaquake"]["failed_actions"] == [
        "payment-outage: ActivityFailed: FaultNotLanded: still answered 200"
    ]


def test_sigterm_inside_an_activity_interrupts_instead_of_failing(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    run.start_method({})
    run.activity_completed(*failed("payment-outage", "InterruptExecution: SIGTERM signal received"))
    assert journal["status"] == "interrupted" and run.failed_actions == []


def test_a_steady_state_that_did_not_hold_before_fails_the_experiment(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    journal["steady_states"] = {"before": {"steady_state_met": False, "probes": []}}
    journal["status"] = "completed"  # what chaoslib writes when the gate hypothesis fails
    run.finish(journal)
    assert (
        journal["status"] == "failed" and "nothing was injected" in journal["sagaquake"]["not_run"]
    )


def test_a_failed_rollback_fails_the_experiment(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    run.start_rollbacks({})
    run.activity_completed(*failed("restore-redis-maxmemory", "PlatformError: still refuses"))
    journal["status"] = "completed"
    run.finish(journal)
    assert journal["status"] == "failed" and journal["sagaquake"]["failed_rollbacks"]


def test_a_safeguard_abort_marks_the_journal_aborted_with_its_reason(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    limit = Limit("acceptance_rate", "error_ratio", at_most=0.2)
    run.safeguard = Safeguard([limit], 0, 1, lambda _: {"error_ratio": 1}, lambda r: None)
    run.safeguard.check_once()
    journal["status"] = "interrupted"  # what chaoslib writes on SystemExit(20)
    run.finish(journal)
    assert journal["status"] == "aborted"
    assert (
        "acceptance_rate.error_ratio <= 0.2" in journal["sagaquake"]["safeguard"]["fired"]["reason"]
    )


def test_the_journal_is_saved_in_the_run_folder_with_this_run_s_faults(tmp_path) -> None:
    run, journal = run_for(tmp_path)
    with FaultWindow(tmp_path, "payment-outage", "outage", "payment-service") as w:
        w.land(down=True)
    with FaultWindow(tmp_path, "another-experiment", "outage", "redis"):
        pass
    journal["status"] = "completed"
    run.finish(journal)
    saved = json.loads((tmp_path / "chaos" / "payment-outage.journal.json").read_text())
    assert saved["status"] == "completed"
    assert [f["target"] for f in saved["sagaquake"]["faults"]] == ["payment-service"]
    assert saved["sagaquake"]["compress"] == 24.0 and saved["sagaquake"]["platform"] == "local"


def test_chaos_validate_rejects_a_bad_safeguard_naming_the_control() -> None:
    control = {
        "name": "sagaquake",
        "provider": {"arguments": {"safeguard": {"limits": [{"probe": "x", "key": "k"}]}}},
    }
    with pytest.raises(
        InvalidControl, match=r"control 'sagaquake': safeguard limits\[0\].probe 'x'"
    ):
        validate_control(control)
    validate_control({"name": "sagaquake", "provider": {}})  # no safeguard: fine
