"""legal_history and exactly_one_confirmation on crafted histories."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verify.legal import exactly_one_confirmation, legal_history
from harness.verify.reader import load_snapshot
from tests.unit.verify.builders import EVENTS, NOTIFICATIONS, HistoryBuilder, example

pytestmark = pytest.mark.unit


def test_every_documented_path_and_every_prefix_is_legal() -> None:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    b.refunded(reason="ReservationLost")
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 3}])
    for upto in ("OrderPlaced", "InventoryReserved", "PaymentCaptured", "InventoryCommitted"):
        b.in_flight(upto=upto)
    # The customer cancelled before the charge: the reservation is undone, then the order cancelled.
    changed_mind = b.new_order()
    b.request(changed_mind)
    b.steps(changed_mind, "OrderPlaced", "InventoryReserved", "InventoryReleased")
    b.step(changed_mind, "OrderCancelled", reason="customer_cancelled")
    result = legal_history(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["checked"] == 9
    assert result.counts["in_flight"] == 4


def test_a_skipped_step_is_an_illegal_transition() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order)
    b.step(order, "OrderPlaced")
    at = b.step(order, "PaymentCaptured")
    result = legal_history(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == f"illegal transition OrderPlaced -> PaymentCaptured at {at}"
    assert item["client"]["idempotency_key"] == order.key


def test_the_first_event_must_be_order_placed() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    at = b.step(order, "InventoryReserved")
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        f"first event is InventoryReserved, not OrderPlaced at {at}"
    )


def test_nothing_follows_a_cancellation() -> None:
    b = HistoryBuilder()
    order = b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 3}])
    at = b.step(order, "InventoryReserved")
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        f"InventoryReserved after the terminal OrderCancelled at {at}"
    )


def test_only_one_notification_follows_a_completion() -> None:
    b = HistoryBuilder()
    order = b.completed()
    at = b.step(order, "NotificationSent")
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == f"a second NotificationSent at {at}"


@pytest.mark.parametrize("from_folder", [False, True])
def test_a_duplicate_event_id_is_flagged(tmp_path: Path, from_folder: bool) -> None:
    """In memory, and read from a run folder (event ids held as bytes, History.texts)."""
    b = HistoryBuilder()
    first = b.completed()
    second = b.new_order()
    b.request(second)
    at = b.entry(
        EVENTS,
        type="OrderPlaced",
        order_id=second.order_id,
        event_id=f"{first.order_id}:OrderPlaced",
    )
    h = load_snapshot(b.write(tmp_path / "run")) if from_folder else b.history()
    assert ("event_id" in h.texts.get("events", {})) is from_folder
    result = legal_history(h)
    assert result.status == "fail"
    first_at = b.streams[EVENTS][0][0]
    assert example(result, second.order_id)["why"] == (
        f"duplicate event_id '{first.order_id}:OrderPlaced' at {at} (first at {first_at})"
    )
    assert result.counts["duplicate_event_ids"] == 1


def test_a_cancel_reason_must_match_its_path() -> None:
    b = HistoryBuilder()
    order = b.new_order()
    b.request(order)
    b.steps(order, "OrderPlaced", "InventoryReserved", "PaymentDeclined", "InventoryReleased")
    b.step(order, "OrderCancelled", reason="out_of_stock")
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "cancelled after PaymentDeclined with reason 'out_of_stock', not 'payment_declined'"
    )


def test_an_unknown_event_type_is_flagged() -> None:
    b = HistoryBuilder()
    order = b.in_flight(upto="InventoryReserved")
    at = b.event(order.order_id, "OrderTeleported")
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == f"unknown event type 'OrderTeleported' at {at}"


def test_legal_history_needs_the_events() -> None:
    b = HistoryBuilder()
    b.completed()
    result = legal_history(b.history(omit=("orders:events",)))
    assert result.status == "unknown"
    assert result.error == "history/streams/orders.events.jsonl is missing"


# ---- exactly one confirmation -------------------------------------------------------------


def test_one_confirmation_per_completed_order_and_none_otherwise() -> None:
    b = HistoryBuilder()
    b.completed()
    b.completed()
    b.declined()
    b.in_flight(upto="InventoryCommitted")
    result = exactly_one_confirmation(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["completed"] == 2
    assert result.counts["notifications"] == 2


def test_a_completed_order_without_confirmation() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.drop_event(order.order_id, "NotificationSent")
    b.drop(NOTIFICATIONS, lambda f: f["order_id"] == order.order_id)
    result = exactly_one_confirmation(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == "completed without a NotificationSent event"


def test_two_confirmations_sent_for_one_order() -> None:
    b = HistoryBuilder()
    order = b.completed()
    b.entry(NOTIFICATIONS, notification_id="ntf-x", order_id=order.order_id, customer_id="c")
    result = exactly_one_confirmation(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == "completed with 2 entries in notifications:sent"
    assert len(item["notifications"]) == 2


def test_a_confirmation_for_a_cancelled_order() -> None:
    b = HistoryBuilder()
    order = b.declined()
    b.entry(NOTIFICATIONS, notification_id="ntf-x", order_id=order.order_id, customer_id="c")
    result = exactly_one_confirmation(b.history())
    assert result.status == "fail"
    assert example(result, order.order_id)["why"] == (
        "notifications:sent has an entry for an order that was cancelled"
    )


def test_without_the_notifications_stream_confirmation_is_unknown() -> None:
    b = HistoryBuilder()
    b.completed()
    result = exactly_one_confirmation(b.history(omit=("notifications:sent",)))
    assert result.status == "unknown"
    assert result.error == "history/streams/notifications.sent.jsonl is missing"


@pytest.mark.parametrize(
    "reason", ["PaymentServiceDown", "UnexpectedResponse", "workflow_cancelled"]
)
def test_an_order_cancelled_for_a_technical_failure_is_flagged(reason: str) -> None:
    """The saga gave up on a dependency and compensated: money and stock add up, the path is
    legal, but the customer lost an order the system had accepted."""
    b = HistoryBuilder()
    gave_up = b.new_order()
    b.request(gave_up)
    b.steps(gave_up, "OrderPlaced", "InventoryReserved", "InventoryReleased")
    b.step(gave_up, "OrderCancelled", reason=reason)
    result = legal_history(b.history())
    assert result.status == "fail"
    assert example(result, gave_up.order_id)["why"].startswith(
        f"cancelled with reason {reason!r}, which is no business reason"
    )
