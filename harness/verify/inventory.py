"""Inventory conservation: stock is neither created nor destroyed, and what was sold was bought.

Why three sources: `inventory.json` is the service's final state, `inventory:ledger` is every
movement it made, and the events say which orders completed. Each is checked against the
others per SKU, so a lost release, a double commit or a reservation leaked by a crashed saga
shows up as a named SKU with the numbers that disagree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness import keys
from harness.verify.facts import order_table, sku_totals, universe
from harness.verify.history import History
from harness.verify.results import (
    InvariantResult,
    entries_for,
    from_violations,
    invariant,
    violation_frame,
)

__all__ = ["inventory_conservation", "ledger_replay"]

_STATE = ("seed", "available", "reserved", "sold")
_MOVES = ("reserve", "commit", "release")


@invariant("inventory_conservation", "Inventory conservation")
def inventory_conservation(h: History) -> InvariantResult:
    """Per SKU of history/inventory.json: seed = available + reserved + sold and none is
    negative; sold equals the quantities of completed orders (plus orders in flight already
    committed); reserved equals what orders in flight still hold (0 after a full drain); and
    replaying inventory:ledger from the seed gives the final state. Per order, the ledger holds
    at most one reserve, one commit and one release, commit or release only after a reserve,
    and never both."""
    h.require("inventory", "events")
    inv = h.inventory
    assert inv is not None
    expected, unreadable, holding = _expected_from_events(h)
    skus = inv.index.union(expected.index, sort=False)
    state = inv.reindex(skus).fillna(0).astype(np.int64)
    exp = expected.reindex(skus).fillna(0).astype(np.int64)
    rows: list[dict[str, Any]] = []

    def add(i: Any, why: str, rank: int, gap: float) -> None:
        rows.append({"sku": skus[i], "why": why, "rank": rank, "gap": abs(float(gap))})

    seed, avail, reserved, sold = (state[c].to_numpy() for c in _STATE)
    total = avail + reserved + sold
    for i in np.flatnonzero(seed != total):
        text = f"seed {seed[i]} != available {avail[i]} + reserved {reserved[i]} + sold {sold[i]}"
        add(i, f"{text} (= {total[i]})", 6, seed[i] - total[i])
    for col in _STATE:
        values = state[col].to_numpy()
        for i in np.flatnonzero(values < 0):
            add(i, f"{col} is negative: {values[i]}", 6, values[i])
    bought = exp["sold"].to_numpy()
    for i in np.flatnonzero(sold != bought):
        add(i, f"sold {sold[i]}, but completed orders bought {bought[i]}", 5, sold[i] - bought[i])
    held = exp["held"].to_numpy()
    for i in np.flatnonzero(reserved != held):
        what = f"orders in flight hold {held[i]}" if held[i] else "no order in flight holds any"
        add(i, f"reserved {reserved[i]}, but {what}", 4, reserved[i] - held[i])

    unknown: list[str] = []
    counts: dict[str, int] = {"skus": len(skus), "orders_holding_stock": holding}
    anomalies = pd.DataFrame(columns=["order_id", "why", "sort", "severity"])
    if h.inventory_ledger is None:
        missing = h.missing.get("inventory_ledger", f"{keys.INVENTORY_LEDGER} is missing")
        unknown.append(f"{missing}: the ledger replay was not checked")
    else:
        replay, anomalies, bad_items = ledger_replay(h)
        counts["ledger_entries"] = len(h.inventory_ledger)
        rep = replay.reindex(skus).fillna(0).astype(np.int64)
        r_reserved, r_sold = rep["reserved"].to_numpy(), rep["sold"].to_numpy()
        replayed = {"available": seed - r_reserved - r_sold, "reserved": r_reserved, "sold": r_sold}
        for col, want in replayed.items():
            have = state[col].to_numpy()
            for i in np.flatnonzero(want != have):
                text = f"replaying inventory:ledger gives {col} {want[i]}, the final state says {have[i]}"
                add(i, text, 3, want[i] - have[i])
        if bad_items:
            unknown.append(f"{bad_items} inventory:ledger entries have unreadable items")
    if unreadable:
        unknown.append(f"{unreadable} orders have unreadable OrderPlaced items")

    per_sku = pd.DataFrame(rows, columns=["sku", "why", "rank", "gap"])
    per_sku = per_sku.sort_values("rank", ascending=False, kind="stable").drop_duplicates("sku")
    per_sku = per_sku.join(state, on="sku")
    per_sku["expected_sold"] = exp["sold"].reindex(per_sku["sku"]).to_numpy()
    per_sku["expected_reserved"] = exp["held"].reindex(per_sku["sku"]).to_numpy()
    per_sku["sort"] = -per_sku["rank"].astype(float)
    per_sku["severity"] = per_sku["rank"] * 1e12 + per_sku["gap"]
    violations = pd.concat([per_sku.drop(columns=["rank", "gap"]), anomalies], ignore_index=True)
    return from_violations(
        h,
        violations,
        checked=len(skus),
        counts=counts,
        unknown=unknown,
        context=lambda oids: {
            k: {"inventory": v} for k, v in entries_for(h, "inventory_ledger", oids).items()
        },
    )


def _expected_from_events(h: History) -> tuple[pd.DataFrame, int, int]:
    """Per SKU: `sold` (completed orders' items, plus committed orders still in flight) and
    `held` (items of orders in flight that reserved and neither committed nor released); the
    number of orders with unreadable items, and of orders holding stock."""
    orders = order_table(h)
    completed = orders["completed"].to_numpy()
    in_flight = ~orders["terminal"].to_numpy()
    committed = orders["n_InventoryCommitted"].to_numpy() > 0
    reserved = orders["n_InventoryReserved"].to_numpy() > 0
    released = orders["n_InventoryReleased"].to_numpy() > 0
    sells = completed | (in_flight & committed)
    holds = in_flight & reserved & ~committed & ~released
    wanted = np.flatnonzero(sells | holds)
    totals, bad = sku_totals(
        h,
        orders["items"].to_numpy(dtype=object)[wanted],
        {"sold": sells[wanted].astype(float), "held": holds[wanted].astype(float)},
    )
    return totals, bad, int(holds.sum())


def ledger_replay(h: History) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Replay inventory:ledger: reserve moves stock available -> reserved, commit reserved ->
    sold, release reserved -> available, reject moves nothing. Returns per SKU the replayed
    reserved and sold, the per-order anomalies (violation rows), and how many entries had
    unreadable items."""
    h.require("inventory_ledger")
    led = h.inventory_ledger
    assert led is not None
    kind = led["kind"].to_numpy(dtype=object)
    idx = np.flatnonzero(np.isin(kind, _MOVES))
    moves = kind[idx]
    replay, bad = sku_totals(
        h,
        led["items"].to_numpy(dtype=object)[idx],
        {
            "reserved": np.where(moves == "reserve", 1.0, -1.0),
            "sold": (moves == "commit").astype(float),
        },
    )

    u = universe(h)
    code = u.codes["inventory_ledger"]
    valid = code >= 0
    n = len(u.ids)
    count = {k: np.bincount(code[valid & (kind == k)], minlength=n) for k in _MOVES}
    ts = pd.Series(led["_ts"].to_numpy(float)[valid]).groupby(code[valid]).min()
    first_ts = np.full(n, np.nan)
    first_ts[ts.index.to_numpy()] = ts.to_numpy() / 1000.0
    res, com, rel = count["reserve"], count["commit"], count["release"]
    checks = (
        (res > 1, lambda i: f"reserved {res[i]} times in inventory:ledger"),
        ((com > 0) & (res == 0), lambda i: "committed without a reserve in inventory:ledger"),
        ((rel > 0) & (res == 0), lambda i: "released without a reserve in inventory:ledger"),
        ((com > 0) & (rel > 0), lambda i: "both committed and released in inventory:ledger"),
        (com > 1, lambda i: f"committed {com[i]} times in inventory:ledger"),
        (rel > 1, lambda i: f"released {rel[i]} times in inventory:ledger"),
    )
    why = np.full(n, None, dtype=object)
    for mask, text in checks:
        for i in np.flatnonzero(mask & (why == None)):  # noqa: E711 (elementwise)
            why[i] = text(i)
    hit = np.flatnonzero(why != None)  # noqa: E711 (elementwise)
    anomalies = violation_frame(h, hit, why[hit], first_ts[hit], np.full(len(hit), 3e12))
    return replay, anomalies, bad
