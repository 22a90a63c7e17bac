"""exactly_once_money on crafted histories."""

from __future__ import annotations

import pytest

from harness.verify.money import exactly_once_money
from tests.unit.verify.builders import PAYMENTS, HistoryBuilder, example

pytestmark = pytest.mark.unit


def test_every_path_moves_money_exactly_once() -> None:
    b = HistoryBuilder()
    b.completed(amount_cents=4599)
    b.declined()
    b.refunded(reason="customer_cancelled")
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 9}])
    b.in_flight(upto="PaymentCaptured")  # captured, not yet completed: only at-most-once applies
    result = exactly_once_money(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["captures"] == 3
    assert result.counts["refunds"] == 1
    assert result.counts["declines"] == 1
    assert result.counts["in_flight"] == 1
    assert "1 orders still in flight" in result.notes[0]


def test_a_second_capture_is_a_double_charge() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b._pay(order, "capture")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == "captured 2 times in payments:ledger"
    assert [p["fields"]["kind"] for p in item["payments"]] == ["capture", "capture"]
    assert all(p["id"] for p in item["payments"])


def test_a_second_capture_of_an_order_in_flight_is_still_a_double_charge() -> None:
    b = HistoryBuilder()
    order = b.in_flight(upto="PaymentCaptured")
    b._pay(order, "capture")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == "captured 2 times in payments:ledger"


def test_a_cancelled_order_keeps_no_money() -> None:
    b = HistoryBuilder()
    order = b.new_order(amount_cents=1500)
    b.request(order)
    b.steps(order, "OrderPlaced", "InventoryReserved", "PaymentCaptured", "InventoryReleased")
    b.step(order, "OrderCancelled", reason="customer_cancelled")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "cancelled, but 1500 cents stay captured (captured 1500, refunded 0)"
    )


def test_a_completed_order_is_charged_its_amount() -> None:
    b = HistoryBuilder()
    order = b.completed(amount_cents=1000)
    assert b.drop(PAYMENTS, lambda f: f["order_id"] == order.order_id) == 1
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "completed, but net captured is 0 cents where OrderPlaced says 1000"
    )


def test_events_must_agree_with_the_ledger() -> None:
    b = HistoryBuilder()
    order = b.new_order(amount_cents=1000)
    b.request(order)
    b.steps(order, "OrderPlaced", "InventoryReserved")
    b.step(order, "PaymentCaptured", amount_cents=999)
    b.steps(order, "InventoryCommitted", "OrderCompleted", "NotificationSent")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "PaymentCaptured says 999 cents, payments:ledger captured 1000"
    )


def test_a_capture_the_events_never_recorded_is_flagged() -> None:
    b = HistoryBuilder()
    order = b.declined()
    b._pay(order, "capture")
    b._pay(order, "refund")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == "both captured and declined in payments:ledger"


def test_a_second_refund_is_flagged() -> None:
    b = HistoryBuilder()
    order = b.refunded()
    b._pay(order, "refund")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == "refunded 2 times in payments:ledger"


def test_money_for_an_order_never_placed() -> None:
    b = HistoryBuilder()
    b.completed()
    ghost = b.new_order(amount_cents=700)
    b._pay(ghost, "capture")
    result = exactly_once_money(b.history())
    assert result.status == "fail"
    assert example(result, ghost.order_id)["why"] == "700 cents captured for an order never placed"


def test_without_the_payments_ledger_money_is_unknown() -> None:
    b = HistoryBuilder()
    b.completed()
    result = exactly_once_money(b.history(omit=("payments:ledger",)))
    assert result.status == "unknown"
    assert result.error == "history/streams/payments.ledger.jsonl is missing"
