"""reprocessed_exactly_once on crafted run folders (and what the other checks say about price
corrections): every targeted order corrected once in money and events, none outside the range,
no correction nobody asked for, and the reprocess's continue-as-new chain whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verify.legal import legal_history
from harness.verify.money import exactly_once_money
from harness.verify.reader import load_snapshot
from harness.verify.readmodel import read_model_consistent
from harness.verify.reprocessing import reprocessed_exactly_once
from tests.unit.verify.builders import EVENTS, PAYMENTS, HistoryBuilder, example

pytestmark = pytest.mark.unit


def _day() -> tuple[HistoryBuilder, list, list]:
    """Two orders completed before the range, four in it (one cancelled among them)."""
    b = HistoryBuilder()
    before = [b.completed(amount_cents=1000), b.completed(amount_cents=3000)]
    inside = [b.completed(amount_cents=2599), b.completed(amount_cents=19)]
    b.declined(amount_cents=5000)
    inside.append(b.completed(amount_cents=4000))
    return b, before, inside


def _first_event_of(b: HistoryBuilder, order_id: str) -> str:
    return next(sid for sid, f in b.streams[EVENTS] if f["order_id"] == order_id)


def _check(b: HistoryBuilder, tmp_path: Path):  # type: ignore[no-untyped-def]
    h = load_snapshot(b.write(tmp_path / "run"), workers=1)
    return h, reprocessed_exactly_once(h)


def test_a_correct_reprocess_passes_every_check(tmp_path) -> None:
    b, _, inside = _day()
    b.reprocess("c1", percent_bp=500, from_=_first_event_of(b, inside[0].order_id), runs=3)
    b.tick(1)
    late = b.completed(amount_cents=8000)  # completed after the request: not targeted
    h, result = _check(b, tmp_path)
    assert result.status == "pass", result.counterexamples
    # 2599 -> 129 cents, 19 -> 0 (not affected), 4000 -> 200
    assert result.counts == {
        "checked": 2, "violations": 0, "requests": 1, "targeted": 2,
        "price_corrected_events": 2, "adjustments": 2, "runs": 3,
    }  # fmt: skip
    for check in (exactly_once_money, legal_history, read_model_consistent):
        assert check(h).status == "pass", (check, check(h).counterexamples)
    assert late.order_id not in {
        f["order_id"] for _, f in b.streams[PAYMENTS] if f["kind"] == "adjustment"
    }


def test_a_double_correction_is_named(tmp_path) -> None:
    b, _, inside = _day()
    b.reprocess("c1", percent_bp=500, from_=_first_event_of(b, inside[0].order_id))
    b.correct(inside[2], "c1", 200)  # the batch retried by a worker that forgot it was done
    h, result = _check(b, tmp_path)
    assert result.status == "fail"
    item = example(result, inside[2].order_id)
    assert item["why"] == "corrected 2 time(s) in events and 2 time(s) in payments:ledger by 'c1'"
    assert [p["fields"]["kind"] for p in item["payments"]].count("adjustment") == 2
    assert item["correction_id"] == "c1"
    money = exactly_once_money(h)
    assert (
        money.status == "pass"
    )  # the ledger and the events agree: the rule of the request catches it


def test_a_missed_order_and_a_wrong_amount_are_named(tmp_path) -> None:
    b, _, inside = _day()
    b.reprocess("c1", percent_bp=500, from_=_first_event_of(b, inside[0].order_id))
    dropped = b.drop(
        EVENTS, lambda f: f["order_id"] == inside[0].order_id and f["type"] == "PriceCorrected"
    )
    dropped += b.drop(
        PAYMENTS, lambda f: f["order_id"] == inside[0].order_id and f["kind"] == "adjustment"
    )
    assert dropped == 2
    for _, fields in b.streams[PAYMENTS]:
        if fields["order_id"] == inside[2].order_id and fields["kind"] == "adjustment":
            fields["amount_cents"] = "2000"
    h, result = _check(b, tmp_path)
    assert result.counts["violations"] == 2
    assert (
        example(result, inside[0].order_id)["why"]
        == "targeted by 'c1' (129 cents due) but never corrected"
    )
    assert example(result, inside[2].order_id)["why"] == (
        "'c1' refunded 2000 cents (event says 200) where 200 were due"
    )
    wrong = example(exactly_once_money(h), inside[2].order_id)
    assert (
        wrong["why"]
        == "price corrections of 2000 cents in payments:ledger, but PriceCorrected events of 200"
    )


def test_orders_outside_the_range_and_unrequested_corrections_are_named(tmp_path) -> None:
    b, before, inside = _day()
    b.reprocess("c1", percent_bp=500, from_=_first_event_of(b, inside[0].order_id))
    b.correct(before[0], "c1", 50)  # the scan started too early
    b.correct(before[1], "c9", 150)  # a correction nobody asked for
    _, result = _check(b, tmp_path)
    assert example(result, before[0].order_id)["why"] == (
        "corrected by 'c1' (1 event(s), 1 adjustment(s)) but not in its range"
    )
    assert example(result, before[1].order_id)["why"] == (
        "a PriceCorrected event of correction 'c9', which nobody requested"
    )


def test_a_broken_or_unfinished_chain_is_named(tmp_path) -> None:
    b, _, inside = _day()
    request = b.reprocess("c1", from_=_first_event_of(b, inside[0].order_id), runs=3)
    b.histories = [r for r in b.histories if r["run_id"] != f"{request['workflow_id']}-run-1"]
    _, result = _check(b, tmp_path)
    (item,) = result.counterexamples
    assert item["workflow_id"] == "reprocess-c1"
    assert item["why"] == (
        "run reprocess-c1-run-0 continued as new into reprocess-c1-run-1, which has no history"
    )
    b2, _, inside2 = _day()
    b2.reprocess(
        "c2", from_=_first_event_of(b2, inside2[0].order_id), runs=2, last_status="RUNNING"
    )
    _, result2 = _check(b2, tmp_path / "two")
    assert result2.counterexamples[0]["why"] == (
        "the chain's last run (reprocess-c2-run-1) is RUNNING, not COMPLETED"
    )


def test_without_a_request_file_corrections_are_unrequested(tmp_path) -> None:
    b, _, inside = _day()
    b.correct(inside[0], "c1", 129)
    _, result = _check(b, tmp_path)
    assert result.status == "fail"
    assert result.counts["requests"] == 0
    # in memory, without a run folder, nothing says what was requested
    assert reprocessed_exactly_once(b.history()).status == "unknown"


def test_a_correction_after_a_cancellation_is_illegal(tmp_path) -> None:
    b = HistoryBuilder()
    order = b.declined()
    b.correct(order, "c1", 10)
    item = example(legal_history(b.history()), order.order_id)
    assert "PriceCorrected" in item["why"]
