"""Read model consistent: the projection's live read model equals a replay of orders:events.

The rules (which status an order shows after each event, which statuses are final) are the
read model's contract as docs/system.md states it, written out here and never imported from
`system_under_test`: a verifier that borrowed the projection's own rules would agree with any
bug in them (a cancelled order shown as completed). A unit test holds this module equal to the
system's `rebuild()` on random histories, so the two copies cannot drift apart unnoticed.

Why vectorised: `rebuild()` applies events one by one in Python, ~5 s per million; this module
derives the same three fields per order with numpy. Events are read in stream-id order, so
none is ever a replay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.verify.facts import TYPES, EventCodes, event_codes, fields_at, order_table, universe
from harness.verify.frames import object_frame
from harness.verify.history import History
from harness.verify.results import (
    InvariantResult,
    from_violations,
    invariant,
    records_for,
    violation_frame,
)

__all__ = [
    "COMPARED",
    "PLACED_FIELDS",
    "STATUS_AFTER",
    "TERMINAL_STATUSES",
    "expected_read_model",
    "read_model_consistent",
]

# What the order page shows of the order itself: these fields of the newest OrderPlaced (one
# per order in a legal history), and the reason of the newest OrderCancelled.
PLACED_FIELDS = ("customer_id", "amount_cents", "currency")
COMPARED = ("status", "notified", "last_stream_id", *PLACED_FIELDS, "reason")
# What the order page must say after each event (events not named leave the status alone).
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
# Once shown, these never change: the first of them an order reaches is its final status.
TERMINAL_STATUSES = frozenset({"completed", "cancelled"})


def expected_read_model(h: History) -> pd.DataFrame:
    """Per order code (rows of `order_table`): the fields of COMPARED that `rebuild()` gives
    (None where rebuild leaves the field unset or empty, or has no view)."""
    return h.cached("expected_read_model", lambda: _expected(h))


def _expected(h: History) -> pd.DataFrame:
    codes = event_codes(h)
    orders = order_table(h)
    n = len(orders)
    status_of = np.array([STATUS_AFTER.get(t) for t in TYPES] + [None], dtype=object)
    changes = np.array([t in STATUS_AFTER for t in TYPES] + [False])
    final = [t for t in TYPES if STATUS_AFTER.get(t) in TERMINAL_STATUSES]
    status = np.full(n, None, dtype=object)
    # The last status-changing event decides, unless a terminal one came first: it sticks.
    rows = codes.by_order[changes[codes.type[codes.by_order]]]
    if len(rows):
        owner = codes.order[rows]
        uniq, from_end = np.unique(owner[::-1], return_index=True)
        status[uniq] = status_of[codes.type[rows[len(rows) - 1 - from_end]]]
    never = np.iinfo(np.int64).max
    first_final = np.full(n, never)
    for name in final:
        pos = orders[f"pos_{name}"].to_numpy()
        first_final = np.where((pos >= 0) & (pos < first_final), pos, first_final)
    stuck = first_final != never
    status[stuck] = status_of[codes.type[first_final[stuck]]]
    notified = np.full(n, None, dtype=object)
    notified[orders["n_OrderPlaced"].to_numpy() > 0] = "0"
    notified[orders["n_NotificationSent"].to_numpy() > 0] = "1"
    placed = fields_at(h, "OrderPlaced", PLACED_FIELDS, _newest_of(codes, "OrderPlaced", n))
    reason = fields_at(h, "OrderCancelled", ("reason",), _newest_of(codes, "OrderCancelled", n))
    return object_frame(
        {
            "status": status,
            "notified": notified,
            "last_stream_id": orders["last_id"].to_numpy(),
            **{name: _blank_as_none(values) for name, values in {**placed, **reason}.items()},
        }
    )


def _newest_of(codes: EventCodes, event_type: str, n: int) -> np.ndarray:
    """Per order code, the row of its newest event of `event_type` (-1 for none)."""
    rows = np.flatnonzero(codes.type == TYPES.index(event_type))
    newest = np.full(n, -1, dtype=np.int64)
    np.maximum.at(newest, codes.order[rows], rows)
    return newest


def _blank_as_none(values: np.ndarray) -> np.ndarray:
    """A field that is absent and one that is empty read the same (the projection writes "")."""
    out = np.asarray(values, dtype=object).copy()
    out[np.asarray([v is None or v == "" for v in out], dtype=bool)] = None
    return out


@invariant("read_model_consistent", "Read model consistent")
def read_model_consistent(h: History) -> InvariantResult:
    """history/readmodel.jsonl has one row per order of orders:events, none other, and in each
    the status, notified, last_stream_id, the order as placed (customer, amount, currency) and
    the cancel reason that replaying orders:events under the read model's contract
    (`STATUS_AFTER`, `TERMINAL_STATUSES`, `PLACED_FIELDS` above) gives."""
    h.require("readmodel", "events")
    rm = h.readmodel
    assert rm is not None
    u = universe(h)
    orders = order_table(h)
    expected = expected_read_model(h)
    n = len(orders)
    in_events = orders["in_events"].to_numpy() & (u.ids != "")
    own = u.codes["readmodel"]
    rows = np.flatnonzero(own >= 0)
    copies = np.bincount(own[rows], minlength=n)
    uniq, first = np.unique(own[rows], return_index=True)
    in_model = copies > 0
    why = np.full(n, None, dtype=object)
    why[in_events & ~in_model] = "the read model has no entry for this order"
    why[~in_events & in_model] = "the read model has an order that is not in orders:events"
    both = in_events & in_model
    for col in reversed(COMPARED):
        want = expected[col].to_numpy(dtype=object)
        have = np.full(n, None, dtype=object)
        if col in rm:
            have[uniq] = _blank_as_none(rm[col].to_numpy(dtype=object)[rows[first]])
        for i in np.flatnonzero(both & np.asarray(want != have, dtype=bool)):
            why[i] = f"{col} {have[i]!r} in the read model, {want[i]!r} replayed from orders:events"
    for i in np.flatnonzero((copies > 1) & (why == None)):  # noqa: E711 (elementwise)
        why[i] = f"the read model has {copies[i]} rows for this order"
    bad = np.flatnonzero(why != None)  # noqa: E711 (elementwise)
    frame = violation_frame(
        h,
        bad,
        why[bad],
        np.array([_id_key(x) for x in expected["last_stream_id"].to_numpy()[bad]], dtype=float),
        np.ones(len(bad)),
    )
    frame["expected"] = [
        {c: expected[c].iat[i] for c in COMPARED} if in_events[i] else None for i in bad
    ]
    return from_violations(
        h,
        frame,
        checked=int((in_events | in_model).sum()),
        counts={"read_model_rows": len(rm), "orders": int(in_events.sum())},
        context=lambda oids: {
            k: {"read_model": v[0] if v else None}
            for k, v in records_for(h, "readmodel", oids).items()
        },
    )


def _id_key(stream_id: object) -> float:
    if not isinstance(stream_id, str):
        return float("inf")
    ms, _, seq = stream_id.partition("-")
    try:
        return float(ms) + float(seq or 0) / 1e6
    except ValueError:
        return float("inf")
