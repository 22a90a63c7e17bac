"""Composing results into a verdict: fail beats unknown beats pass, verdict.json, exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from rich.console import Console

from harness.errors import ConfigError
from harness.verify import (
    check_all,
    exit_code,
    read_verdict,
    render_summary,
    verify_history,
    verify_run,
    write_verdict,
)
from harness.verify.history import History
from harness.verify.invariants import INVARIANTS
from harness.verify.results import InvariantResult, invariant
from harness.verify.verdict import Verdict, compose
from tests.unit.verify.builders import HistoryBuilder

pytestmark = pytest.mark.unit


@invariant("always_crashes", "A check with a bug")
def _crashing(h: History) -> InvariantResult:
    raise RuntimeError("boom")


def _failing_run() -> HistoryBuilder:
    b = HistoryBuilder()
    b.completed()
    lost = b.new_order()
    b.request(lost)
    return b


def test_a_crashing_check_is_unknown_never_a_pass() -> None:
    h = HistoryBuilder().history()
    [result] = check_all(h, checks=(_crashing,))
    assert result.name == "always_crashes"
    assert result.status == "unknown"
    assert result.error == "the check crashed: RuntimeError: boom"
    assert any("RuntimeError: boom" in line for line in result.notes)
    passing = InvariantResult("ok", "Ok", "pass")
    verdict = compose([passing, result])
    assert verdict.ok == "unknown"
    assert exit_code(verdict) == 2


def test_fail_beats_unknown_beats_pass() -> None:
    passed = InvariantResult("a", "A", "pass")
    unknown = InvariantResult("b", "B", "unknown", error="no file")
    failed = InvariantResult("c", "C", "fail")
    assert compose([passed, passed]).ok is True
    assert compose([passed, unknown]).ok == "unknown"
    assert compose([unknown, failed, passed]).ok is False
    assert compose([]).ok == "unknown"
    assert [exit_code(compose(r)) for r in ([passed], [failed], [unknown])] == [0, 1, 2]


def test_every_invariant_is_checked_in_order() -> None:
    verdict = verify_history(_failing_run().history())
    names = [r.name for r in verdict.invariants]
    assert names == [c.invariant_name for c in INVARIANTS]
    assert names[:2] == ["no_lost_order", "no_phantom_order"]
    assert verdict.ok is False
    assert exit_code(verdict) == 1


def test_verdict_json_round_trips(tmp_path: Path) -> None:
    b = _failing_run()
    b.fault(b.t0, b.t0 + 0.05)
    verdict = verify_history(b.history(), thresholds={"p99_time_to_terminal_s": 30})
    path = write_verdict(tmp_path, verdict)
    assert path == tmp_path / "verdict.json"
    data = orjson.loads(path.read_bytes())
    assert data["ok"] is False
    assert set(data) >= {"ok", "incomplete", "checked_at", "source", "counts", "invariants"}
    assert set(data) >= {"metrics", "thresholds"}
    lost = data["invariants"][0]
    assert lost["name"] == "no_lost_order"
    assert lost["status"] == "fail"
    assert lost["counts"] == {
        "checked": 2,
        "violations": 1,
        "accepted": 2,
        "not_placed": 1,
        "not_terminal": 0,
        "not_compensated": 0,
        "late": 0,
    }
    assert lost["first"]["why"] == "client told accepted; no OrderPlaced in orders:events"
    assert lost["first"] == lost["worst"] == lost["counterexamples"][0]
    assert data["metrics"]["time_to_terminal_s"]["count"] == 1
    assert data["metrics"]["recovery"][0]["fault"] == 0
    assert data["thresholds"][0]["name"] == "p99_time_to_terminal_s"
    again = read_verdict(tmp_path)
    assert again.to_dict() == verdict.to_dict()
    assert Verdict.from_json(verdict.to_json()).to_dict() == data


def test_the_summary_names_the_failure() -> None:
    verdict = verify_history(_failing_run().history())
    console = Console(record=True, width=200)
    render_summary(verdict, console)
    text = console.export_text()
    assert "verdict: FAIL (no_lost_order)" in text
    assert "client told accepted; no OrderPlaced in orders:events" in text
    assert "✓ pass" in text


def test_verify_run_checks_its_arguments_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        verify_run(tmp_path / "nope")
    assert str(err.value) == (
        f"no run folder at '{tmp_path / 'nope'}': pass a folder under reports/ (e.g. reports/latest)"
    )
    with pytest.raises(ConfigError, match="is not a run folder"):
        verify_run(tmp_path)
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        verify_run(tmp_path, thresholds={"p42": 1})
    assert str(err.value).startswith("unknown threshold 'p42'")


def test_an_incomplete_run_is_marked() -> None:
    b = HistoryBuilder()
    b.completed()
    b.run["incomplete"] = True
    verdict = verify_history(b.history())
    assert verdict.incomplete is True
    assert verdict.ok is True


def test_a_run_json_that_is_not_an_object_is_missing_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("[1, 2]")
    (tmp_path / "history").mkdir()
    verdict = verify_run(tmp_path)
    assert verdict.ok == "unknown"
    assert "run.json is not a JSON object" in orjson.dumps(verdict.to_dict()).decode()
