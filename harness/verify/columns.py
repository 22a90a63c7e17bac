"""A part's frame built from its maps a slice at a time, in as few bytes as the values allow.

Why: the maps of a million events take ~1 KB each, the columns the checks read a few dozen
bytes, if each repeated text is held once. So a part is read in slices (`chunks.py`), the
`CORE_FIELDS` of each slice are pulled out, and its maps dropped. A column whose values repeat
(an event type, an order id, a ledger kind) is held as integer codes into its distinct texts;
a column of values that are each new (a stream id, an event id) as they are, but while it is
being read (and when it crosses processes) as ASCII bytes in one numpy array per slice
(`Texts`, ~16-47 bytes a value instead of a ~70-100 byte str object, and no small objects left
between the freed maps of a slice). The frame is the
one `history.part_frame` builds from all the maps at once, value for value: texts are only
shared when they are equal texts; a number column whose slices did not all convert the same
way is converted again from the whole column. Packed (codes and distinct texts), a frame
crosses from the reader process to the verifier cheaply (`reader.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.verify.frames import column, numbers, object_frame
from harness.verify.history import (
    COMPACT_TEXTS,
    CORE_FIELDS,
    EVENT_FIELDS,
    NUMERIC_FIELDS,
    KeptEvents,
    derive_columns,
)
from harness.verify.texts import Texts

__all__ = [
    "ORDER_COLUMNS",
    "KeptFields",
    "ObjectColumn",
    "PartColumns",
    "unpack",
    "unpack_frame",
    "unpack_part",
]

_SHARED = 0.5  # a column is coded when its first slice has at most this share of distinct values
# The column naming each row's order: always coded, and its texts shared by every part once
# unpacked (an order id recurs in ~9 rows of a history, in 7 parts).
ORDER_COLUMNS = {
    "events": "order_id",
    "payments": "order_id",
    "inventory_ledger": "order_id",
    "notifications": "order_id",
    "temporal": "workflow_id",
    "readmodel": "order_id",
    "ledger": "order_id",
}


class ObjectColumn:
    """One object column, a slice at a time: codes into its distinct texts while its values
    repeat and are texts (or None), else the values as they are (as `Texts` while they can
    be)."""

    def __init__(self, coded: bool = False) -> None:
        self._codes: list[np.ndarray] | None = []
        self._table: dict[str, int] = {}
        self._values: list[np.ndarray | Texts] = []
        self._texts = True  # every slice of values so far is held as Texts
        self._decided = coded  # `coded`: codes whatever the share of distinct values

    def add(self, values: np.ndarray) -> None:
        if self._codes is not None:
            codes = self._code(values)
            if codes is not None:
                self._codes.append(codes)
                return
            self._to_values()
        texts = Texts.of(values) if self._texts else None
        self._texts = texts is not None
        self._values.append(values if texts is None else texts)

    def _code(self, values: np.ndarray) -> np.ndarray | None:
        """`values` as codes into the table, or None when they cannot be (not all texts)."""
        try:
            codes, uniques = pd.factorize(values)
        except TypeError:  # unhashable values
            return None
        if not self._decided:
            self._decided = True
            if len(uniques) > _SHARED * len(values):
                return None  # values that are each new: codes would save nothing
        if len(uniques) and set(map(type, uniques)) != {str}:
            return None
        missing = codes < 0
        if missing.any() and any(v is not None for v in values[missing]):
            return None  # a NaN is no None
        if not len(uniques):
            return np.full(len(values), -1, dtype=np.int32)
        table = self._table
        lookup = np.fromiter(
            (table.setdefault(u, len(table)) for u in uniques), dtype=np.int32, count=len(uniques)
        )
        return np.where(missing, -1, lookup[codes]).astype(np.int32)

    def _to_values(self) -> None:
        """From codes to values, for the rest of the column."""
        if self._codes:
            self._values.append(_decode(np.concatenate(self._codes), list(self._table)))
            self._texts = False
        self._codes = None

    def packed(self) -> tuple[Any, ...]:
        """("codes", int32 codes, distinct texts), ("texts", `Texts`) or ("values", object
        array), as `unpack` reads."""
        if self._codes is not None:
            codes = np.concatenate(self._codes) if self._codes else np.zeros(0, np.int32)
            return ("codes", codes, np.asarray(list(self._table) or [], dtype=object))
        if self._values and self._texts:
            texts = Texts.joined(self._values)  # type: ignore[arg-type]
            if texts.compact():
                return ("texts", texts)
        return ("values", _concat([_objects(v) for v in self._values]))


def _objects(values: np.ndarray | Texts) -> np.ndarray:
    return values.at() if isinstance(values, Texts) else values


def _decode(codes: np.ndarray, uniques: Sequence[Any]) -> np.ndarray:
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = uniques
    return table[codes]  # code -1 (a missing value) -> the last slot: None


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=object)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def unpack(packed: tuple[Any, ...], texts: dict[Any, Any] | None = None) -> np.ndarray:
    """The object column of `ObjectColumn.packed`; with `texts`, each distinct text is the one
    `texts` already holds (an equal one seen before), so equal texts are one object."""
    how, *payload = packed
    if how == "texts":
        return payload[0].at()
    if how != "codes":
        return payload[0]
    uniques = payload[1]
    if texts is not None:
        uniques = [texts.setdefault(u, u) for u in uniques]
    return _decode(payload[0], uniques)


class PartColumns:
    """The frame `part_frame(part, maps, ids)` gives, built from slices of the maps."""

    def __init__(self, part: str, ids: bool = False) -> None:
        self.part = part
        numeric = NUMERIC_FIELDS.get(part, ())
        self._text = (["id"] if ids else []) + [k for k in CORE_FIELDS[part] if k not in numeric]
        self._numeric = numeric
        order = ORDER_COLUMNS.get(part)
        self._objects = {k: ObjectColumn(coded=k == order) for k in self._text}
        self._numbers: dict[str, list[np.ndarray]] = {k: [] for k in numeric}
        self._clean = dict.fromkeys(numeric, True)
        self.rows = 0

    def add(self, maps: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> None:
        for key, values in self._columns(maps, ids).items():
            self._objects[key].add(values)
        for key in self._numeric:
            values, clean = numbers(column(maps, key), integer=key == "ts")
            self._numbers[key].append(values)
            self._clean[key] &= clean
        self.rows += len(maps)

    def _columns(
        self, maps: Sequence[Mapping[str, Any]], ids: Sequence[str] | None
    ) -> dict[str, np.ndarray]:
        out = {}
        for key in self._text:
            if key == "id":
                out[key] = np.fromiter(ids or (), dtype=object, count=len(maps))
            else:
                out[key] = column(maps, key)
        return out

    def packed(self, reread: Callable[[str], np.ndarray]) -> dict[str, Any]:
        """The columns as `unpack_frame` reads them. `reread(field)` gives a field's values over
        the whole part, for a number column whose slices took different ways."""
        columns: dict[str, Any] = {k: self._objects[k].packed() for k in self._text}
        for key in self._numeric:
            parts = self._numbers[key]
            same = self._clean[key] or len(parts) < 2
            if same:
                values = _concat(parts) if parts else numbers([], integer=key == "ts")[0]
            else:
                values = numbers(reread(key), integer=key == "ts")[0]
            columns["_" + key] = ("values", values)
        return {"part": self.part, "columns": columns, "rows": self.rows}


def unpack_frame(packed: dict[str, Any], order_ids: dict[Any, Any] | None = None) -> pd.DataFrame:
    """The part's frame from `PartColumns.packed`, derived columns included, every column in
    it (`unpack_part` leaves the compact texts out). With `order_ids`, its order ids are the
    texts that dict holds (see `unpack`), and it gains those it lacks."""
    frame, texts = unpack_part(packed, order_ids)
    for name, values in texts.items():
        frame.insert(
            list(packed["columns"]).index(name), name, pd.Series(values.at(), dtype=object)
        )
    return frame


def unpack_part(
    packed: dict[str, Any], order_ids: dict[Any, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Texts]]:
    """The part's frame from `PartColumns.packed`, less its `COMPACT_TEXTS` columns held as
    bytes (`History.texts`: the checks read them through `History.text`), and those columns."""
    part = packed["part"]
    order = ORDER_COLUMNS.get(part)
    compact = COMPACT_TEXTS.get(part, ())
    texts = {
        name: col[1]
        for name, col in packed["columns"].items()
        if name in compact and col[0] == "texts"
    }
    data = {
        name: unpack(col, order_ids if name == order else None)
        for name, col in packed["columns"].items()
        if name not in texts
    }
    frame = object_frame(data)
    frame.index = pd.RangeIndex(packed["rows"])
    frame = derive_columns(part, frame)
    if part == "ledger" and order_ids is not None:
        derived = frame["_order_id_for"].to_numpy(dtype=object)
        shared = [order_ids.setdefault(v, v) if isinstance(v, str) else v for v in derived]
        frame["_order_id_for"] = pd.Series(
            np.fromiter(shared, dtype=object, count=len(shared)), dtype=object
        )
    return frame, texts


class KeptFields:
    """The `EVENT_FIELDS` of orders:events, gathered a slice at a time (see History.kept)."""

    def __init__(self, fields: Mapping[str, tuple[str, ...] | None] = EVENT_FIELDS) -> None:
        self._fields = dict(fields)
        self._rows: dict[str, list[np.ndarray]] = {t: [] for t in fields}
        self._columns = {
            t: {f: ObjectColumn() for f in (names or ())} for t, names in fields.items()
        }
        self._maps: dict[str, list[Mapping[str, Any]]] = {t: [] for t in fields}

    def add(self, first_row: int, types: np.ndarray, maps: Sequence[Mapping[str, Any]]) -> None:
        """`maps` are the events from row `first_row` on; `types` their type values."""
        for event_type, names in self._fields.items():
            rows = np.flatnonzero(types == event_type)
            if not len(rows):
                continue
            picked = [maps[i] for i in rows.tolist()]
            self._rows[event_type].append(rows + first_row)
            if names is None:
                self._maps[event_type].extend(picked)
            for name in names or ():
                self._columns[event_type][name].add(column(picked, name))

    def kept(self) -> dict[str, KeptEvents]:
        out = {}
        for event_type, names in self._fields.items():
            rows = _concat(self._rows[event_type]) if self._rows[event_type] else None
            rows = rows.astype(np.int64) if rows is not None else np.zeros(0, dtype=np.int64)
            if names is None:
                out[event_type] = KeptEvents(rows, maps=self._maps[event_type])
            else:
                columns = {n: unpack(self._columns[event_type][n].packed()) for n in names}
                if not len(rows):
                    columns = {n: np.zeros(0, dtype=object) for n in names}
                out[event_type] = KeptEvents(rows, columns=columns)
        return out
