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
    """The view after this event, or None when it changes nothing (a replay).

    Events may arrive in any order: a consumer that reclaims a dead consumer's entries applies
    them after newer events of the same order that another consumer already applied. So every
    field is merged, not overwritten: the newest event (by stream id) names `last_*`, the status
    is that of the newest status-changing event (`status_stream_id`) unless a final status came
    first, and the first final status stays. Applied in any order, the events of an order give
    the view that applying them in stream order gives."""
    key = stream_id_key(stream_id)
    event_type = fields.get("type", "")
    new = dict(view)
    new["order_id"] = fields.get("order_id", new.get("order_id", ""))
    last = new.get("last_stream_id")
    if not last or key > stream_id_key(last):
        new["last_stream_id"] = stream_id
        new["last_event"] = event_type
        new["updated_ms"] = fields.get("ts", "")
    if event_type == "OrderPlaced" and _newest(new, "placed_stream_id", stream_id):
        for name in ("customer_id", "amount_cents", "currency"):
            new[name] = fields.get(name, "")
        new["placed_ms"] = fields.get("ts", "")
    if event_type == "OrderPlaced":
        new.setdefault("notified", "0")
    if event_type == "NotificationSent":
        new["notified"] = "1"
    elif event_type in STATUS_AFTER and _takes_status(new, key, STATUS_AFTER[event_type]):
        new["status"] = STATUS_AFTER[event_type]
        new["status_stream_id"] = stream_id
    if event_type == "OrderCancelled" and _newest(new, "reason_stream_id", stream_id):
        new["reason"] = fields.get("reason", "")
    return None if new == view else new


def _newest(view: dict[str, str], id_field: str, stream_id: str) -> bool:
    """Whether `stream_id` is newer than the event that last set the fields behind `id_field`
    (and if so, record it there): of two events setting the same fields, the newest wins."""
    seen = view.get(id_field)
    if seen and stream_id_key(stream_id) <= stream_id_key(seen):
        return False
    view[id_field] = stream_id
    return True


def _takes_status(view: Mapping[str, str], key: tuple[int, int], status: str) -> bool:
    """Whether an event at stream id `key` showing `status` decides the view's status."""
    current = view.get("status")
    if not current:
        return True
    since = stream_id_key(view.get("status_stream_id") or view.get("last_stream_id") or "0-0")
    if current in TERMINAL_STATUSES:  # the first final status stays
        return status in TERMINAL_STATUSES and key < since
    return status in TERMINAL_STATUSES or key > since


def rebuild(entries: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, dict[str, str]]:
    """The whole read model replayed from (stream id, fields) pairs in stream order."""
    views: dict[str, dict[str, str]] = {}
    for stream_id, fields in entries:
        order_id = fields.get("order_id", "")
        applied = apply_event(views.get(order_id, {}), stream_id, fields)
        if applied is not None:
            views[order_id] = applied
    return views
