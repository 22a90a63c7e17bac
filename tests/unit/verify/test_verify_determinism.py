"""no_nondeterminism and replays_deterministically on crafted histories (each saga's Temporal
history is a real recorded one of tests/data/histories), and against a copy of the system whose
version 2 is deployed without its patch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.verify import verify_run
from harness.verify.determinism import no_nondeterminism, replays_deterministically
from harness.verify.reader import load_snapshot
from tests.unit.verify.builders import HistoryBuilder, example

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[3]
PATCHED = "    return workflow.patched(patch_id)\n"
# The mistake: version 2's step decided by the worker's setting instead of the saga's history.
UNPATCHED = "    return True  # version 2: the fraud check for every saga\n"


def _builder() -> HistoryBuilder:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    b.out_of_stock()
    b.refunded()
    return b


def unpatched_copy(tmp_path: Path) -> Path:
    """A copy of system_under_test whose fraud check is not behind its patch."""
    shutil.copytree(ROOT / "system_under_test", tmp_path / "system_under_test")
    workflows = tmp_path / "system_under_test" / "saga" / "workflows.py"
    text = workflows.read_text()
    assert text.count(PATCHED) == 1
    workflows.write_text(text.replace(PATCHED, UNPATCHED))
    return tmp_path


def test_clean_histories_pass_both() -> None:
    h = _builder().history()
    result = no_nondeterminism(h)
    assert result.status == "pass", result.counterexamples
    assert result.counts["runs"] == 4 and result.counts["runs_with_failed_tasks"] == 0
    replayed = replays_deterministically(h)
    assert replayed.status == "pass", replayed.counterexamples
    assert replayed.counts == {"checked": 4, "violations": 0, "histories": 4, "replayed": 4}
    assert replayed.metrics["workflow_types"] == ["OrderSaga", "ReprocessOrders"]


def test_a_saga_that_hit_nondeterminism_is_named_with_the_message() -> None:
    b = _builder()
    stuck = b.in_flight()
    b.task_failed(stuck.order_id)
    b.task_failed(stuck.order_id)  # retried, failed again
    finished = b.completed()
    b.task_failed(finished.order_id, message="[TMPRL1100] Nondeterminism error: timer")
    result = no_nondeterminism(b.history())
    assert result.status == "fail"
    assert result.counts["violations"] == 2
    item = example(result, stuck.order_id)
    assert item["why"].startswith(
        "workflow task failed with non-determinism 2x and the saga is stuck Running "
        "(worker 4242@host saga-v2): [TMPRL1100] Nondeterminism error: Activity type of "
        "recorded marker 'capture_payment'"
    )
    (first, _) = item["workflow_task_failures"]
    assert first["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR"
    assert item["workflow_runs"][0]["status"] == "RUNNING"
    assert [e["fields"]["type"] for e in item["events"]][:2] == ["OrderPlaced", "InventoryReserved"]
    assert result.worst is not None and result.worst["order_id"] == stuck.order_id
    assert "timer" in example(result, finished.order_id)["why"]


def test_other_task_failures_are_counted_not_violations() -> None:
    b = _builder()
    order = b.completed()
    b.task_failed(
        order.order_id,
        message="unhandled command",
        cause="WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND",
    )
    result = no_nondeterminism(b.history())
    assert result.status == "pass"
    assert result.counts["other_task_failures"] == 1
    assert "1 workflow task(s) failed for another cause" in result.notes[0]


def test_without_histories_both_are_unknown(tmp_path) -> None:
    h = _builder().history(omit=("histories",))
    for check in (no_nondeterminism, replays_deterministically):
        result = check(h)
        assert result.status == "unknown"
        assert result.error == "history/workflows.jsonl.gz is missing"
    run_dir = _builder().write(tmp_path / "run", omit=("histories",))
    assert load_snapshot(run_dir).missing["histories"] == "history/workflows.jsonl.gz is missing"


def test_a_run_without_its_history_makes_the_check_unknown() -> None:
    b = _builder()
    b.histories.pop()
    result = no_nondeterminism(b.history())
    assert result.status == "unknown"
    assert result.error.startswith("1 OrderSaga run(s) of temporal.jsonl have no history")


def test_the_snapshot_file_reads_as_the_records(tmp_path) -> None:
    b = _builder()
    order = b.completed()
    b.task_failed(order.order_id)
    h = load_snapshot(b.write(tmp_path / "run"))
    assert isinstance(h.histories, Path) and h.histories.name == "workflows.jsonl.gz"
    from_file, in_memory = no_nondeterminism(h), no_nondeterminism(b.history())
    assert from_file.to_dict() == in_memory.to_dict()
    assert from_file.counts["violations"] == 1


def test_an_unpatched_version_2_does_not_replay_version_1_histories(tmp_path) -> None:
    h = _builder().history()
    result = replays_deterministically(h, replay_against=str(unpatched_copy(tmp_path)))
    assert result.status == "fail"
    # the out-of-stock saga never reaches the charge: it replays on both
    assert result.counts["violations"] == 3
    item = result.counterexamples[0]
    assert item["why"].startswith(f"does not replay on {tmp_path}: NondeterminismError: ")
    assert "[TMPRL1100]" in item["why"]
    assert item["workflow_runs"] and item["events"]


def test_a_workflow_that_blocks_fails_as_the_sdks_deadlock_detector_says(tmp_path) -> None:
    """The child replays inline (no deadlock detection of the SDK's); a history slower than its
    watchdog's limit is replayed again threaded, so the verdict is the SDK's own."""
    shutil.copytree(ROOT / "system_under_test", tmp_path / "system_under_test")
    workflows = tmp_path / "system_under_test" / "saga" / "workflows.py"
    text = workflows.read_text()
    assert text.count(PATCHED) == 1
    workflows.write_text(text.replace(PATCHED, "    __import__('time').sleep(2.5)\n" + PATCHED))
    b = HistoryBuilder()
    b.completed()
    result = replays_deterministically(b.history(), replay_against=str(tmp_path))
    assert result.status == "fail"
    (item,) = result.counterexamples
    assert "[TMPRL1101] Potential deadlock detected" in item["why"], item["why"]


def test_a_workflow_type_the_code_lacks_does_not_replay() -> None:
    b = _builder()
    b.histories.append({**b.histories[0], "workflow_id": "reprocess-1", "workflow_type": "Mystery"})
    result = replays_deterministically(b.history())
    assert result.status == "fail"
    (item,) = result.counterexamples
    assert item["workflow_id"] == "reprocess-1" and "order_id" not in item
    assert item["why"].endswith("NotRegistered: the code has no workflow of this type")


def test_replay_against_a_git_ref_and_bad_targets(tmp_path) -> None:
    h = _builder().history()
    result = replays_deterministically(h, replay_against="HEAD")
    assert result.status == "pass", result.counterexamples
    assert result.metrics["code"].startswith("ref HEAD (")
    run_dir = _builder().write(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"--replay-against 'no-such-ref-xyz' is neither a folder nor a git ref"):  # fmt: skip
        verify_run(run_dir, replay_against="no-such-ref-xyz")
    with pytest.raises(ConfigError, match=r"has no system_under_test/ package"):
        verify_run(run_dir, replay_against=str(tmp_path))


def test_sagaquake_verify_replays_against_a_ref(tmp_path, capsys) -> None:
    from harness.cli import main

    run_dir = _builder().write(tmp_path / "run")
    assert main(["verify", str(run_dir), "--replay-against", "HEAD"]) == 0
    assert "replays_deterministically" in capsys.readouterr().out
    assert main(["verify", str(run_dir), "--replay-against", "no-such-ref-xyz"]) == 3
    assert "is neither a folder nor a git ref" in capsys.readouterr().err


def test_a_second_replay_child_only_for_enough_sagas(monkeypatch) -> None:
    from harness.verify import replay

    monkeypatch.delenv("SAGAQUAKE_VERIFY_WORKERS", raising=False)
    monkeypatch.setattr(replay.os, "cpu_count", lambda: 2)
    assert replay.replay_processes(400) == replay.replay_processes(1999) == 1
    assert replay.replay_processes(2000) == replay.replay_processes(None) == 2
    monkeypatch.setattr(replay.os, "cpu_count", lambda: 1)
    assert replay.replay_processes(30_000) == 1
    monkeypatch.setenv("SAGAQUAKE_VERIFY_WORKERS", "3")
    assert replay.replay_processes(10) == 3
