"""Per-order facts derived once from the history, shared by the checks.

Why: every invariant asks the same questions (did this order complete, and when? what did
its client ask for, and what was it told?). Answering them once, over integer order codes
shared by every part of the history and with numpy instead of per-order Python, keeps a
million-event verify to seconds and makes every check agree on what "completed" or
"compensated" means.

`universe(h)` gives every order id the history mentions a code (the orders of orders:events
first, in order of appearance); `order_table(h)` and `client_table(h)` have one row per code,
so checks combine them with boolean masks instead of joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harness.verify.frames import floats, object_frame
from harness.verify.history import History, pick

__all__ = [
    "COMPENSATION_OF",
    "OTHER",
    "TERMINAL_TYPES",
    "TYPES",
    "EventCodes",
    "Universe",
    "client_table",
    "drain_deadline",
    "event_codes",
    "fields_at",
    "order_table",
    "sku_totals",
    "universe",
]

# Every event type of docs/events.md; a type outside this list is coded OTHER.
TYPES = (
    "OrderPlaced",
    "InventoryReserved",
    "PaymentCaptured",
    "PaymentDeclined",
    "InventoryCommitted",
    "OrderCompleted",
    "PaymentRefunded",
    "InventoryReleased",
    "OrderCancelled",
    "NotificationSent",
    "PriceCorrected",  # a reprocess's correction of a completed order (system_under_test/reprocess)
)
OTHER = len(TYPES)
TERMINAL_TYPES = ("OrderCompleted", "OrderCancelled")
# A cancelled order is whole when each step it did is undone: step -> its compensation.
COMPENSATION_OF = {"InventoryReserved": "InventoryReleased", "PaymentCaptured": "PaymentRefunded"}
_CODE = {t: i for i, t in enumerate(TYPES)}
_PARSE_BLOCK = 4096  # item texts parsed at a time (`_Items`)
_PLACED_FIELDS = ("customer_id", "amount_cents", "currency", "items", "idempotency_key")
# Where each part names its order.
_ORDER_COLUMN = {
    "payments": "order_id",
    "inventory_ledger": "order_id",
    "notifications": "order_id",
    "temporal": "workflow_id",
    "readmodel": "order_id",
}


@dataclass(frozen=True)
class Universe:
    """Every order id of the history as a code: `ids[code]`; per part, the code of each of its
    rows (`codes[part]`, -1 where a row names no order). Codes below `n_events` are the orders
    of orders:events, in order of first appearance."""

    ids: np.ndarray
    n_events: int
    codes: dict[str, np.ndarray]
    index: pd.Index

    def code_of(self, order_ids: Sequence[str]) -> np.ndarray:
        return self.index.get_indexer(list(order_ids))

    def rows_of(self, part: str, codes: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row numbers of `part` whose order is one of `codes`."""
        own = self.codes.get(part)
        if own is None or not len(codes):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(own, np.asarray(codes)))


def universe(h: History) -> Universe:
    return h.cached("universe", lambda: _universe(h))


def _universe(h: History) -> Universe:
    parts: list[tuple[str, np.ndarray]] = []
    if h.events is not None:
        ids = h.events["order_id"].to_numpy(dtype=object)
        missing = np.asarray(ids == None, dtype=bool)  # noqa: E711 (elementwise)
        parts.append(("events", np.where(missing, "", ids) if missing.any() else ids))
    if h.ledger is not None:
        parts.append(("ledger", h.ledger["_order_id_for"].to_numpy(dtype=object)))
    for part, column in _ORDER_COLUMN.items():
        frame = getattr(h, part)
        if frame is not None:
            parts.append((part, frame[column].to_numpy(dtype=object)))
    # As pd.factorize of all parts end to end (codes in order of first appearance, -1 for a
    # missing id), without its table of every row: the first part's ids are looked up by index
    # in each other part, and only the ids no part before named are coded anew.
    split: dict[str, np.ndarray] = {}
    known = np.zeros(0, dtype=object)
    index = pd.Index(known, dtype=object)
    for part, v in parts:
        codes = index.get_indexer(v) if len(known) else np.full(len(v), -1, dtype=np.int64)
        new = np.flatnonzero(codes < 0)
        if len(new):
            fresh, ids = pd.factorize(v[new])
            coded = fresh >= 0
            codes[new[coded]] = fresh[coded] + len(known)
            if len(ids):
                known = np.concatenate((known, np.asarray(ids, dtype=object)))
                index = pd.Index(known, dtype=object)
        split[part] = codes.astype(np.int64)
    events = split.get("events")
    n_events = int(events.max()) + 1 if events is not None and len(events) else 0
    return Universe(ids=known, n_events=n_events, codes=split, index=index)


@dataclass(frozen=True)
class EventCodes:
    """orders:events as integers: per row its order code and type (index into TYPES, OTHER for
    an unknown type). `by_order` lists rows grouped by order, in stream order within each
    order; `starts`/`ends` delimit the groups, and `group_order` is each group's order code."""

    order: np.ndarray
    type: np.ndarray
    by_order: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    group_order: np.ndarray


def event_codes(h: History) -> EventCodes:
    return h.cached("event_codes", lambda: _event_codes(h))


def _event_codes(h: History) -> EventCodes:
    h.require("events")
    assert h.events is not None
    order = universe(h).codes["events"]
    kinds, names = pd.factorize(h.events["type"].to_numpy(dtype=object), use_na_sentinel=False)
    lookup = np.array([_CODE.get(n, OTHER) if isinstance(n, str) else OTHER for n in names])
    types = lookup[kinds] if len(kinds) else np.zeros(0, dtype=np.int64)
    by_order = np.argsort(order, kind="stable")
    sorted_order = order[by_order]
    if len(sorted_order):
        bounds = np.flatnonzero(sorted_order[1:] != sorted_order[:-1]) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(sorted_order)]))
    else:
        starts = ends = np.zeros(0, dtype=np.int64)
    return EventCodes(
        order=order,
        type=types.astype(np.int64),
        by_order=by_order,
        starts=starts,
        ends=ends,
        group_order=sorted_order[starts] if len(starts) else np.zeros(0, dtype=np.int64),
    )


def fields_at(
    h: History, event_type: str, names: Sequence[str], rows: np.ndarray
) -> dict[str, np.ndarray]:
    """`names` of the events at row numbers `rows` that are of `event_type` (None for -1, for
    a row of another type, or where the event lacks the field). Read from the maps as parsed,
    all names in one pass: only the few fields the checks need, on the rows that have them."""
    out = {name: np.full(len(rows), None, dtype=object) for name in names}
    if not len(rows) or h.events is None or not names:
        return out
    types = h.events["type"].to_numpy(dtype=object)
    hit = np.flatnonzero(rows >= 0)
    hit = hit[types[rows[hit]] == event_type]
    kept = h.kept.get(event_type)
    if kept is not None and set(names) <= set(kept.columns):
        at = np.searchsorted(kept.rows, rows[hit])  # every row of that type is kept
        for name in names:
            out[name][hit] = kept.columns[name][at]
        return out
    picked = pick(h.raw["events"], rows[hit])
    try:
        values = list(map(itemgetter(*names), picked))
        columns = list(zip(*values, strict=True)) if len(names) > 1 else [values]
    except KeyError:
        columns = [[m.get(name) for m in picked] for name in names]
    if not picked:
        return out
    for name, column in zip(names, columns, strict=True):
        out[name][hit] = _objects(list(column))
    return out


def _objects(values: list[Any]) -> np.ndarray:
    return np.fromiter(values, dtype=object, count=len(values))


def order_table(h: History) -> pd.DataFrame:
    """One row per order code of `universe(h)` (see `_order_table` for the columns)."""
    return h.cached("order_table", lambda: _order_table(h))


def _order_table(h: History) -> pd.DataFrame:
    """Columns: order_id; in_events; n_<Type> (count), pos_<Type> (row of the first, -1),
    ts_<Type> (its ts ms, NaN), n_other, n_events, first_pos, last_pos, last_type, last_id;
    the OrderPlaced fields (customer_id, amount_cents as float, currency, items,
    idempotency_key); reason (of OrderCancelled); completed, cancelled, terminal,
    terminal_type, terminal_ts (ms); compensated (cancelled with every done step undone);
    whole (completed or compensated). Orders outside orders:events have no events."""
    codes = event_codes(h)
    u = universe(h)
    events = h.events
    assert events is not None
    n, k = len(u.ids), OTHER + 1
    ts = events["_ts"].to_numpy(dtype=float)
    comb = codes.order * k + codes.type
    counts = np.bincount(comb, minlength=n * k).reshape(n, k)
    uniq, first = np.unique(comb, return_index=True)
    flat_first = np.full(n * k, -1, dtype=np.int64)
    flat_first[uniq] = first
    first_pos = flat_first.reshape(n, k)
    data: dict[str, Any] = {"order_id": u.ids, "in_events": np.arange(n) < u.n_events}
    for i, name in enumerate(TYPES):
        pos = first_pos[:, i]
        data[f"n_{name}"] = counts[:, i]
        data[f"pos_{name}"] = pos
        data[f"ts_{name}"] = np.where(pos >= 0, ts[np.maximum(pos, 0)] if len(ts) else 0, np.nan)
    data["n_other"] = counts[:, OTHER]
    data["n_events"] = counts.sum(axis=1)
    first_row = np.full(n, -1, dtype=np.int64)
    last_row = np.full(n, -1, dtype=np.int64)
    first_row[codes.group_order] = codes.by_order[codes.starts]
    last_row[codes.group_order] = codes.by_order[codes.ends - 1]
    data["first_pos"], data["last_pos"] = first_row, last_row
    has = last_row >= 0
    last_type = np.full(n, None, dtype=object)
    last_id = np.full(n, None, dtype=object)
    last_type[has] = events["type"].to_numpy(dtype=object)[last_row[has]]
    last_id[has] = h.text("events", "id", last_row[has])
    data["last_type"], data["last_id"] = last_type, last_id
    data.update(fields_at(h, "OrderPlaced", _PLACED_FIELDS, first_pos[:, _CODE["OrderPlaced"]]))
    data["amount_cents"] = floats(data["amount_cents"])
    cancel = first_pos[:, _CODE["OrderCancelled"]]
    data["reason"] = fields_at(h, "OrderCancelled", ("reason",), cancel)["reason"]
    table = object_frame(data)
    completed = counts[:, _CODE["OrderCompleted"]] > 0
    cancelled = counts[:, _CODE["OrderCancelled"]] > 0
    table["completed"] = completed
    table["cancelled"] = cancelled
    table["terminal"] = completed | cancelled
    table["terminal_ts"] = np.fmin(data["ts_OrderCompleted"], data["ts_OrderCancelled"])
    done_first = completed & (
        ~cancelled | (data["pos_OrderCompleted"] < data["pos_OrderCancelled"])
    )
    terminal_type = np.full(n, None, dtype=object)
    terminal_type[cancelled] = "OrderCancelled"
    terminal_type[done_first] = "OrderCompleted"
    table["terminal_type"] = pd.Series(terminal_type, dtype=object)
    undone = np.ones(n, dtype=bool)
    for step, undo in COMPENSATION_OF.items():
        undone &= (counts[:, _CODE[step]] == 0) | (counts[:, _CODE[undo]] > 0)
    table["compensated"] = cancelled & undone
    table["whole"] = completed | (cancelled & undone)
    return table


def client_table(h: History) -> pd.DataFrame:
    """One row per order code of `universe(h)`: asked (some client request names it: its
    idempotency key maps to it), idempotency_key, attempts, n_ok, n_failed, n_unknown, outcome
    (ok when any attempt was told ok, failed when every attempt was definitely refused,
    unknown otherwise; None when not asked), first_sent_at, and answered_order_id (the order id
    an answer named, when it differs from `order_id_for` of the key)."""
    return h.cached("client_table", lambda: _client_table(h))


def _client_table(h: History) -> pd.DataFrame:
    h.require("ledger")
    ledger = h.ledger
    assert ledger is not None
    u = universe(h)
    n = len(u.ids)
    code = u.codes["ledger"]
    valid = code >= 0
    rows = np.flatnonzero(valid)
    c = code[rows]
    outcome = ledger["outcome"].to_numpy(dtype=object)[rows]
    attempts = np.bincount(c, minlength=n)
    n_ok = np.bincount(c[outcome == "ok"], minlength=n)
    n_failed = np.bincount(c[outcome == "failed"], minlength=n)
    sent = ledger["_sent_at"].to_numpy(float)[rows]
    first_sent = pd.Series(sent).groupby(c).min()
    first_sent_at = np.full(n, np.nan)
    first_sent_at[first_sent.index.to_numpy()] = first_sent.to_numpy()
    uniq, first_row = np.unique(c, return_index=True)
    keys = np.full(n, None, dtype=object)
    keys[uniq] = ledger["idempotency_key"].to_numpy(dtype=object)[rows[first_row]]
    named = ledger["order_id"].to_numpy(dtype=object)[rows]
    derived = u.ids[c]
    differs = np.array([isinstance(a, str) for a in named], dtype=bool) & (named != derived)
    answered = np.full(n, None, dtype=object)
    answered[c[differs]] = named[differs]
    asked = attempts > 0
    table = object_frame(
        {
            "asked": asked,
            "idempotency_key": keys,
            "attempts": attempts,
            "n_ok": n_ok,
            "n_failed": n_failed,
            "n_unknown": attempts - n_ok - n_failed,
            "first_sent_at": first_sent_at,
            "answered_order_id": answered,
        }
    )
    result = np.where(n_ok > 0, "ok", np.where(n_failed == attempts, "failed", "unknown"))
    outcomes = np.full(n, None, dtype=object)
    outcomes[asked] = result[asked]
    table["outcome"] = pd.Series(outcomes, dtype=object)
    if len(rows) != len(ledger):
        h.notes.append(f"{len(ledger) - len(rows)} client ledger lines have no idempotency_key")
    return table


class _Items:
    """Every distinct `items` JSON text seen in one history, parsed once: each text has a slot,
    its lines are `length[slot]` rows of the flat `sku` (codes into `names`) and `qty` arrays
    from `offset[slot]` (`length` -1: the text could not be read)."""

    def __init__(self) -> None:
        self.slot: dict[Any, int] = {}
        self.names: dict[str, int] = {}
        self.offset = np.zeros(0, dtype=np.int64)
        self.length = np.zeros(0, dtype=np.int64)
        self.sku = np.zeros(0, dtype=np.int64)
        self.qty = np.zeros(0, dtype=np.int64)

    def slots(self, texts: Sequence[Any]) -> np.ndarray:
        new = [t for t in texts if t not in self.slot]
        if new:
            self._add(new)
        get = self.slot.__getitem__
        return np.fromiter(map(get, texts), dtype=np.int64, count=len(texts))

    def _add(self, texts: list[Any]) -> None:
        """Parse `texts` a block at a time: all at once, their parsed lines (~1 KB a text) would
        be the verifier's peak at a million events."""
        lengths: list[np.ndarray] = [self.length]
        skus: list[np.ndarray] = [self.sku]
        qtys: list[np.ndarray] = [self.qty]
        names = self.names
        for start in range(0, len(texts), _PARSE_BLOCK):
            block_lengths, block_skus, block_qtys = _parse_all(texts[start : start + _PARSE_BLOCK])
            for sku in set(block_skus).difference(names):
                names[sku] = len(names)
            lengths.append(np.asarray(block_lengths, dtype=np.int64))
            skus.append(
                np.fromiter(map(names.__getitem__, block_skus), np.int64, count=len(block_skus))
            )
            qtys.append(np.asarray(block_qtys, dtype=np.int64))
        base = len(self.sku)
        added = np.concatenate(lengths[1:]) if len(lengths) > 1 else np.zeros(0, np.int64)
        size = np.maximum(added, 0)
        self.offset = np.concatenate((self.offset, base + np.cumsum(size) - size))
        self.length = np.concatenate(lengths)
        self.sku = np.concatenate(skus)
        self.qty = np.concatenate(qtys)
        first = len(self.slot)
        self.slot.update(zip(texts, range(first, first + len(texts)), strict=True))


def sku_totals(
    h: History, texts: Sequence[Any], weights: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, int]:
    """Per SKU, for each named weight: the sum over entries of weight x the quantity of that
    SKU in the entry's `items` JSON text; and how many entries had a text that could not be
    read. Each distinct text is parsed once per history (the same text recurs in an order's
    OrderPlaced and in each of its inventory:ledger entries)."""
    items: _Items = h.cached("items", _Items)
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object))
    slots = items.slots(list(uniq))
    length = items.length[slots]
    readable = length >= 0
    valid = codes >= 0
    bad = int((~valid).sum()) + int((~readable[codes[valid]]).sum())
    n_lines = np.where(readable, length, 0)
    total = int(n_lines.sum())
    owner = np.repeat(np.arange(len(uniq)), n_lines)
    within = np.arange(total) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    pick = np.repeat(items.offset[slots], n_lines) + within
    sku, qty = items.sku[pick], items.qty[pick].astype(float)
    names = np.empty(len(items.names), dtype=object)
    names[list(items.names.values())] = list(items.names)
    out = {}
    for name, weight in weights.items():
        per_text = np.bincount(codes[valid], weights=weight[valid], minlength=len(uniq))
        out[name] = np.bincount(sku, weights=qty * per_text[owner], minlength=len(names))
    seen = np.bincount(sku, minlength=len(names)) > 0
    frame = pd.DataFrame(out, index=pd.Index(names, dtype=object))[seen]
    return frame.round().astype(np.int64), bad


def _parse_all(texts: list[Any]) -> tuple[list[int], list[str], list[int]]:
    """The lines of every text: its number of lines (-1 when it is not a JSON list of
    {"sku", "qty"}), and the skus and quantities of all lines, text after text. Well-formed texts
    are read in one JSON array and their lines pulled out in C; anything odd falls back to one
    text at a time."""
    try:
        # Each text one JSON list, so joining them cannot move a boundary (checked in C).
        if set(map(type, texts)) != {str}:
            raise ValueError("not all text")
        if set(map(itemgetter(0), texts)) != {"["} or set(map(itemgetter(-1), texts)) != {"]"}:
            raise ValueError("not all JSON lists")
        values = orjson.loads("[" + ",".join(texts) + "]")
        if len(values) != len(texts) or set(map(type, values)) != {list}:
            raise ValueError("a text held several values")
        lines = [line for value in values for line in value]
        skus = list(map(itemgetter("sku"), lines))
        qtys = np.asarray(list(map(itemgetter("qty"), lines)), dtype=np.int64).tolist()
        if skus and set(map(type, skus)) != {str}:
            raise ValueError("a sku is not text")
        return list(map(len, values)), skus, qtys
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, IndexError):
        parsed = [_parse_items(text) for text in texts]
        return (
            [len(p[0]) if p else -1 for p in parsed],
            [sku for p in parsed if p for sku in p[0]],
            [qty for p in parsed if p for qty in p[1]],
        )


def _parse_items(text: Any) -> Any:
    """([sku, ...], [qty, ...]) or False when the text is not a JSON list of {"sku", "qty"}."""
    try:
        value = orjson.loads(text) if isinstance(text, str | bytes) else text
        return [str(line["sku"]) for line in value], [int(line["qty"]) for line in value]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return False


def drain_deadline(h: History) -> tuple[float | None, str]:
    """When every accepted order must be terminal (epoch seconds), and how that was found.

    run.json's `drain_deadline_s` counts from the end of the load: the `ended_at` of its last
    phase named "load", else the last client answer in the ledger. Without it: no deadline."""
    limit = h.run.get("drain_deadline_s")
    if not isinstance(limit, int | float) or isinstance(limit, bool):
        return None, "run.json gives no drain_deadline_s: a terminal event at any time counts"
    phases = h.run.get("phases") if isinstance(h.run.get("phases"), list) else []
    ends: list[float] = [
        float(p["ended_at"])
        for p in phases or []
        if isinstance(p, dict)
        and p.get("name") == "load"
        and isinstance(p.get("ended_at"), int | float)
    ]
    if ends:
        return float(ends[-1]) + float(limit), f"load ended at {ends[-1]} + {limit} s"
    if h.ledger is not None and len(h.ledger):
        last = float(
            np.nanmax(h.ledger[["_sent_at", "_answered_at"]].to_numpy(float), initial=-np.inf)
        )
        last = last if np.isfinite(last) else float("nan")
        if last == last:
            return float(last) + float(limit), f"last client answer at {last:.3f} + {limit} s"
    return None, "run.json has drain_deadline_s but no load phase end: no deadline applied"
