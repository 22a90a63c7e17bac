"""Why the rolling deploy exists: version 2 of the saga decided by the worker's setting instead
of behind `workflow.patched` (a one-line mistake) passes every run without a deploy, and a
rolling deploy under load must fail the gate by `no_nondeterminism`, naming an order whose saga's
workflow task failed with Temporal's non-determinism error, its message quoted. The mistake is
planted in a temporary copy of the system under test (the selftest machinery); the checkout is
never touched. The unmutated system passes the same suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.selftest.case import Case, run_case
from harness.selftest.catalogue import Mutation, Replacement
from harness.selftest.mutate import sha256
from harness.selftest.runner import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow, pytest.mark.nightly]

WORKFLOWS = ROOT / "system_under_test" / "saga" / "workflows.py"
SUITE = ROOT / "tests" / "data" / "suites" / "rolling-deploy.yaml"
UNPATCHED = Mutation(
    source=Path(__file__),
    name="version-2-without-patch",
    title="Version 2 of the saga decided by the worker's setting, not behind workflow.patched",
    incident="A fraud check added before the charge behind a feature flag instead of a patch.",
    file=Path("system_under_test/saga/workflows.py"),
    replacements=(
        Replacement(
            "    from system_under_test.saga.activities import SagaActivities\n",
            "    from system_under_test.config import settings\n"
            "    from system_under_test.saga.activities import SagaActivities\n",
        ),
        Replacement(
            "    return workflow.patched(patch_id)\n",
            "    return patch_id in patches_for(settings().saga_version)  # the flag, not history\n",
        ),
    ),
    suite=SUITE,
    expect=("no_nondeterminism",),
)


def _verdict(run_dir: Path) -> dict:
    return dict(json.loads((run_dir / "verdict.json").read_text()))


def _deploys(run_dir: Path) -> list[dict]:
    lines = (run_dir / "history" / "faults.jsonl").read_text().splitlines()
    return [w for w in map(json.loads, lines) if w["action"] == "rolling_deploy"]


@pytest.mark.timeout(1200)
def test_an_unpatched_version_2_fails_the_gate_by_no_nondeterminism(tmp_path: Path) -> None:
    before = sha256(WORKFLOWS)
    result = run_case(Case(UNPATCHED.name, "mutation", SUITE, UNPATCHED), ROOT, tmp_path)
    assert sha256(WORKFLOWS) == before
    assert result.outcome == "caught", (result.detail, result.failed)
    run_dir = Path(str(result.run_dir))
    verdict = _verdict(run_dir)
    nde = next(i for i in verdict["invariants"] if i["name"] == "no_nondeterminism")
    assert nde["status"] == "fail" and nde["counts"]["violations"] >= 1
    example = nde["counterexamples"][0]
    assert example["order_id"].startswith("ord-")
    assert "[TMPRL1100] Nondeterminism error" in example["why"]
    failure = example["workflow_task_failures"][0]
    assert failure["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR"
    assert "saga-v" in failure["identity"]
    # the deploy itself landed: both switches, each replica a new process on the new version
    assert [(w["evidence"]["version"], w["landed"]) for w in _deploys(run_dir)][:1] == [(2, True)]
    print(f"caught: {nde['counts']['violations']} sagas, first: {example['why'][:200]}")


@pytest.mark.timeout(1200)
def test_the_patched_saga_passes_the_same_deploy(tmp_path: Path) -> None:
    result = run_case(Case("control", "control", SUITE), ROOT, tmp_path)
    assert result.outcome == "passed", (result.detail, result.failed)
    run_dir = Path(str(result.run_dir))
    verdict = _verdict(run_dir)
    assert verdict["ok"] is True
    deploys = _deploys(run_dir)
    assert [(w["evidence"]["version"], w["landed"]) for w in deploys] == [(2, True), (1, True)]
    assert all(w["evidence"]["nondeterminism"] == 0 for w in deploys)
    replay = next(i for i in verdict["invariants"] if i["name"] == "replays_deterministically")
    assert replay["counts"]["replayed"] == replay["counts"]["histories"] > 0
    print("control:", [w["evidence"].get("ran_on") for w in deploys])
