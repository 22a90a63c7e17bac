"""Which fields of which parts the verifier reads, and where each part lives in a run folder.

Why apart from history.py: the snapshot's reader child (`system_side.py`) needs these names
and nothing of pandas; importing them from here keeps that process's interpreter small.
"""

from __future__ import annotations

from harness import keys
from harness.runs import RunFolder

__all__ = [
    "COMPACT_TEXTS",
    "CORE_FIELDS",
    "EVENT_FIELDS",
    "NUMERIC_FIELDS",
    "PART_FILES",
    "STREAM_PARTS",
]

# Streams the checks read, by the part of the history they become.
STREAM_PARTS = {
    keys.EVENTS: "events",
    keys.PAYMENTS_LEDGER: "payments",
    keys.INVENTORY_LEDGER: "inventory_ledger",
    keys.NOTIFICATIONS: "notifications",
}
# Where each part lives in a run folder (what a missing part's reason names).
PART_FILES = {
    **{part: RunFolder.stream_rel(stream) for stream, part in STREAM_PARTS.items()},
    "ledger": RunFolder.CLIENT_LEDGERS,
    "temporal": RunFolder.TEMPORAL,
    "inventory": RunFolder.INVENTORY,
    "readmodel": RunFolder.READMODEL,
    "faults": RunFolder.FAULTS,
    "histories": RunFolder.WORKFLOWS,
    "run": RunFolder.RUN_JSON,
}
# The fields the checks read, per part: the columns of its frame (None where a map lacks the
# key), those of `_NUMERIC` as `_<name>` numbers.
CORE_FIELDS = {
    "events": ("type", "order_id", "event_id", "ts"),
    "payments": ("kind", "order_id", "payment_id", "amount_cents", "ts"),
    "inventory_ledger": ("kind", "order_id", "items", "ts"),
    "notifications": ("order_id", "ts"),
    "ledger": (
        "idempotency_key",
        "order_id",
        "outcome",
        "sent_at",
        "answered_at",
        "customer_id",
        "amount_cents",
        "currency",
    ),
    "temporal": ("workflow_id", "status", "start_time", "close_time"),
    "readmodel": (
        "order_id",
        "status",
        "notified",
        "last_stream_id",
        "customer_id",
        "amount_cents",
        "currency",
        "reason",
    ),
}
# Columns of texts that are each new, which a history read from a run folder holds as bytes
# (`History.texts`, texts.py) rather than in its frame: the checks read them with `History.text`
# and `History.text_codes`, whichever way the history was read.
COMPACT_TEXTS = {
    "events": ("id", "event_id"),
    "payments": ("id",),
    "inventory_ledger": ("id",),
    "notifications": ("id",),
}
# Fields of a few event types the checks read (`facts.fields_at`, `History.typed`): a history
# read from a run folder keeps them for the rows of that type only (None: every field), and
# reads any other field of an event again from the file when asked for.
EVENT_FIELDS: dict[str, tuple[str, ...] | None] = {
    "OrderPlaced": ("customer_id", "amount_cents", "currency", "items", "idempotency_key"),
    "OrderCancelled": ("reason",),
    "PaymentCaptured": ("amount_cents", "payment_id"),
    "PriceCorrected": None,
}
# Fields the checks read as numbers: a part's frame has them as `_<name>` (ints for a stream's
# `ts`, floats otherwise, NaN where absent) instead of the values as read (those stay in `raw`).
NUMERIC_FIELDS = {
    "events": ("ts",),
    "payments": ("ts", "amount_cents"),
    "inventory_ledger": ("ts",),
    "notifications": ("ts",),
    "ledger": ("sent_at", "answered_at", "amount_cents"),
    "temporal": ("start_time", "close_time"),
    "faults": ("started_at", "ended_at"),
}
