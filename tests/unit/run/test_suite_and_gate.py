"""Suites are checked before anything starts; the gate fails on a broken threshold or on
anything it could not measure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.run.gate import (
    GateResult,
    decide,
    evaluate,
    metrics_from,
    parse_threshold,
    read_gate,
    write_gate,
)
from harness.run.suite import load_suite

pytestmark = pytest.mark.unit

GOOD = """
name: tiny
profile: flat
compress: 24
duration: 2m
warmup: 10s
experiments:
  - experiment: EXP
    at: 30s
    configuration: {kill_count: 1}
drain: {deadline: 90s}
thresholds:
  lost_orders: "== 0"
  p99_time_to_terminal_s: "< 30"
  availability: ">= 0.95"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "exp.yaml").write_text("title: x\n")
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text).replace("EXP", "exp.yaml"))
    return path


def test_a_good_suite_reads_into_seconds_and_thresholds(tmp_path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    assert (suite.duration_s, suite.warmup_s, suite.drain_deadline_s) == (120.0, 10.0, 90.0)
    assert [(e.name, e.at_s, e.configuration) for e in suite.experiments] == [
        ("exp", 30.0, {"kill_count": 1})
    ]
    assert [t.spec for t in suite.thresholds] == [
        "lost_orders == 0",
        "p99_time_to_terminal_s < 30",
        "availability >= 0.95",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("duration: 2m", "duration: soon"),
            "key 'duration': expected a duration like 90s, 10m, 1h30m or 250ms, got 'soon'",
        ),
        (("warmup: 10s", "warmpu: 10s"), "unknown key 'warmpu'"),
        (("profile: flat\n", ""), "key 'profile' is missing"),
        (
            ("experiment: EXP", "experiment: nope.yaml"),
            "experiments[0].experiment: no experiment 'nope.yaml'",
        ),
        (("at: 30s", "at: 3h"), "starts at 10800 s, after the load ends (120 s)"),
        (("lost_orders", "lost_ordres"), "thresholds.lost_ordres: unknown metric 'lost_ordres'"),
        (('"== 0"', '"zero"'), "expected a condition like '< 30' or '== 0', got 'zero'"),
        (("compress: 24", "compress: 0"), "key 'compress': expected a number of 1 or more, got 0"),
        (
            ("drain: {deadline: 90s}", "drain: 90s"),
            "key 'drain': expected a mapping with 'deadline'",
        ),
    ],
)
def test_a_malformed_suite_names_the_file_and_key(tmp_path, change, message) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_not_yaml_and_unknown_suite_names() -> None:
    with pytest.raises(ConfigError, match="no suite 'nightly-ish'"):
        load_suite("nightly-ish")


VERDICT = {
    "invariants": [
        {"name": "no_lost_order", "status": "fail", "counts": {"violations": 2}},
        {"name": "exactly_once_money", "status": "pass", "counts": {"violations": 0}},
        {"name": "read_model_consistent", "status": "unknown", "counts": {}},
    ],
    "metrics": {
        "time_to_terminal_s": {"p50": 1.0, "p90": 2.0, "p99": 12.5, "max": 40.0},
        "recovery": [{"fault": 0, "recovery_time_s": 3.0}, {"fault": 1, "recovery_time_s": 9.0}],
    },
    "counts": {"orders_completed": 950},
}
LOAD = {
    "orders": 1000,
    "final_outcomes": {"ok": 990, "unknown": 10},
    "achieved_rate": 9.5,
    "plan": {"target_rate": 10.0},
}


def test_metrics_from_a_verdict_and_a_ledger() -> None:
    m = metrics_from(VERDICT, LOAD)
    assert m["lost_orders"] == 2 and m["double_charges"] == 0
    assert m["read_model_mismatches"] is None and m["unknown_invariants"] == 1
    assert m["p99_time_to_terminal_s"] == 12.5 and m["recovery_time_s"] == 9.0
    assert m["availability"] == pytest.approx(0.99) and m["achieved_rate_ratio"] == pytest.approx(
        0.95
    )


def test_the_gate_fails_a_broken_threshold_and_anything_unmeasured() -> None:
    m = metrics_from(VERDICT, LOAD)
    specs = {
        "lost_orders": "== 0",
        "double_charges": "== 0",
        "p99_time_to_terminal_s": "< 30",
        "read_model_mismatches": "== 0",
        "availability": ">= 0.995",
    }
    results = {
        r.threshold.metric: r
        for r in evaluate([parse_threshold(k, v, "t") for k, v in specs.items()], m)
    }
    assert not results["lost_orders"].ok and results["lost_orders"].value == 2
    assert results["double_charges"].ok and results["p99_time_to_terminal_s"].ok
    assert (
        not results["read_model_mismatches"].ok and results["read_model_mismatches"].value is None
    )
    assert not results["availability"].ok


def test_a_fault_never_recovered_from_fails_any_recovery_limit() -> None:
    verdict = {**VERDICT, "metrics": {"recovery": [{"fault": 0, "recovery_time_s": None}]}}
    [result] = evaluate(
        [parse_threshold("recovery_time_s", "< 600", "t")], metrics_from(verdict, LOAD)
    )
    assert not result.ok and result.value == float("inf")


@pytest.mark.parametrize(
    ("verdict", "thresholds_ok", "failed_experiments", "incomplete", "status"),
    [
        ("pass", True, [], False, "pass"),
        ("pass", False, [], False, "fail"),  # a missed threshold fails a proven run
        ("pass", True, ["payment-hang"], False, "fail"),  # so does an experiment that broke
        ("pass", True, [], True, "unknown"),  # an interrupted run proves nothing
        ("fail", True, [], True, "fail"),  # but a violation found in it is still a failure
        ("unknown", True, [], False, "unknown"),
        ("unknown", False, [], False, "unknown"),  # not proven stays unknown, not fail
    ],
)
def test_the_gate_decides_from_the_verdict_thresholds_experiments_and_completeness(
    verdict: str, thresholds_ok: bool, failed_experiments: list[str], incomplete: bool, status: str
) -> None:
    results = evaluate(
        [parse_threshold("lost_orders", "== 0", "t")],
        {"lost_orders": 0.0 if thresholds_ok else 1.0},
    )
    gate = decide(verdict, results, failed_experiments, incomplete, suite="smoke")
    assert gate.status == status
    assert gate.exit_code == {"pass": 0, "fail": 1, "unknown": 2}[status]
    assert gate.verdict == verdict and gate.suite == "smoke"
    assert [t["ok"] for t in gate.thresholds] == [thresholds_ok]
    assert len(gate.failed_thresholds) == (0 if thresholds_ok else 1)


def test_gate_json_is_written_beside_the_verdict_and_read_back(tmp_path: Path) -> None:
    assert read_gate(tmp_path) is None  # a run folder only `sagaquake verify` checked
    results = evaluate([parse_threshold("availability", ">= 0.99", "t")], {"availability": None})
    gate = decide("pass", results, ["redis-restart"], True, "load: boom", "default")
    write_gate(tmp_path, gate)
    back = read_gate(tmp_path)
    assert back == gate and isinstance(back, GateResult)
    assert back.thresholds[0]["value"] is None and back.problem == "load: boom"
    assert [p.name for p in tmp_path.iterdir()] == ["gate.json"]  # no temporary file left
