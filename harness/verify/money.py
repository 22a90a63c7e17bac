"""Exactly-once money: the payment provider's own ledger against what the orders became.

Why the ledger and not the events: `payments:ledger` is written by the payment-service as it
moves money, so a capture the saga never recorded (a retried charge with a lost answer)
still shows there. Net captured money per order must equal the order's amount if it
completed and zero if it was cancelled; no order is captured or refunded twice; and the
PaymentCaptured / PaymentRefunded / PaymentDeclined events agree with the ledger. A price
correction (a reprocess: system_under_test/reprocess) refunds part of a completed order's amount:
its `adjustment` entries must add up to the order's PriceCorrected events, and the net is the
amount less those corrections (whether each correction was due is reprocessed_exactly_once's
question).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.verify.facts import fields_at, order_table, universe
from harness.verify.frames import floats, object_frame
from harness.verify.history import History
from harness.verify.results import (
    InvariantResult,
    entries_for,
    from_violations,
    invariant,
    violation_frame,
)

__all__ = ["exactly_once_money", "payment_totals"]

_KINDS = ("capture", "refund", "decline", "adjustment")


def payment_totals(h: History) -> pd.DataFrame:
    """Per order code: n_capture, n_refund, n_decline, n_adjustment, n_other entries of
    payments:ledger, captured, refunded and adjusted cents, the first capture's amount and
    payment_id, first ts (ms)."""
    h.require("payments")
    pay = h.payments
    assert pay is not None
    u = universe(h)
    n = len(u.ids)
    code = u.codes["payments"]
    valid = code >= 0
    kind = pay["kind"].to_numpy(dtype=object)
    amount = pay["_amount_cents"].to_numpy(float)
    data: dict[str, Any] = {}
    known = np.zeros(len(pay), dtype=bool)
    for name in _KINDS:
        hit = valid & (kind == name)
        known |= hit
        data[f"n_{name}"] = np.bincount(code[hit], minlength=n)
    data["n_other"] = np.bincount(code[valid & ~known], minlength=n)
    for name, column in (
        ("capture", "captured"),
        ("refund", "refunded"),
        ("adjustment", "adjusted"),
    ):
        hit = valid & (kind == name)
        data[column] = np.bincount(code[hit], weights=np.nan_to_num(amount[hit]), minlength=n)
    cap = np.flatnonzero(valid & (kind == "capture"))
    owners, first = np.unique(code[cap], return_index=True)
    data["capture_amount"] = np.full(n, np.nan)
    data["capture_amount"][owners] = amount[cap[first]]
    data["capture_payment_id"] = np.full(n, None, dtype=object)
    data["capture_payment_id"][owners] = pay["payment_id"].to_numpy(dtype=object)[cap[first]]
    ts = pd.Series(pay["_ts"].to_numpy(float)[valid]).groupby(code[valid]).min()
    data["first_ts"] = np.full(n, np.nan)
    data["first_ts"][ts.index.to_numpy()] = ts.to_numpy()
    return object_frame(data)


def _corrections(h: History, n: int) -> np.ndarray:
    """Per order code, the cents its PriceCorrected events say were refunded."""
    out = np.zeros(n)
    typed = h.typed("PriceCorrected")
    if len(typed) and "refund_cents" in typed:
        codes = universe(h).codes["events"][typed.index.to_numpy()]
        np.add.at(out, codes, np.nan_to_num(floats(typed["refund_cents"].to_numpy(dtype=object))))
    return out


@invariant("exactly_once_money", "Exactly-once money")
def exactly_once_money(h: History) -> InvariantResult:
    """Per order, from payments:ledger: at most one capture and one refund, no refund without
    a capture, never both a capture and a decline; net captured (captures - refunds - price
    corrections) equals the OrderPlaced amount less its PriceCorrected refunds if the order
    completed and 0 if it was cancelled, and the ledger's corrections add up to the events'
    (orders still in flight are only held to the at-most-once rules); no money moves for an order never placed; and
    for terminal orders the PaymentCaptured, PaymentRefunded and PaymentDeclined events exist
    exactly when the ledger has the matching entry, with the same amount and payment_id."""
    h.require("payments", "events")
    t = payment_totals(h)
    o = order_table(h)
    n_cap, n_ref, n_dec, n_adj = (t[f"n_{k}"].to_numpy() for k in _KINDS)
    captured, refunded = t["captured"].to_numpy(), t["refunded"].to_numpy()
    adjusted, corrected = t["adjusted"].to_numpy(), _corrections(h, len(o))
    net = captured - refunded - adjusted
    placed = o["n_OrderPlaced"].to_numpy() > 0
    completed = o["completed"].to_numpy()
    cancelled = o["cancelled"].to_numpy() & ~completed
    terminal = completed | cancelled
    amount = o["amount_cents"].to_numpy(float)
    has = {
        e: o[f"n_{e}"].to_numpy() > 0
        for e in ("PaymentCaptured", "PaymentRefunded", "PaymentDeclined")
    }
    problems: list[tuple[np.ndarray, Any, int]] = [
        (n_cap > 1, lambda i: f"captured {n_cap[i]} times in payments:ledger", 6),
        (n_ref > 1, lambda i: f"refunded {n_ref[i]} times in payments:ledger", 6),
        (
            ~placed & (net != 0),
            lambda i: f"{net[i]:.0f} cents captured for an order never placed",
            6,
        ),
        (
            adjusted != corrected,
            lambda i: (
                f"price corrections of {adjusted[i]:.0f} cents in payments:ledger, but "
                f"PriceCorrected events of {corrected[i]:.0f}"
            ),
            6,  # before the net: it explains it
        ),
        (
            completed & placed & (net != amount - corrected),
            lambda i: (
                f"completed, but net captured is {net[i]:.0f} cents where OrderPlaced says "
                f"{amount[i]:.0f}"
                + (f" less {corrected[i]:.0f} of price corrections" if corrected[i] else "")
            ),
            6,
        ),
        (
            cancelled & (net != 0),
            lambda i: (
                (
                    f"cancelled, but {net[i]:.0f} cents stay captured"
                    if net[i] > 0
                    else f"cancelled, and {-net[i]:.0f} cents more refunded than captured"
                )
                + f" (captured {captured[i]:.0f}, refunded {refunded[i]:.0f})"
            ),
            6,
        ),
        (
            (n_ref > 0) & (n_cap == 0),
            lambda i: f"refunded {refunded[i]:.0f} cents without any capture",
            5,
        ),
        ((n_cap > 0) & (n_dec > 0), lambda i: "both captured and declined in payments:ledger", 4),
    ]
    for event, entries, kind in (
        ("PaymentCaptured", n_cap, "capture"),
        ("PaymentRefunded", n_ref, "refund"),
        ("PaymentDeclined", n_dec, "decline"),
    ):
        problems.append(
            (
                terminal & has[event] & (entries == 0),
                lambda i, e=event, k=kind: f"{e} event but no {k} in payments:ledger",
                3,
            )
        )
        problems.append(
            (
                terminal & ~has[event] & (entries > 0),
                lambda i, e=event, k=kind: f"a {k} in payments:ledger but no {e} event",
                3,
            )
        )
    both = has["PaymentCaptured"] & (n_cap > 0)
    rows = np.where(both, o["pos_PaymentCaptured"].to_numpy(), -1)
    captured_fields = fields_at(h, "PaymentCaptured", ("amount_cents", "payment_id"), rows)
    ev_amount = floats(captured_fields["amount_cents"])
    ev_payment = captured_fields["payment_id"]
    cap_amount = t["capture_amount"].to_numpy(float)
    cap_id = t["capture_payment_id"].to_numpy(dtype=object)
    problems.append(
        (
            both & ~np.isnan(ev_amount) & (ev_amount != cap_amount),
            lambda i: (
                f"PaymentCaptured says {ev_amount[i]:.0f} cents, payments:ledger captured {cap_amount[i]:.0f}"
            ),
            3,
        )
    )
    named = np.array([isinstance(p, str) for p in ev_payment], dtype=bool)
    problems.append(
        (
            both & named & (ev_payment != cap_id),
            lambda i: (
                f"PaymentCaptured names {ev_payment[i]}, payments:ledger captured {cap_id[i]}"
            ),
            2,
        )
    )
    why = np.full(len(o), None, dtype=object)
    rank = np.zeros(len(o))
    for mask, text, r in problems:
        for i in np.flatnonzero(mask & (rank < r)):
            why[i], rank[i] = text(i), r
    bad = np.flatnonzero(rank > 0)
    when = np.fmin(o["ts_OrderPlaced"].to_numpy(float), t["first_ts"].to_numpy(float))
    gap = np.abs(np.where(completed, net - np.nan_to_num(amount), net))
    violations = violation_frame(
        h, bad, why[bad], when[bad], rank[bad] * 1e12 + np.nan_to_num(gap[bad])
    )
    in_flight = int((placed & ~terminal).sum())
    moved = (n_cap + n_ref + n_dec + n_adj + t["n_other"].to_numpy()) > 0
    return from_violations(
        h,
        violations,
        checked=int((placed | moved).sum()),
        counts={
            "orders_with_payments": int(moved.sum()),
            "captures": int(n_cap.sum()),
            "refunds": int(n_ref.sum()),
            "declines": int(n_dec.sum()),
            "adjustments": int(n_adj.sum()),
            "in_flight": in_flight,
        },
        notes=[f"{in_flight} orders still in flight: only the at-most-once rules apply"]
        if in_flight
        else [],
        context=lambda oids: {
            k: {"payments": v} for k, v in entries_for(h, "payments", oids).items()
        },
    )
