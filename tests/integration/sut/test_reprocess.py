"""ReprocessOrders against the real stack: a price correction of every order completed in a range
of orders:events, in batches, continuing as new, applied exactly once (a retried batch finds it
done, the same correction cannot run twice), nothing outside the range touched; and the
verifier agrees from a snapshot (reprocessed_exactly_once, exactly_once_money,
read_model_consistent, replays_deterministically)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.reprocess import read_requests, request_reprocess, wait_reprocess
from harness.verify import export_snapshot, verify_run
from system_under_test.reprocess.corrections import Corrections
from system_under_test.reprocess.models import (
    BatchResult,
    CompletedOrder,
    CorrectionBatch,
    refund_for,
)
from system_under_test.streams import connect
from tests.integration.orders import HAPPY, client, key_where, order_body, place, wait_terminal
from tests.integration.reprocessing import adopt_other_requests

pytestmark = pytest.mark.integration

CHECKED = (
    "reprocessed_exactly_once",
    "exactly_once_money",
    "legal_history",
    "read_model_consistent",
    "no_nondeterminism",
    "replays_deterministically",
)


def _after_last(stack) -> str:  # type: ignore[no-untyped-def]
    """The first stream id after the last entry of orders:events now (a range starting there
    holds only what comes next)."""
    last = client(stack.endpoints).xrevrange("orders:events", "+", "-", count=1)
    ms, _, seq = (str(last[0][0]) if last else "0-0").partition("-")
    return f"{ms}-{int(seq) + 1}"


def _completed(stack, n: int, amount: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        answer = place(
            stack.endpoints, order_body(f"SKU-01{i % 50:02d}", 1, amount), key_where(False)
        )
        ids.append(answer.json()["order_id"])
    for order_id in ids:
        assert wait_terminal(stack.endpoints, order_id, 90) == HAPPY
    return ids


def _corrected(stack, order_id: str, correction_id: str) -> tuple[list[dict], list[dict]]:  # type: ignore[no-untyped-def]
    r = client(stack.endpoints)
    events = [
        f for _, f in r.xrange("orders:events")
        if f["order_id"] == order_id and f["type"] == "PriceCorrected"
        and f.get("correction_id") == correction_id
    ]  # fmt: skip
    money = [
        f for _, f in r.xrange("payments:ledger")
        if f["order_id"] == order_id and f["kind"] == "adjustment"
        and f.get("correction_id") == correction_id
    ]  # fmt: skip
    return events, money


def test_a_correction_of_a_range_applies_once_per_completed_order(stack, tmp_path: Path) -> None:
    before = _completed(stack, 3, 10_000)  # outside the range
    start = _after_last(stack)
    inside = _completed(stack, 12, 2_599)
    run_dir = tmp_path / "run"
    cid = f"t{int(time.time())}"
    request = request_reprocess(
        stack.endpoints, run_dir, correction_id=cid, from_id=start,
        to_id="+", percent_bp=1_000, batch_size=5, batches_per_run=1,
    )  # fmt: skip
    assert request.workflow_id == f"reprocess-{cid}"
    assert read_requests(run_dir) == [request.as_dict()]
    status = wait_reprocess(stack.endpoints, request.workflow_id, 120)
    assert status["last_status"] == "COMPLETED", status
    assert status["runs"] >= 3, status  # 12+ orders in batches of 5, one batch per run
    assert [r["status"] for r in status["chain"]][:-1] == ["CONTINUED_AS_NEW"] * (
        status["runs"] - 1
    )
    totals = status["result"]["totals"]
    assert totals["corrected"] >= 12 and totals["runs"] == status["runs"]
    for order_id in inside:
        events, money = _corrected(stack, order_id, cid)
        assert len(events) == 1 and len(money) == 1, (order_id, events, money)
        assert (
            events[0]["refund_cents"] == money[0]["amount_cents"] == str(refund_for(2_599, 1_000))
        )
        assert events[0]["event_id"] == f"{order_id}:PriceCorrected:{cid}"
    for order_id in before:
        assert _corrected(stack, order_id, cid) == ([], [])

    # a batch retried after it was applied finds it done
    async def retry() -> BatchResult:
        r = connect(stack.endpoints.redis_url)
        try:
            batch = CorrectionBatch(cid, 1_000, [CompletedOrder(inside[0], 2_599, "0-0")])
            return await Corrections(r).correct(batch)
        finally:
            await r.aclose()

    again = asyncio.run(retry())
    assert (again.corrected, again.already) == (0, 1)
    assert len(_corrected(stack, inside[0], cid)[0]) == 1
    # the same correction twice is refused before anything is recorded
    with pytest.raises(ConfigError, match=rf"correction '{cid}' was already requested"):
        request_reprocess(stack.endpoints, run_dir, correction_id=cid)
    with pytest.raises(ConfigError, match=rf"correction '{cid}' already ran on this stack"):
        request_reprocess(stack.endpoints, tmp_path / "other", correction_id=cid)


def test_the_verifier_proves_the_correction_from_a_snapshot(stack, tmp_path: Path) -> None:
    """The session stack holds other tests' orders and corrections too: their requests are
    recorded here as well, and the verdict is read only for the checks a correction touches,
    which must hold over the whole stream."""
    start = _after_last(stack)
    _completed(stack, 6, 4_000)
    run_dir = tmp_path / "run"
    request = request_reprocess(
        stack.endpoints, run_dir, correction_id=f"v{int(time.time())}", from_id=start,
        percent_bp=250, batch_size=4, batches_per_run=1,
    )  # fmt: skip
    assert wait_reprocess(stack.endpoints, request.workflow_id, 120)["last_status"] == "COMPLETED"
    time.sleep(1.5)  # the projection applies the corrections
    e = stack.endpoints
    others = adopt_other_requests(run_dir, e.temporal_address, request.workflow_id)
    summary = export_snapshot(run_dir, e.redis_url, e.temporal_address)
    assert summary["errors"] == {} and summary["counts"]["histories"] > 0
    verdict = verify_run(run_dir)
    results = {r.name: r for r in verdict.invariants}
    for name in CHECKED:
        assert results[name].status == "pass", (name, results[name].error, results[name].first)
    reprocessed = results["reprocessed_exactly_once"]
    assert reprocessed.counts["requests"] == 1 + len(others)
    assert reprocessed.counts["targeted"] >= 6
    assert reprocessed.counts["runs"] >= 2
