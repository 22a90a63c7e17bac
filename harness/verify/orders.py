"""No lost order, no phantom order: the client ledger against the streams, in both directions.

Why both: the client ledger is what clients were told, the streams are what the system did,
and neither is trusted alone (Jepsen's two-sided history). A lost order is one a client was
told was accepted that the system never finished; a phantom is one the system has that no
client asked for, or that a client was definitely refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import keys
from harness.verify.facts import client_table, drain_deadline, order_table, universe
from harness.verify.history import History
from harness.verify.results import InvariantResult, from_violations, invariant, violation_frame

__all__ = ["no_lost_order", "no_phantom_order"]

# Parts that name orders, as the counter-examples call them.
_WHERE = {
    "events": keys.EVENTS,
    "payments": keys.PAYMENTS_LEDGER,
    "inventory_ledger": keys.INVENTORY_LEDGER,
    "notifications": keys.NOTIFICATIONS,
    "temporal": "Temporal",
}


@invariant("no_lost_order", "No lost order")
def no_lost_order(h: History) -> InvariantResult:
    """Every order a client was told was accepted (any attempt of its idempotency key answered
    ok) has its OrderPlaced and reaches a terminal event: OrderCompleted, or OrderCancelled with
    every done step undone; by the drain deadline when run.json gives one."""
    h.require("ledger", "events")
    clients = client_table(h)
    orders = order_table(h)
    accepted = (clients["outcome"] == "ok").to_numpy()
    placed = orders["n_OrderPlaced"].to_numpy() > 0
    terminal = orders["terminal"].to_numpy()
    whole = orders["whole"].to_numpy()
    deadline, deadline_how = drain_deadline(h)
    done_s = orders["terminal_ts"].to_numpy(float) / 1000.0
    late = accepted & whole & (done_s > deadline) if deadline is not None else accepted & False
    lost = accepted & ~placed
    stuck = accepted & placed & ~terminal
    half = accepted & placed & terminal & ~whole
    sent = clients["first_sent_at"].to_numpy(float)
    rows = []
    last_type, last_id = orders["last_type"].to_numpy(), orders["last_id"].to_numpy()
    kinds = (
        (lost, 4, lambda i: "client told accepted; no OrderPlaced in orders:events"),
        (
            stuck,
            3,
            lambda i: (
                f"client told accepted; placed but never terminal (last event {last_type[i]} at {last_id[i]})"
            ),
        ),
        (half, 2, lambda i: _half_done(orders, i)),
        (
            late,
            1,
            lambda i: (
                f"reached {orders['terminal_type'].iat[i]} {done_s[i] - deadline:.1f} s after the drain deadline ({deadline_how})"
            ),
        ),
    )
    for mask, rank, text in kinds:
        at = np.flatnonzero(mask)
        # Worst: an order never placed, then one never finished; the oldest first.
        severity = rank * 1e10 - np.nan_to_num(sent[at], nan=0.0)
        rows.append(violation_frame(h, at, [text(i) for i in at], sent[at], severity))
    violations = pd.concat(rows, ignore_index=True).drop_duplicates("order_id")
    return from_violations(
        h,
        violations,
        checked=int(accepted.sum()),
        counts={
            "accepted": int(accepted.sum()),
            "not_placed": int(lost.sum()),
            "not_terminal": int(stuck.sum()),
            "not_compensated": int(half.sum()),
            "late": int(late.sum()),
        },
        notes=[] if deadline is not None else [deadline_how],
        metrics={"drain_deadline": deadline} if deadline is not None else {},
    )


def _half_done(orders: pd.DataFrame, i: int) -> str:
    row = orders.iloc[i]
    missing = []
    if row["n_InventoryReserved"] > 0 and row["n_InventoryReleased"] == 0:
        missing.append("InventoryReserved was never released")
    if row["n_PaymentCaptured"] > 0 and row["n_PaymentRefunded"] == 0:
        missing.append("PaymentCaptured was never refunded")
    return "cancelled without its compensation: " + "; ".join(missing or ["incomplete"])


@invariant("no_phantom_order", "No phantom order")
def no_phantom_order(h: History) -> InvariantResult:
    """Every order in the streams (and every OrderSaga workflow) was asked for by a client
    request: its id is `order_id_for` of a ledger idempotency key. An order whose requests were
    all definitely refused does not exist. An order whose outcome is unknown may exist or not;
    if it exists it is whole (completed, or cancelled and compensated). An order that exists
    carries the body its client sent (amount_cents, currency, customer_id), and no answer
    named another order id than the key's."""
    h.require("ledger", "events")
    u = universe(h)
    clients = client_table(h)
    orders = order_table(h)
    n = len(u.ids)
    present = np.zeros(n, dtype=bool)
    found: dict[str, np.ndarray] = {}
    for part in _WHERE:
        if part in u.codes:
            seen = np.zeros(n, dtype=bool)
            own = u.codes[part]
            seen[own[own >= 0]] = True
            found[part] = seen
            present |= seen
    asked = clients["asked"].to_numpy()
    outcome = clients["outcome"].to_numpy(dtype=object)
    in_events = orders["n_events"].to_numpy() > 0
    whole = orders["whole"].to_numpy()
    last_type = orders["last_type"].to_numpy(dtype=object)
    answered = clients["answered_order_id"].to_numpy(dtype=object)

    def where(i: int) -> str:
        return ", ".join(_WHERE[p] for p, seen in found.items() if seen[i])

    maybe = outcome == "unknown"
    checks = (
        (present & ~asked, 5, lambda i: f"no client asked for it; found in {where(i)}"),
        (
            present & (outcome == "failed"),
            4,
            lambda i: f"every request for it was refused, yet it is in {where(i)}",
        ),
        (
            np.array([isinstance(a, str) for a in answered], dtype=bool),
            3,
            lambda i: (
                f"an answer named order {answered[i]}, but order_id_for(idempotency key) is {u.ids[i]}"
            ),
        ),
        (
            maybe & in_events & ~whole,
            2,
            lambda i: (
                f"request outcome unknown and the order exists but is not whole (last event {last_type[i]})"
            ),
        ),
    )
    when = np.fmin(
        clients["first_sent_at"].to_numpy(float), orders["ts_OrderPlaced"].to_numpy(float) / 1000.0
    )
    rows = []
    for mask, rank, text in checks:
        at = np.flatnonzero(mask)
        rows.append(
            violation_frame(
                h, at, [text(i) for i in at], when[at], rank * 1e10 - np.nan_to_num(when[at])
            )
        )
    mismatched, why = _body_mismatches(h, orders)
    rows.append(
        violation_frame(
            h, mismatched, why, when[mismatched], 3e10 - np.nan_to_num(when[mismatched])
        )
    )
    violations = pd.concat(rows, ignore_index=True)
    violations = violations.sort_values("severity", ascending=False, kind="stable")
    violations = violations.drop_duplicates("order_id")
    return from_violations(
        h,
        violations,
        checked=int(present.sum()),
        counts={
            "orders_in_streams": int(present.sum()),
            "requests": int(asked.sum()),
            "refused": int((outcome == "failed").sum()),
            "unknown_outcome": int(maybe.sum()),
            "unknown_outcome_present": int((maybe & present).sum()),
            "unknown_outcome_absent": int((maybe & ~present).sum()),
        },
    )


def _body_mismatches(h: History, orders: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Codes of orders whose OrderPlaced differs from every body their clients sent (a refused
    attempt, e.g. a 409 for a reused key with another body, is not what was ordered)."""
    ledger = h.ledger
    assert ledger is not None
    code = universe(h).codes["ledger"]
    placed = orders["n_OrderPlaced"].to_numpy() > 0
    use = (code >= 0) & (ledger["outcome"].to_numpy(dtype=object) != "failed")
    use[use] = placed[code[use]]
    rows = np.flatnonzero(use)
    c = code[rows]
    match = np.ones(len(rows), dtype=bool)
    diffs: dict[int, list[str]] = {}
    for field, column in (
        ("amount_cents", "_amount_cents"),
        ("currency", "currency"),
        ("customer_id", "customer_id"),
    ):
        asked = ledger[column].to_numpy()[rows]
        got = orders[field].to_numpy()[c]
        if field == "amount_cents":
            differ = ~np.isnan(asked) & ~np.isnan(got) & (asked != got)
        else:
            known = np.array([isinstance(a, str) for a in asked], dtype=bool) & np.array(
                [isinstance(g, str) for g in got], dtype=bool
            )
            differ = known & (asked != got)
        match &= ~differ
        for j in np.flatnonzero(differ).tolist():
            diffs.setdefault(j, []).append(
                f"{field} {_plain(got[j])!r} where the client sent {_plain(asked[j])!r}"
            )
    any_match = np.bincount(c[match], minlength=len(orders)) > 0
    tried = np.bincount(c, minlength=len(orders)) > 0
    bad = np.flatnonzero(tried & ~any_match)
    first: dict[int, int] = {}
    for j in np.flatnonzero(~match).tolist():
        first.setdefault(int(c[j]), j)
    why = [
        "OrderPlaced is not what the client asked for: " + "; ".join(diffs[first[i]])
        for i in bad.tolist()
    ]
    return bad, why


def _plain(value: object) -> object:
    """A value as a reader expects it: 2000, not np.float64(2000.0)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
