"""The projection's view merge: events applied in any order (a reclaimed entry arrives after
newer ones of its order) give the view that applying them in stream order gives."""

from __future__ import annotations

import random

import pytest

from system_under_test.projection.model import STATUS_AFTER, apply_event, rebuild

pytestmark = pytest.mark.unit

TYPES = [*STATUS_AFTER, "NotificationSent", "SomethingElse"]


def _events(rng: random.Random, n: int) -> list[tuple[str, dict[str, str]]]:
    events = []
    for i in range(n):
        kind = rng.choice(TYPES)
        fields = {"type": kind, "order_id": "ord-1", "ts": str(1000 + i)}
        if kind == "OrderPlaced":
            fields |= {"customer_id": "c-1", "amount_cents": str(100 + i), "currency": "EUR"}
        if kind == "OrderCancelled":
            fields["reason"] = f"reason-{i}"
        events.append((f"{1763769000000 + i}-{i % 3}", fields))
    return events


def _apply(events: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
    view: dict[str, str] = {}
    for stream_id, fields in events:
        view = apply_event(view, stream_id, fields) or view
    return view


@pytest.mark.parametrize("seed", range(40))
def test_any_arrival_order_gives_the_stream_order_view(seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, rng.randint(1, 12))
    want = rebuild(events)["ord-1"]
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert _apply(shuffled) == want
    assert _apply(shuffled + shuffled[: len(shuffled) // 2]) == want  # redeliveries change nothing


def test_a_reclaimed_order_placed_still_fills_the_order_in() -> None:
    """The CI failure this merge fixes: OrderPlaced applied after the order's later events."""
    placed = ("1-0", {"type": "OrderPlaced", "order_id": "o", "amount_cents": "2599", "ts": "1"})
    done = ("5-0", {"type": "OrderCompleted", "order_id": "o", "ts": "5"})
    view = _apply([done, placed])
    assert (view["amount_cents"], view["status"], view["last_stream_id"]) == (
        "2599",
        "completed",
        "5-0",
    )


def test_a_replayed_event_is_no_change() -> None:
    placed = ("1-0", {"type": "OrderPlaced", "order_id": "o", "amount_cents": "1", "ts": "1"})
    view = _apply([placed])
    assert apply_event(view, *placed) is None


def test_the_first_final_status_stays() -> None:
    cancelled = ("3-0", {"type": "OrderCancelled", "order_id": "o", "reason": "r", "ts": "3"})
    completed = ("4-0", {"type": "OrderCompleted", "order_id": "o", "ts": "4"})
    assert _apply([completed, cancelled])["status"] == "cancelled"
    assert _apply([cancelled, completed])["status"] == "cancelled"
