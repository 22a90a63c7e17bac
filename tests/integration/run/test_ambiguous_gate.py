"""The reason the ambiguous faults exist: a charge whose idempotency key changes on every attempt
(a one-line mistake) passes every clean fault, and `payment-lost-replies` must fail the gate by
`exactly_once_money`, naming an order the payment provider captured more than once. The mistake
is planted in a temporary copy of the system under test (the selftest machinery); the checkout
is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.selftest.case import Case, run_case
from harness.selftest.catalogue import MUTATIONS_DIR, load_catalogue, select
from harness.selftest.mutate import sha256
from harness.selftest.runner import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]

ACTIVITIES = ROOT / "system_under_test" / "saga" / "activities.py"


@pytest.mark.timeout(900)
def test_a_charge_key_per_attempt_fails_the_gate_on_lost_replies(tmp_path: Path) -> None:
    before = sha256(ACTIVITIES)
    (mutation,) = select(
        load_catalogue(ROOT / MUTATIONS_DIR, ROOT), ["charge-key-per-attempt"], False
    )
    assert mutation.suite.stem == "payment-lost-replies"
    result = run_case(Case(mutation.name, "mutation", mutation.suite, mutation), ROOT, tmp_path)
    assert sha256(ACTIVITIES) == before
    assert result.outcome == "caught", (result.detail, result.failed)
    run_dir = Path(str(result.run_dir))
    verdict = json.loads((run_dir / "verdict.json").read_text())
    money = next(i for i in verdict["invariants"] if i["name"] == "exactly_once_money")
    assert money["status"] == "fail"
    doubled = [
        c for c in money["counterexamples"] if "captured" in c["why"] and "times" in c["why"]
    ]
    assert doubled, money["counterexamples"][:3]
    example = doubled[0]
    captures = [p for p in example["payments"] if p["fields"]["kind"] == "capture"]
    assert len(captures) >= 2  # the counter-example carries the provider's own entries
    keys = {p["fields"]["idempotency_key"] for p in captures}
    assert len(keys) == len(captures), "each capture came from an attempt with its own key"
    assert all(p["fields"]["order_id"] == example["order_id"] for p in captures)
    gate = json.loads((run_dir / "gate.json").read_text())
    assert gate["status"] == "fail" and gate["verdict"] == "fail"
    double = next(t for t in gate["thresholds"] if t["name"] == "double_charges")
    assert double["ok"] is False and double["value"] >= 1
    windows = [json.loads(line) for line in (run_dir / "history" / "faults.jsonl").open()]
    lost = next(w for w in windows if w["action"] == "lose_replies")
    assert lost["landed"] is True and lost["evidence"]["unheard"]["count"] >= 1
