"""The self-test suites and their experiments are valid before anything starts, short, and each is
used by a mutation (a suite or fault no mutation needs proves nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.orchestrator import check_suite
from harness.run.suite import load_suite
from harness.selftest.catalogue import load_catalogue
from harness.selftest.runner import ROOT

pytestmark = pytest.mark.unit

SUITES = sorted((ROOT / "scenarios" / "suites" / "selftest").glob("*.yaml"))


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_each_selftest_suite_is_valid_and_short(path: Path) -> None:
    suite = load_suite(path)
    check_suite(suite)  # the profile and every experiment file, with its configuration
    assert suite.warmup_s + suite.duration_s <= 120, "a self-test suite runs a minute or two"
    metrics = {t.metric for t in suite.thresholds}
    assert "unknown_invariants" in metrics and "lost_orders" in metrics


def test_every_selftest_suite_is_used_by_a_mutation() -> None:
    used = {m.suite for m in load_catalogue(ROOT / "scenarios" / "mutations", ROOT)}
    assert {p.relative_to(ROOT) for p in SUITES} <= used
