"""The live watch's client side: orders asked for and accepted, counted in one pass over the
ledger lines, so accepted can never exceed sent (the progress line showed it above sent)."""

from __future__ import annotations

import pytest

from harness.run.watch import ClientOrders

pytestmark = pytest.mark.unit


def _line(key: str | None, outcome: str, order_id: str | None = None, at: float = 1.0) -> dict:
    return {"idempotency_key": key, "order_id": order_id, "outcome": outcome, "answered_at": at}


def test_retries_of_one_key_are_one_order_sent_and_at_most_one_accepted() -> None:
    orders = ClientOrders()
    orders.add([_line("k1", "unknown", "ord-1"), _line("k1", "ok", "ord-1", 2.0)])
    orders.add([_line("k1", "ok", "ord-1", 3.0), _line("k2", "failed", "ord-2")])
    assert (len(orders.sent), len(orders.accepted)) == (2, 1)
    assert orders.awaiting == {"ord-1": 2.0}  # told at the first ok, not the retry's


def test_answers_naming_other_orders_cannot_make_accepted_exceed_sent() -> None:
    """One key answered with two order ids, and ok lines without an order id: counted by
    their key, never more accepted than sent."""
    orders = ClientOrders()
    orders.add(
        [
            _line("k1", "ok", "ord-a"),
            _line("k1", "ok", "ord-b"),
            _line("k2", "ok", None),
            _line(None, "ok", "ord-c"),
        ]
    )
    assert (len(orders.sent), len(orders.accepted)) == (3, 3)
    assert set(orders.awaiting) == {"ord-a", "ord-c"}  # no id, nothing to look for


def test_accepted_never_exceeds_sent_after_any_batch() -> None:
    orders = ClientOrders()
    outcomes = ["ok", "failed", "unknown"]
    for i in range(300):
        orders.add([_line(f"k{i % 37}", outcomes[i % 3], f"ord-{i % 41}")])
        assert len(orders.accepted) <= len(orders.sent)
        assert orders.accepted <= orders.sent
