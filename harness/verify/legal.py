"""Legal history and exactly one confirmation: each order's events follow the saga.

Why a transition table: in every path of docs/events.md an event type occurs at most once
and the last event alone decides which may come next, so "is this history legal?" is one
vectorised lookup of (previous type, type) per event instead of a per-order parser, and a
prefix of a legal path (an order in flight) passes by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import keys
from harness.verify.facts import OTHER, TYPES, event_codes, order_table, universe
from harness.verify.history import History
from harness.verify.results import (
    InvariantResult,
    entries_for,
    from_violations,
    invariant,
    violation_frame,
)

__all__ = ["ALLOWED", "BUSINESS_REASONS", "START", "exactly_one_confirmation", "legal_history"]

START = OTHER + 1  # the "previous type" of an order's first event
# Why an accepted order may be cancelled (docs/events.md): the card, the stock, the customer, the
# fraud check, or a reservation gone at commit time. Any other reason is a technical failure
# the saga gave up on: the customer lost an order the system had accepted.
BUSINESS_REASONS = frozenset(
    {
        "payment_declined",
        "out_of_stock",
        "unknown_sku",
        "customer_cancelled",
        "fraud_suspected",
        "ReservationLost",
    }
)
_C = {t: i for i, t in enumerate(TYPES)}
# (previous, next) pairs of the saga (docs/events.md), plus the compensation of a reservation
# when the charge failed without a decline (reserve -> release -> cancel): compensations run in
# reverse order of the steps they undo, whatever made the saga give up.
_PAIRS = [
    ("START", "OrderPlaced"),
    ("OrderPlaced", "InventoryReserved"),
    ("OrderPlaced", "OrderCancelled"),
    ("InventoryReserved", "PaymentCaptured"),
    ("InventoryReserved", "PaymentDeclined"),
    ("InventoryReserved", "InventoryReleased"),
    ("PaymentCaptured", "InventoryCommitted"),
    ("PaymentCaptured", "PaymentRefunded"),
    ("PaymentDeclined", "InventoryReleased"),
    ("PaymentRefunded", "InventoryReleased"),
    ("InventoryReleased", "OrderCancelled"),
    ("InventoryCommitted", "OrderCompleted"),
    # the customer's cancel asks the stock first, then refunds what was charged
    ("PaymentCaptured", "InventoryReleased"),
    ("InventoryReleased", "PaymentRefunded"),
    ("PaymentRefunded", "OrderCancelled"),
    ("OrderCompleted", "NotificationSent"),
    # a reprocess corrects completed orders, before or after their confirmation, once per
    # correction (reprocessed_exactly_once counts them; exactly_one_confirmation the rest)
    ("OrderCompleted", "PriceCorrected"),
    ("NotificationSent", "PriceCorrected"),
    ("PriceCorrected", "PriceCorrected"),
    ("PriceCorrected", "NotificationSent"),
]
ALLOWED = np.zeros((START + 1, OTHER + 1), dtype=bool)
for _prev, _next in _PAIRS:
    ALLOWED[START if _prev == "START" else _C[_prev], _C[_next]] = True


@invariant("legal_history", "Legal history")
def legal_history(h: History) -> InvariantResult:
    """Each order's events, in stream order, follow the saga's state machine: OrderPlaced first,
    only allowed transitions, nothing after OrderCancelled and nothing after OrderCompleted but
    one NotificationSent and price corrections (PriceCorrected); a cancel reason that matches its path (payment_declined exactly after
    a PaymentDeclined, out_of_stock only before a reservation) and is a business reason
    (`BUSINESS_REASONS`: never a technical failure the saga gave up on); every entry names its order,
    and no event_id appears twice in orders:events. An order in flight may stop anywhere."""
    h.require("events")
    events = h.events
    assert events is not None
    codes = event_codes(h)
    n = len(events)
    prev = np.full(n, START, dtype=np.int64)
    if n:
        rows = codes.by_order
        same = codes.order[rows[1:]] == codes.order[rows[:-1]]
        prev[rows[1:][same]] = codes.type[rows[:-1][same]]
    illegal = ~ALLOWED[prev, codes.type]
    no_order = np.asarray(events["order_id"].to_numpy(dtype=object) == None, dtype=bool)  # noqa: E711
    eid_code, no_eid = h.text_codes("events", "event_id")
    # A repeated event_id: every occurrence after the first.
    first_of = np.zeros(int(eid_code.max(initial=-1)) + 1, dtype=np.int64)
    if len(first_of):
        seen, first = np.unique(eid_code[eid_code >= 0], return_index=True)
        first_of[seen] = np.flatnonzero(eid_code >= 0)[first]
    first_row = first_of[np.maximum(eid_code, 0)] if len(first_of) else eid_code
    duplicate = (eid_code >= 0) & (np.arange(n) != first_row)
    bad = illegal | no_order | no_eid | duplicate
    bad_rows = np.flatnonzero(bad)
    first_ids = h.text("events", "id", first_row[bad_rows])
    why_rows = _why_rows(h, bad_rows, prev, codes.type, no_order, no_eid, first_ids)
    per_order = pd.DataFrame(
        {
            "order_id": universe(h).ids[codes.order[bad_rows]],
            "why": why_rows,
            "sort": bad_rows.astype(float),
        }
    )
    counted = per_order.groupby("order_id", sort=False).size()
    per_order = per_order.drop_duplicates("order_id", keep="first")
    per_order["severity"] = counted.reindex(per_order["order_id"]).to_numpy(float)

    orders = order_table(h)
    reasons = _reason_mismatches(orders)
    reasons = reasons[~reasons["order_id"].isin(per_order["order_id"])]  # the transition tells more
    violations = pd.concat([per_order, reasons], ignore_index=True)
    violations = violations.sort_values("sort", kind="stable").drop_duplicates("order_id")
    in_events = orders["in_events"].to_numpy()
    return from_violations(
        h,
        violations,
        checked=int(in_events.sum()),
        counts={
            "events": n,
            "illegal_transitions": int(illegal.sum()),
            "duplicate_event_ids": int(duplicate.sum()),
            "entries_without_order_id": int(no_order.sum()),
            "bad_cancel_reasons": len(reasons),
            "in_flight": int((in_events & ~orders["terminal"].to_numpy()).sum()),
        },
    )


def _why_rows(
    h: History,
    rows: np.ndarray,
    prev: np.ndarray,
    types: np.ndarray,
    no_order: np.ndarray,
    no_eid: np.ndarray,
    first_ids: np.ndarray,
) -> list[str]:
    """Why each bad row (`rows`) is bad, the most telling reason first; `first_ids[i]` is the
    stream id of the first row with the event_id of `rows[i]`."""
    assert h.events is not None
    ids = h.text("events", "id", rows)
    raw_types = h.events["type"].to_numpy(dtype=object)
    eids = h.text("events", "event_id", rows)
    out = []
    for i, r in enumerate(rows.tolist()):
        where = f" at {ids[i]}"
        p, t = int(prev[r]), int(types[r])
        name = TYPES[t] if t < OTHER else None
        if no_order[r]:
            out.append(f"entry without order_id{where}")
        elif no_eid[r]:
            out.append(f"entry without event_id{where}")
        elif ALLOWED[p, t]:
            out.append(f"duplicate event_id {eids[i]!r}{where} (first at {first_ids[i]})")
        elif name is None:
            out.append(f"unknown event type {raw_types[r]!r}{where}")
        elif p == START:
            out.append(f"first event is {name}, not OrderPlaced{where}")
        elif p == t:
            out.append(f"a second {name}{where}")
        elif p == _C["OrderCancelled"]:
            out.append(f"{name} after the terminal OrderCancelled{where}")
        elif p == _C["OrderCompleted"]:
            out.append(f"{name} after the terminal OrderCompleted{where}")
        elif p == _C["NotificationSent"]:
            out.append(f"{name} after NotificationSent, the last event of a completed order{where}")
        else:
            before = TYPES[p] if p < OTHER else "an unknown event"
            out.append(f"illegal transition {before} -> {name}{where}")
    return out


def _reason_mismatches(orders: pd.DataFrame) -> pd.DataFrame:
    cancelled = orders[orders["cancelled"]].set_index("order_id")
    reason = cancelled["reason"].to_numpy(dtype=object)
    declined = cancelled["n_PaymentDeclined"].to_numpy() > 0
    reserved = cancelled["n_InventoryReserved"].to_numpy() > 0
    technical = ~np.isin(reason.astype(str), sorted(BUSINESS_REASONS))
    wrong = np.where(
        declined & (reason != "payment_declined"),
        "cancelled after PaymentDeclined with reason {!r}, not 'payment_declined'",
        np.where(
            ~declined & (reason == "payment_declined"),
            "cancelled with reason {!r} but there is no PaymentDeclined",
            np.where(
                reserved & (reason == "out_of_stock"),
                "cancelled with reason {!r} after its stock was reserved",
                np.where(
                    technical,
                    "cancelled with reason {!r}, which is no business reason: an accepted order "
                    "lost to a technical failure (an outage must pause an order, not cancel it)",
                    "",
                ),
            ),
        ),
    )
    hit = np.flatnonzero(wrong != "")
    return pd.DataFrame(
        {
            "order_id": cancelled.index[hit].to_numpy(dtype=object),
            "why": [wrong[i].format(reason[i]) for i in hit],
            "sort": cancelled["pos_OrderCancelled"].to_numpy(float)[hit],
            "severity": np.ones(len(hit)),
        }
    )


@invariant("exactly_one_confirmation", "Exactly one confirmation")
def exactly_one_confirmation(h: History) -> InvariantResult:
    """Every completed order has exactly one NotificationSent event and exactly one entry in
    notifications:sent; an order that did not complete has neither."""
    h.require("events")
    orders = order_table(h)
    u = universe(h)
    completed = orders["completed"].to_numpy()
    sent = orders["n_NotificationSent"].to_numpy()
    in_events = orders["in_events"].to_numpy()
    unknown: list[str] = []
    entries = np.zeros(len(orders), dtype=np.int64)
    if h.notifications is None:
        unknown.append(h.missing.get("notifications", f"{keys.NOTIFICATIONS} is missing"))
    else:
        own = u.codes["notifications"]
        entries = np.bincount(own[own >= 0], minlength=len(orders))
    status = np.where(orders["terminal_type"].isna(), "is still in flight", "was cancelled")
    problems = [
        (completed & (sent == 0), lambda i: "completed without a NotificationSent event", 3),
        (completed & (sent > 1), lambda i: f"completed with {sent[i]} NotificationSent events", 3),
        (~completed & (sent > 0), lambda i: f"NotificationSent for an order that {status[i]}", 3),
    ]
    if h.notifications is not None:
        problems += [
            (
                completed & (entries == 0),
                lambda i: "completed but no entry in notifications:sent",
                2,
            ),
            (
                completed & (entries > 1),
                lambda i: f"completed with {entries[i]} entries in notifications:sent",
                4,
            ),
            (
                in_events & ~completed & (entries > 0),
                lambda i: f"{keys.NOTIFICATIONS} has an entry for an order that {status[i]}",
                4,
            ),
            (
                ~in_events & (entries > 0),
                lambda i: f"{entries[i]} entries in notifications:sent for an order with no events",
                4,
            ),
        ]
    why = np.full(len(orders), None, dtype=object)
    rank = np.zeros(len(orders))
    for mask, text, r in problems:
        for i in np.flatnonzero(mask & (rank < r)):
            why[i], rank[i] = text(i), r
    bad = np.flatnonzero(rank > 0)
    when = orders["ts_OrderPlaced"].to_numpy(float)
    return from_violations(
        h,
        violation_frame(h, bad, why[bad], when[bad], rank[bad]),
        checked=int(in_events.sum()),
        counts={"completed": int(completed.sum()), "notifications": int(entries.sum())},
        unknown=unknown,
        context=lambda oids: {
            k: {"notifications": v} for k, v in entries_for(h, "notifications", oids).items()
        },
    )
