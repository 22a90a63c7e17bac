"""Locust against the local stack: the open-model rate is reached and the client ledger is complete.

Uses the session fixture `stack` (tests/conftest.py): `.endpoints` (harness.platforms.base.Endpoints)
and `.run_dir` (the stack's run folder); each test loads into a folder of its own beneath it.
"""

from __future__ import annotations

import csv
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness.load.ledger import OUTCOMES
from harness.load.profile_loader import PROFILES_DIR
from harness.load.runner import LoadResult, run_load
from harness.runs import RunFolder, read_jsonl
from system_under_test.ids import order_id_for
from tests.integration.orders import client, wait_terminal

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE_TOLERANCE = 0.10


ORDER_REQUESTS = ("POST /orders", "POST /orders (retry)")  # not the impatient customers' looks


def _locust_request_count(run_dir: Path, names: tuple[str, ...] = ORDER_REQUESTS) -> int:
    with open(run_dir / "locust" / "stats_stats.csv", newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    return sum(int(rows[name]["Request Count"]) for name in names if name in rows)


def _check_run(result: LoadResult) -> dict[str, int]:
    """The checks every load run must pass; returns the attempts by outcome."""
    run_dir = result.run_dir
    summary = result.summary
    assert not result.interrupted
    assert result.exit_code in (0, 1), (run_dir / "locust" / "locust.log").read_text()[-3000:]

    # the open-model rate: what was sent against what the profile asked for
    assert summary.target_orders and summary.target_orders > 0
    assert abs(result.rate_error) <= RATE_TOLERANCE, (
        f"achieved {result.achieved_rate:.2f}/s, target {result.target_rate:.2f}/s, lag {summary.lag}"
    )

    # every request exactly once in the ledger
    lines = [
        line for path in RunFolder(run_dir).client_ledgers() for line in read_jsonl(path).records
    ]
    assert summary.torn_lines == 0
    pairs = Counter((line["idempotency_key"], line["attempt"]) for line in lines)
    assert [pair for pair, n in pairs.items() if n > 1] == []
    assert summary.duplicates == 0
    attempts: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        attempts[line["idempotency_key"]].append(line["attempt"])
    for key, numbers in attempts.items():  # retries reuse the key, attempt by attempt
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), key
    # ... and Locust, counting on its own, saw as many requests as the ledger has lines
    assert _locust_request_count(run_dir) == len(lines)
    # ... and as many orders as the schedule sent
    assert len(attempts) == summary.lag["sent"] == summary.orders
    for path in RunFolder(run_dir).client_ledgers():  # seq numbers each file's lines without gaps
        seqs = [line["seq"] for line in read_jsonl(path).records]
        assert seqs == list(range(1, len(seqs) + 1)), path

    # the outcomes are counted, and an accepted order carries the id of its key
    outcomes = Counter(line["outcome"] for line in lines)
    assert set(outcomes) <= set(OUTCOMES)
    assert sum(outcomes.values()) == summary.attempts == len(lines)
    assert outcomes["ok"] > 0
    for line in lines:
        assert line["order_id"] == order_id_for(line["idempotency_key"])
        assert line["answered_at"] >= line["sent_at"]
        if line["status"] is None:  # no answer at all can only be an unknown outcome
            assert line["outcome"] == "unknown"

    # Locust's own reports land in the run folder
    assert (run_dir / "locust" / "report.html").stat().st_size > 0
    assert (run_dir / "locust" / "stats_stats.csv").exists()
    return dict(outcomes)


def test_a_60_second_headless_run_reaches_the_target_rate_and_records_every_request(stack) -> None:
    run_dir = Path(stack.run_dir) / "tests" / "load-60s"
    result = run_load(
        run_dir,
        stack.endpoints.order_api,
        "flat",  # 36,000 orders a day: 10 orders/s at 24x
        compress=24,
        duration_s=60,
        seed=3,
        redis_url=stack.endpoints.redis_url,
    )
    outcomes = _check_run(result)
    assert result.plan.target_orders == pytest.approx(600)
    assert len(result.ledger_files) == 1
    print(
        f"\nload 60 s: {result.summary.orders} orders, {result.achieved_rate:.2f}/s against "
        f"{result.target_rate:.2f}/s ({result.rate_error:+.1%}); outcomes {outcomes}; lag {result.summary.lag}"
    )


def test_several_locust_processes_share_the_schedule(stack) -> None:
    run_dir = Path(stack.run_dir) / "tests" / "load-processes"
    result = run_load(
        run_dir,
        stack.endpoints.order_api,
        "flat",
        compress=24,
        duration_s=30,
        processes=2,
        seed=4,
        redis_url=stack.endpoints.redis_url,
    )
    _check_run(result)
    files = result.ledger_files
    assert [p.name for p in files] == ["client-c1.jsonl", "client-c2.jsonl"]
    sizes = [len({line["idempotency_key"] for line in read_jsonl(p).records}) for p in files]
    assert abs(sizes[0] - sizes[1]) <= 1  # every other arrival each


def test_impatient_customers_cancel_orders_an_outage_holds_up(stack) -> None:
    """payment-service down for the whole run: every order waits at its charge. With a patience
    of 1 s (24 production seconds at 24x) and every customer impatient, each looks at its order,
    sees it unfinished and cancels it; the cancels are in the cancel ledger, and the sagas,
    once payment is back, end cancelled by the customer."""
    run_dir = Path(stack.run_dir) / "tests" / "load-impatient"
    profile = run_dir.parent / "impatient.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    flat = (PROFILES_DIR / "flat.yaml").read_text()
    profile.write_text(
        flat.split("\npatience:")[0] + "\npatience: {after_s: 24, cancel_share: 1}\n"
    )
    stack.platform.stop("payment-service")
    try:
        result = run_load(
            run_dir, stack.endpoints.order_api, str(profile), compress=24, duration_s=8, seed=5,
            redis_url=stack.endpoints.redis_url,
        )  # fmt: skip
        time.sleep(10)  # a workflow-task heartbeat later, the sagas have seen the cancels
    finally:
        stack.platform.start("payment-service")
    _check_run(result)
    accepted = {
        line["order_id"]
        for path in RunFolder(run_dir).client_ledgers()
        for line in read_jsonl(path).records
        if line["outcome"] == "ok"
    }
    cancels = [
        line for path in RunFolder(run_dir).cancel_ledgers() for line in read_jsonl(path).records
    ]
    assert [p.name for p in RunFolder(run_dir).cancel_ledgers()] == ["cancel-c1.jsonl"]
    assert {c["order_id"] for c in cancels} <= accepted
    requested = {c["order_id"] for c in cancels if c["status"] == 202}
    assert len(requested) >= len(accepted) // 2, (len(requested), len(accepted), cancels[:3])
    assert all(c["seen_status"] not in ("completed", "cancelled") for c in cancels)
    assert _locust_request_count(run_dir, ("POST /orders/{id}/cancel",)) == len(cancels)
    r = client(stack.endpoints)
    reasons = Counter()
    for order_id in sorted(requested)[:20]:
        events = wait_terminal(stack.endpoints, order_id, 90)
        last = r.xrange(
            "orders:events", min=r.hget(f"orders:dedupe:{order_id}", events[-1]), count=1
        )
        reasons[last[0][1].get("reason", events[-1])] += 1
    assert reasons["customer_cancelled"] >= 1, reasons
