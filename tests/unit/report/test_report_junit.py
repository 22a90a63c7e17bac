"""junit.xml: one test case per invariant and per threshold; unknown is an error."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.report import render_report

pytestmark = pytest.mark.unit


def _suites(path):
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root, {s.get("name"): s for s in root.findall("testsuite")}


def test_one_case_per_invariant_and_threshold(rendered):
    run_folder, paths = rendered
    root, suites = _suites(paths.junit)
    invariants = {c.get("name"): c for c in suites["invariants"].findall("testcase")}
    thresholds = {c.get("name"): c for c in suites["thresholds"].findall("testcase")}
    assert set(invariants) == {
        "no_lost_order",
        "no_phantom_order",
        "exactly_once_money",
        "inventory_conservation",
        "legal_history",
        "one_confirmation",
        "temporal_agrees",
    }
    assert set(thresholds) == {"p99_time_to_terminal_s", "max_recovery_time_s", "client_error_rate"}

    failure = invariants["no_lost_order"].find("failure")
    assert failure is not None
    assert failure.get("message").startswith("violated by 3 orders: ")
    for order_id in run_folder.lost + run_folder.stuck:
        assert order_id in failure.get("message")
    error = invariants["temporal_agrees"].find("error")
    assert error is not None and error.get("message").startswith("could not check: ")
    assert invariants["legal_history"].find("failure") is None
    assert invariants["legal_history"].find("error") is None

    assert thresholds["max_recovery_time_s"].find("failure").get("message") == (
        "max_recovery_time_s = 14.2, needs < 12"
    )
    assert list(thresholds["client_error_rate"]) == []

    assert suites["invariants"].get("tests") == "7"
    assert suites["invariants"].get("failures") == "1"
    assert suites["invariants"].get("errors") == "1"
    assert root.get("tests") == "10" and root.get("failures") == "2" and root.get("errors") == "1"
    assert "run" not in suites


def test_no_verdict_is_an_error_not_a_green_build(make_run_folder):
    layout = make_run_folder(verdict=False, incomplete=True)
    root, suites = _suites(render_report(layout.run_dir).junit)
    (case,) = suites["invariants"].findall("testcase")
    assert case.get("name") == "verdict"
    assert case.find("error").get("message") == "no verdict.json in the run folder"
    assert suites["thresholds"].findall("testcase") == []
    assert suites["run"].find("testcase/error").get("type") == "RunIncomplete"
    assert root.get("errors") == "2"


def test_an_experiment_the_gate_says_did_not_complete_fails_the_build(run_folder):
    import json

    from harness.report.data import load_run
    from harness.report.headline import FAIL, headline

    path = run_folder.run_dir / "gate.json"
    gate = json.loads(path.read_text())
    gate["failed_experiments"] = ["payment-hang"]
    path.write_text(json.dumps(gate))
    paths = render_report(run_folder.run_dir)
    _, suites = _suites(paths.junit)
    [case] = suites["experiments"].findall("testcase")
    assert case.get("name") == "payment-hang"
    assert case.find("failure").get("type") == "ExperimentFailed"
    line = headline(load_run(run_folder.run_dir))
    assert line.status == FAIL and "experiment payment-hang did not complete" in line.line


def test_a_run_only_verified_has_no_experiments_suite(run_folder):
    (run_folder.run_dir / "gate.json").unlink()
    paths = render_report(run_folder.run_dir)
    _, suites = _suites(paths.junit)
    assert "experiments" not in suites
    assert suites["thresholds"].findall("testcase") == []  # the verifier set no limits
