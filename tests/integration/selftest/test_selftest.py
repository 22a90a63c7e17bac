"""`sagaquake selftest` end to end: one fast mutation and the unmutated control, each a real run
of the plain self-test suite from a copy of the project. The mutation is caught by the invariant
its file names, the control passes, the services provably ran the copy, the checkout is left as
it was and no process of either stack is left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.platforms.stackstate import marked_processes
from harness.selftest.mutate import sha256
from harness.selftest.runner import ROOT
from harness.settings import isolated_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.nightly]

MUTATION = "complete-after-decline"
MUTATED = ROOT / "system_under_test" / "saga" / "activities.py"


@pytest.mark.timeout(1200)
def test_a_fast_mutation_is_caught_and_the_control_passes(tmp_path: Path) -> None:
    before = sha256(MUTATED)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "selftest", "--only", MUTATION],
        env=isolated_env(tmp_path), capture_output=True, text=True, timeout=1100,
    )  # fmt: skip
    output = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, output
    assert "selftest: PASS (1/1 caught)" in done.stdout

    assert sha256(MUTATED) == before  # the checkout is never modified
    [folder] = (tmp_path / "reports").glob("selftest-*")
    results = json.loads((folder / "selftest.json").read_text())
    cases = {c["name"]: c for c in results["cases"]}
    assert list(cases) == ["control-plain", MUTATION]
    assert cases["control-plain"]["outcome"] == "passed"
    caught = cases[MUTATION]
    assert caught["outcome"] == "caught", caught

    # the verdict of the mutated run names the expected invariant, with counter-examples
    verdict = json.loads((Path(caught["run_dir"]) / "verdict.json").read_text())
    by_name = {inv["name"]: inv for inv in verdict["invariants"]}
    assert by_name["exactly_once_money"]["status"] == "fail"
    assert by_name["exactly_once_money"]["counterexamples"]

    # the mutated file differs in the copy, and the running services imported exactly it
    evidence = caught["evidence"]
    assert evidence["applied"]["changed"] and evidence["applied"]["sha256_before"] == before
    proof = evidence["proof"]
    assert proof["checked"] and proof["ok"], proof
    for probe in proof["probes"]:
        assert probe["in_copy"] and probe["origin"].endswith("system_under_test/saga/activities.py")
        assert probe["sha256"] == evidence["applied"]["sha256_after"]
    assert any("system_under_test.saga.worker" in s for p in proof["probes"] for s in p["services"])
    assert not Path(evidence["copy"]).exists()  # the copy is removed afterwards

    for case in results["cases"]:
        for stack_id in case["evidence"]["stacks"]:
            assert marked_processes(stack_id) == [], case["name"]

    junit = ET.parse(folder / "junit.xml").getroot().find("testsuite")
    assert junit is not None and junit.get("tests") == "2" and junit.get("failures") == "0"
