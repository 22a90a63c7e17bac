"""Caught means the gate failed *by an expected invariant* in a complete run; anything else that
fails is "failed otherwise", and a control passes only with the gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.run.gate import GateResult, write_gate
from harness.selftest.outcome import CaseResult, judge
from harness.selftest.report import exit_code, score, write_json, write_junit

pytestmark = pytest.mark.unit


def run_dir(tmp_path: Path, failing: dict[str, int], *, incomplete: bool = False,
            experiment: str | None = None, thresholds_ok: bool = True) -> Path:  # fmt: skip
    folder = tmp_path / "run"
    (folder / "chaos").mkdir(parents=True)
    invariants = [
        {"name": name, "status": "fail" if name in failing else "pass",
         "counts": {"violations": failing.get(name, 0)},
         "counterexamples": [{"order_id": "ord-1", "why": "two captures"}] if name in failing else []}
        for name in ("no_lost_order", "exactly_once_money", "legal_history")
    ]  # fmt: skip
    thresholds = [
        {"name": "availability", "spec": "availability >= 0.99", "ok": thresholds_ok, "value": 0.5}
    ]
    (folder / "verdict.json").write_text(json.dumps({"invariants": invariants}))
    status = "pass" if thresholds_ok and not failing else "fail"
    write_gate(folder, GateResult(status, int(status == "fail"), status, thresholds))
    (folder / "run.json").write_text(
        json.dumps({"incomplete": incomplete, "problem": "load: boom" if incomplete else None})
    )
    if experiment:
        (folder / "chaos" / f"{experiment}.journal.json").write_text(
            json.dumps({"status": "failed"})
        )
    return folder


def mutation(expect: list[str]) -> CaseResult:
    return CaseResult("m", "mutation", "t", "plain", expect=expect)


def test_caught_by_an_expected_invariant(tmp_path: Path) -> None:
    r = judge(mutation(["exactly_once_money"]), run_dir(tmp_path, {"exactly_once_money": 3}), 1)
    assert r.outcome == "caught" and r.ok and r.label == "yes"
    assert r.failed == ["exactly_once_money (3 violations)"]
    assert r.detail == "ord-1: two captures"


def test_a_gate_that_passes_misses_the_mutation(tmp_path: Path) -> None:
    r = judge(mutation(["exactly_once_money"]), run_dir(tmp_path, {}), 0)
    assert r.outcome == "missed" and not r.ok


def test_another_invariant_or_an_experiment_failing_is_not_a_catch(tmp_path: Path) -> None:
    folder = run_dir(tmp_path, {"legal_history": 2}, experiment="payment-hang", thresholds_ok=False)
    r = judge(mutation(["exactly_once_money"]), folder, 1)
    assert r.outcome == "failed otherwise" and not r.ok
    assert r.failed == [
        "legal_history (2 violations)",
        "experiment payment-hang failed",
        "threshold availability >= 0.99 (measured 0.5)",
    ]
    assert r.detail == "no expected invariant broke"


def test_an_incomplete_run_never_counts_as_caught(tmp_path: Path) -> None:
    folder = run_dir(tmp_path, {"exactly_once_money": 1}, incomplete=True)
    r = judge(mutation(["exactly_once_money"]), folder, 1)
    assert r.outcome == "failed otherwise" and r.detail == "the run did not complete"
    assert "run: load: boom" in r.failed


def test_no_verdict_is_an_error_and_no_exit_code_an_interruption(tmp_path: Path) -> None:
    assert judge(mutation(["no_lost_order"]), tmp_path, 3).outcome == "error"
    assert judge(mutation(["no_lost_order"]), None, 3).outcome == "error"
    assert judge(mutation(["no_lost_order"]), tmp_path, None).outcome == "interrupted"
    assert judge(mutation(["no_lost_order"]), tmp_path, 130).outcome == "interrupted"


def test_a_control_passes_only_with_the_gate(tmp_path: Path) -> None:
    control = CaseResult("control-plain", "control", "unmutated", "plain")
    assert judge(control, run_dir(tmp_path, {}), 0).outcome == "passed"
    alarm = judge(CaseResult("control-plain", "control", "unmutated", "plain"), tmp_path / "run", 1)
    assert alarm.outcome == "false alarm" and not alarm.ok


def results(*outcomes: tuple[str, str]) -> list[CaseResult]:
    found = []
    for kind, outcome in outcomes:
        r = CaseResult(f"{kind}-{outcome}", kind, "t", "plain", expect=["no_lost_order"])
        r.outcome = outcome
        found.append(r)
    return found


@pytest.mark.parametrize(
    ("outcomes", "control_skipped", "code"),
    [
        ((("control", "passed"), ("mutation", "caught")), False, 0),
        ((("control", "passed"), ("mutation", "missed")), False, 1),
        ((("control", "false alarm"), ("mutation", "caught")), False, 1),
        ((("control", "passed"), ("mutation", "failed otherwise")), False, 1),
        ((("control", "passed"), ("mutation", "caught"), ("mutation", "pending")), False, 2),
        ((("control", "passed"), ("mutation", "error")), False, 2),
        ((("mutation", "caught"),), True, 2),
        ((("control", "passed"), ("mutation", "interrupted")), False, 130),
    ],
)
def test_exit_code(outcomes: tuple[tuple[str, str], ...], control_skipped: bool, code: int) -> None:
    assert exit_code(results(*outcomes), control_skipped) == code


def test_score_counts_pending_apart() -> None:
    found = results(("control", "passed"), ("mutation", "caught"), ("mutation", "missed"),
                    ("mutation", "pending"))  # fmt: skip
    assert score(found) == {
        "caught": 1,
        "ran": 2,
        "pending": 1,
        "controls_passed": 1,
        "controls": 1,
    }


def test_junit_has_one_case_per_mutation_and_control(tmp_path: Path) -> None:
    found = results(("control", "passed"), ("mutation", "caught"), ("mutation", "missed"),
                    ("mutation", "pending"), ("mutation", "error"))  # fmt: skip
    root = ET.parse(write_junit(tmp_path / "junit.xml", found)).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5", "1", "1", "1",
    )  # fmt: skip
    classes = [c.get("classname") for c in suite.findall("testcase")]
    assert classes == ["selftest.control"] + ["selftest.mutation"] * 4
    payload = json.loads(write_json(tmp_path / "selftest.json", found, {"quick": True}).read_text())
    assert payload["quick"] is True and payload["score"]["caught"] == 1
    assert [c["outcome"] for c in payload["cases"]] == [
        "passed",
        "caught",
        "missed",
        "pending",
        "error",
    ]
