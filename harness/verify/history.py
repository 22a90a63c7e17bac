"""The recorded history of one run: what clients were told and what the system wrote.

Why this shape: every invariant is a vectorised group-by over a few columns of each part, so
each part is a pandas frame of just the columns the checks read (`CORE_FIELDS`), built once at
load; the full maps as read stay in `History.raw`, for counter-examples (which quote entries
exactly) and for `wide()`, the frame of every field, built on demand. A history is read from a
run folder's snapshot (`reader.load_snapshot`) or from a live stack (`snapshot.load_live`); both end
in `assemble_history`, so one history gives one verdict whichever way it was read.

Conventions: a stream frame has `id` (the stream id) and `_ts` (the `ts` field as a number);
its rows are in stream order. Record frames (ledger, temporal, readmodel, faults) hold values
as parsed, plus `_<name>` float columns for their times. A part that could not be read is
`None` and named in `History.missing` with the reason; checks that need it report `unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.ids import order_ids_for
from harness.verify.fields import CORE_FIELDS, NUMERIC_FIELDS, PART_FILES, STREAM_PARTS
from harness.verify.frames import (
    core_frame,
    floats,
    integers,
    inventory_frame,
    records_frame,
    stream_frame,
)
from harness.verify.texts import Texts
from harness.verify.values import no_gc

__all__ = [
    "History",
    "KeptEvents",
    "MissingPartError",
    "StreamEntries",
    "assemble_history",
    "build_history",
    "derive_columns",
    "part_frame",
    "set_histories",
]

# Entries of these streams differ by this field: `wide()` gathers columns per value.
_GROUP_FIELD = {"events": "type", "payments": "kind", "inventory_ledger": "kind"}
_NUMERIC = NUMERIC_FIELDS
_RECORD_PARTS = ("ledger", "temporal", "readmodel", "faults")

# A stream as read: its entry ids and their field maps, in stream order.
StreamEntries = tuple[Sequence[str], Sequence[Mapping[str, str]]]


@dataclass(frozen=True)
class KeptEvents:
    """The `fields.EVENT_FIELDS` of one event type: its row numbers in orders:events (increasing) and
    per field its values there (None where absent); `maps` instead when every field is kept."""

    rows: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    maps: Sequence[Mapping[str, Any]] | None = None


class MissingPartError(Exception):
    """A check needs a part of the history that could not be read (it becomes `unknown`)."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(reason)
        self.part = part
        self.reason = reason


@dataclass(eq=False)
class History:
    """Everything the checks read. Frames are `None` when their part is missing (see `missing`)."""

    source: str = "snapshot"
    run: dict[str, Any] = field(default_factory=dict)
    events: pd.DataFrame | None = None
    payments: pd.DataFrame | None = None
    inventory_ledger: pd.DataFrame | None = None
    notifications: pd.DataFrame | None = None
    ledger: pd.DataFrame | None = None
    temporal: pd.DataFrame | None = None
    inventory: pd.DataFrame | None = None  # index sku; int columns seed, available, reserved, sold
    readmodel: pd.DataFrame | None = None
    faults: pd.DataFrame | None = None
    # Temporal's history of every workflow run: the snapshot's file, or the records (live,
    # tests); read only by the checks that need them (harness/verify/histories.py).
    histories: Path | Sequence[Mapping[str, Any]] | None = None
    raw: dict[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # part -> maps
    kept: dict[str, KeptEvents] = field(default_factory=dict)  # event type -> its kept fields
    # part -> column -> its texts, for the `fields.COMPACT_TEXTS` columns its frame does not hold
    texts: dict[str, dict[str, Texts]] = field(default_factory=dict)
    other_streams: dict[str, StreamEntries] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # part -> why it could not be read
    notes: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def require(self, *parts: str) -> None:
        """Raise MissingPartError for the first of `parts` that could not be read."""
        for part in parts:
            if getattr(self, part) is None:
                reason = self.missing.get(part) or f"{PART_FILES.get(part, part)} is missing"
                raise MissingPartError(part, reason)

    def cached(self, key: str, compute: Any) -> Any:
        """`compute()` once per history: facts shared by several checks are derived once."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def text(
        self, part: str, name: str, rows: np.ndarray | Sequence[int] | None = None
    ) -> np.ndarray:
        """Column `name` of `part` at `rows` (every row when None) as an object array: from
        `texts` when held there, else from the frame."""
        held = self.texts.get(part, {}).get(name)
        if held is not None:
            return held.at(rows)
        values = getattr(self, part)[name].to_numpy(dtype=object)
        return values if rows is None else values[np.asarray(rows, dtype=np.int64)]

    def text_codes(self, part: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per row of `part` a code shared by equal values of column `name` (-1 where missing,
        as `pd.factorize` gives), and where the value is None."""
        held = self.texts.get(part, {}).get(name)
        if held is not None:
            return held.codes(), held.none
        values = getattr(self, part)[name].to_numpy(dtype=object)
        return pd.factorize(values)[0], np.asarray(values == None, dtype=bool)  # noqa: E711

    def wide(self, part: str) -> pd.DataFrame:
        """`part` with every field of every row as a column (built on first use)."""
        self.require(part)
        maps = self.raw.get(part, ())
        maps = maps if isinstance(maps, list) else list(maps)  # maps read again from disk: once
        if part in STREAM_PARTS.values():
            return self.cached(
                f"wide:{part}",
                lambda: stream_frame(self.text(part, "id"), maps, _GROUP_FIELD.get(part)),
            )
        return self.cached(f"wide:{part}", lambda: _numbered(records_frame(maps), part))

    def typed(self, event_type: str) -> pd.DataFrame:
        """The `event_type` rows of orders:events (index: their row numbers), every field a column."""
        return self.cached(f"typed:{event_type}", lambda: self._typed(event_type))

    def _typed(self, event_type: str) -> pd.DataFrame:
        self.require("events")
        assert self.events is not None
        kept = self.kept.get(event_type)
        if kept is not None and kept.maps is not None:
            rows, maps = kept.rows, kept.maps
        else:
            rows = np.flatnonzero(self.events["type"].to_numpy(dtype=object) == event_type)
            maps = pick(self.raw["events"], rows)
        return records_frame(maps).set_axis(pd.Index(rows), axis=0)


def _numbered(frame: pd.DataFrame, part: str, keep: bool = True) -> pd.DataFrame:
    """`_NUMERIC` fields of `part` as `_<name>` number columns; without `keep`, in place of the
    values as read."""
    for name in _NUMERIC.get(part, ()):
        values = frame[name].to_numpy(dtype=object) if name in frame else [None] * len(frame)
        frame["_" + name] = integers(values) if name == "ts" else floats(values)
        if not keep and name in frame:
            del frame[name]
    return frame


def part_frame(
    part: str, maps: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """The frame of one part from its maps as read: `id` for a stream, the `CORE_FIELDS`
    columns with the `_NUMERIC` ones as numbers (every field for the few fault windows), and
    for the ledger `_order_id_for`, the order id each line's idempotency key names."""
    with no_gc():
        if part == "faults":
            return _numbered(records_frame(maps), part)
        frame = _numbered(core_frame(maps, CORE_FIELDS[part], ids=ids), part, keep=False)
    return derive_columns(part, frame)


def derive_columns(part: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns a part's frame has beyond its fields: for the ledger `_order_id_for`."""
    if part == "ledger":
        frame["_order_id_for"] = pd.Series(_key_order_ids(frame), dtype=object)
    return frame


def pick(maps: Sequence[Mapping[str, Any]], rows: np.ndarray) -> list[Mapping[str, Any]]:
    """The maps at `rows`: in one pass over the file for maps read again from disk."""
    many = getattr(maps, "pick", None)
    if many is not None:
        return list(many(rows))
    return [maps[i] for i in rows.tolist()]


def _key_order_ids(ledger: pd.DataFrame) -> np.ndarray:
    """Per ledger line, `order_id_for` of its idempotency key (None without a key)."""
    idem_keys = ledger["idempotency_key"].to_numpy(dtype=object)
    key_code, uniq = pd.factorize(idem_keys)
    derived = np.asarray(order_ids_for([str(k) for k in uniq]), dtype=object)
    out = np.full(len(idem_keys), None, dtype=object)
    known = key_code >= 0
    out[known] = derived[key_code[known]]
    return out


def assemble_history(
    *,
    source: str,
    run: Mapping[str, Any] | None,
    parts: Mapping[str, tuple[pd.DataFrame, Sequence[Mapping[str, Any]]]],
    inventory: Mapping[str, Mapping[str, Any]] | None,
    other_streams: Mapping[str, StreamEntries] | None = None,
    missing: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    run_dir: Path | None = None,
    kept: Mapping[str, KeptEvents] | None = None,
    texts: Mapping[str, dict[str, Texts]] | None = None,
) -> History:
    """A History from parts already built (`part -> (frame, maps as read)`, and the columns a
    frame lacks in `texts`). A part that is absent is missing: with the reason in `missing`, or
    "<file> is missing"."""
    h = History(source=source, run=dict(run or {}), run_dir=run_dir, missing=dict(missing or {}))
    h.kept.update(kept or {})
    h.texts.update(texts or {})
    h.notes.extend(notes)
    h.other_streams.update(other_streams or {})
    for part, (frame, maps) in parts.items():
        setattr(h, part, frame)
        h.raw[part] = maps
    if inventory is not None:
        h.inventory = inventory_frame(inventory)
    for part in (*STREAM_PARTS.values(), *_RECORD_PARTS, "inventory"):
        if getattr(h, part) is None:
            h.missing.setdefault(part, f"{PART_FILES[part]} is missing")
    return h


def build_history(
    *,
    source: str,
    run: Mapping[str, Any] | None,
    streams: Mapping[str, StreamEntries],
    ledger: Sequence[Mapping[str, Any]] | None,
    temporal: Sequence[Mapping[str, Any]] | None,
    inventory: Mapping[str, Mapping[str, Any]] | None,
    readmodel: Sequence[Mapping[str, Any]] | None,
    faults: Sequence[Mapping[str, Any]] | None,
    missing: Mapping[str, str] | None = None,
    notes: Sequence[str] = (),
    run_dir: Path | None = None,
    histories: Path | Sequence[Mapping[str, Any]] | None = None,
) -> History:
    """A History from the maps as read (the live reader, tests). A part given as None is
    missing (reason in `missing`)."""
    parts: dict[str, tuple[pd.DataFrame, Sequence[Mapping[str, Any]]]] = {}
    others: dict[str, StreamEntries] = {}
    for stream, (ids, maps) in streams.items():
        part = STREAM_PARTS.get(stream)
        if part is None:
            others[stream] = (ids, maps)
        else:
            parts[part] = (part_frame(part, maps, ids=ids), maps)
    records = (ledger, temporal, readmodel, faults)
    for part, rows in zip(_RECORD_PARTS, records, strict=True):
        if rows is not None:
            parts[part] = (part_frame(part, rows), rows)
    h = assemble_history(
        source=source,
        run=run,
        parts=parts,
        inventory=inventory,
        other_streams=others,
        missing=missing,
        notes=notes,
        run_dir=run_dir,
    )
    set_histories(h, histories)
    return h


def set_histories(h: History, histories: Path | Sequence[Mapping[str, Any]] | None) -> None:
    """Attach Temporal's histories (a file that exists, or records); else name them missing."""
    if isinstance(histories, Path) and not histories.exists():
        histories = None
    h.histories = histories
    if histories is None:
        h.missing.setdefault("histories", f"{PART_FILES['histories']} is missing")
    else:
        h.missing.pop("histories", None)
