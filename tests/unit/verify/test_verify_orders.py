"""no_lost_order and no_phantom_order on crafted histories."""

from __future__ import annotations

import pytest

from harness.verify.orders import no_lost_order, no_phantom_order
from tests.unit.verify.builders import HistoryBuilder, Order, example

pytestmark = pytest.mark.unit


def test_a_consistent_run_has_no_lost_order() -> None:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 5}])
    b.refunded()
    result = no_lost_order(b.history())
    assert result.status == "pass"
    assert result.counts["checked"] == 4
    assert result.counterexamples == []


def test_accepted_without_order_placed_is_lost() -> None:
    b = HistoryBuilder()
    b.completed()
    lost = b.new_order()
    b.request(lost)
    result = no_lost_order(b.history())
    assert result.status == "fail"
    item = example(result, lost.order_id)
    assert item["why"] == "client told accepted; no OrderPlaced in orders:events"
    assert item["client"]["idempotency_key"] == lost.key
    assert item["client"]["outcome"] == "ok"
    assert item["events"] == []
    assert result.counts["violations"] == 1
    assert result.first == item


def test_accepted_and_placed_but_never_terminal_is_lost() -> None:
    b = HistoryBuilder()
    stuck = b.in_flight(upto="PaymentCaptured")
    result = no_lost_order(b.history())
    assert result.status == "fail"
    item = example(result, stuck.order_id)
    assert "placed but never terminal (last event PaymentCaptured" in item["why"]
    assert [e["fields"]["type"] for e in item["events"]] == [
        "OrderPlaced",
        "InventoryReserved",
        "PaymentCaptured",
    ]
    assert all(e["id"] for e in item["events"])


def test_cancelled_without_compensation_is_not_done() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order)
    b.steps(order, "OrderPlaced", "InventoryReserved")
    b.step(order, "OrderCancelled", reason="Timeout")
    result = no_lost_order(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == (
        "cancelled without its compensation: InventoryReserved was never released"
    )


def test_terminal_after_the_drain_deadline_is_late() -> None:
    b = HistoryBuilder(drain_deadline_s=2.0)
    order = b.new_order()
    b.request(order)
    b.end_load()
    b.tick(5.0)
    b.steps(order, "OrderPlaced", "InventoryReserved", "PaymentCaptured")
    b.steps(order, "InventoryCommitted", "OrderCompleted", "NotificationSent")
    b.workflow(order.order_id)
    result = no_lost_order(b.history())
    assert result.status == "fail"
    assert "after the drain deadline (load ended at" in example(result, order.order_id)["why"]
    assert result.counts["late"] == 1


def test_terminal_just_before_the_deadline_passes() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order)
    load_end = b.end_load()
    b.tick(3.0)
    b.steps(order, "OrderPlaced", "InventoryReserved", "PaymentCaptured")
    b.steps(order, "InventoryCommitted", "OrderCompleted")
    done_s = int(b.streams["orders:events"][-1][1]["ts"]) / 1000.0
    b.step(order, "NotificationSent")
    b.run["drain_deadline_s"] = done_s - load_end + 1e-6
    result = no_lost_order(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.metrics["drain_deadline"] == pytest.approx(done_s, abs=1e-5)


def test_an_unknown_outcome_is_not_an_accepted_order() -> None:
    b = HistoryBuilder()
    maybe = b.new_order()
    b.request(maybe, outcome="unknown", status=None, error="ReadTimeout")
    result = no_lost_order(b.history())
    assert result.status == "pass"
    assert result.counts["checked"] == 0


def test_a_retry_that_was_accepted_makes_the_order_accepted() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order, outcome="unknown", status=None, error="ReadTimeout")
    b.request(order, attempt=2)
    result = no_lost_order(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["client"]["attempt"] == 2
    assert [a["attempt"] for a in item["attempts"]] == [1, 2]


def test_counterexamples_are_capped_and_counted() -> None:
    b = HistoryBuilder()
    lost = [b.new_order() for _ in range(25)]
    for order in lost:
        b.request(order)
    result = no_lost_order(b.history())
    assert result.counts["violations"] == 25
    assert len(result.counterexamples) == 20
    assert result.first["order_id"] == lost[0].order_id  # earliest first
    assert result.worst["order_id"] == lost[0].order_id  # the oldest lost order


def test_no_lost_order_needs_the_ledger() -> None:
    b = HistoryBuilder()
    b.completed()
    result = no_lost_order(b.history(omit=("ledger",)))
    assert result.status == "unknown"
    assert "client ledger" in result.error or "ledger" in result.error


# ---- no phantom order ---------------------------------------------------------------------


def test_a_consistent_run_has_no_phantom() -> None:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    b.refused(status=422)
    never = b.new_order()
    b.request(never, outcome="unknown", status=None)  # never reached the service
    arrived = b.new_order()
    b.request(arrived, outcome="unknown", status=None)  # reached it: the order is whole
    b.steps(arrived, "OrderPlaced", "InventoryReserved", "PaymentCaptured")
    b.steps(arrived, "InventoryCommitted", "OrderCompleted", "NotificationSent")
    b.workflow(arrived.order_id)
    result = no_phantom_order(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["unknown_outcome"] == 2
    assert result.counts["unknown_outcome_present"] == 1
    assert result.counts["unknown_outcome_absent"] == 1
    assert result.counts["refused"] == 1


def test_a_reused_key_refused_with_409_is_not_a_phantom() -> None:
    b = HistoryBuilder()
    order = b.completed(amount_cents=1000)
    other_body = Order(order.key, amount_cents=2000)
    b.request(other_body, outcome="failed", status=409)
    assert no_phantom_order(b.history()).status == "pass"


def test_an_order_nobody_asked_for_is_a_phantom() -> None:
    b = HistoryBuilder()
    b.completed()
    ghost = b.completed(ask=False)
    result = no_phantom_order(b.history())
    assert result.status == "fail"
    item = example(result, ghost.order_id)
    assert item["why"].startswith("no client asked for it; found in orders:events, payments:ledger")
    assert "Temporal" in item["why"]
    assert item["client"] is None
    assert item["events"][0]["fields"]["type"] == "OrderPlaced"


def test_an_order_whose_requests_were_all_refused_must_not_exist() -> None:
    b = HistoryBuilder()
    refused = b.refused(status=422)
    b.completed(key=refused.key, ask=False)
    result = no_phantom_order(b.history())
    assert result.status == "fail"
    item = example(result, refused.order_id)
    assert item["why"].startswith("every request for it was refused, yet it is in orders:events")
    assert item["client"]["status"] == 422


def test_an_unknown_outcome_order_that_exists_must_be_whole() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order, outcome="unknown", status=None)
    b.steps(order, "OrderPlaced", "InventoryReserved")
    result = no_phantom_order(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "request outcome unknown and the order exists but is not whole (last event InventoryReserved)"
    )


def test_an_order_unlike_its_request_is_a_phantom() -> None:
    b = HistoryBuilder()
    asked = b.new_order(amount_cents=1000)
    b.request(asked)
    placed = Order(asked.key, amount_cents=2000)
    b.steps(placed, "OrderPlaced", "InventoryReserved", "PaymentCaptured")
    b.steps(placed, "InventoryCommitted", "OrderCompleted", "NotificationSent")
    result = no_phantom_order(b.history())
    assert result.status == "fail"
    assert example(result, asked.order_id)["why"] == (
        "OrderPlaced is not what the client asked for: amount_cents 2000 where the client sent 1000"
    )


def test_an_answer_naming_another_order_is_flagged() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.ledger["c1"][-1]["order_id"] = "ord-000000000000000000000000"
    result = no_phantom_order(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        f"an answer named order ord-000000000000000000000000, "
        f"but order_id_for(idempotency key) is {order.order_id}"
    )


def test_without_a_ledger_phantoms_are_unknown() -> None:
    b = HistoryBuilder()
    b.completed()
    result = no_phantom_order(b.history(omit=("ledger",)))
    assert result.status == "unknown"
    assert "ledger" in result.error
