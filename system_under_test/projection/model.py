"""How one order event changes the read model: a pure function shared by the projection,
its rebuild and the verifier, so all three agree on what the read model should be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["STATUS_AFTER", "TERMINAL_STATUSES", "apply_event", "rebuild", "stream_id_key"]

STATUS_AFTER = {
    "OrderPlaced": "placed",
    "InventoryReserved": "reserved",
    "PaymentCaptured": "paid",
    "PaymentDeclined": "declined",
    "InventoryCommitted": "committed",
    "OrderCompleted": "completed",
    "PaymentRefunded": "refunded",
    "InventoryReleased": "released",
    "OrderCancelled": "cancelled",
}
TERMINAL_STATUSES = frozenset({"completed", "cancelled"})


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Stream ids compare as (milliseconds, sequence)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def apply_event(
    view: Mapping[str, str], stream_id: str, fields: Mapping[str, str]
) -> dict[str, str] | None:
    """The view after this event, or None when the view has already seen it (replays are no-ops)."""
    last = view.get("last_stream_id")
    if last and stream_id_key(stream_id) <= stream_id_key(last):
        return None
    event_type = fields.get("type", "")
    new = dict(view)
    new["order_id"] = fields.get("order_id", new.get("order_id", ""))
    new["last_stream_id"] = stream_id
    new["last_event"] = event_type
    new["updated_ms"] = fields.get("ts", "")
    if event_type == "OrderPlaced":
        for key in ("customer_id", "amount_cents", "currency"):
            new[key] = fields.get(key, "")
        new["placed_ms"] = fields.get("ts", "")
        new.setdefault("notified", "0")
    if event_type == "NotificationSent":
        new["notified"] = "1"
    elif event_type in STATUS_AFTER and new.get("status") not in TERMINAL_STATUSES:
        new["status"] = STATUS_AFTER[event_type]
    if event_type == "OrderCancelled":
        new["reason"] = fields.get("reason", "")
    return new


def rebuild(entries: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, dict[str, str]]:
    """The whole read model replayed from (stream id, fields) pairs in stream order."""
    views: dict[str, dict[str, str]] = {}
    for stream_id, fields in entries:
        order_id = fields.get("order_id", "")
        applied = apply_event(views.get(order_id, {}), stream_id, fields)
        if applied is not None:
            views[order_id] = applied
    return views
