"""A part's columns gathered from its maps a slice at a time, packed to cross processes.

Why apart from columns.py: this is what the snapshot's reader child (`system_side.py`) runs,
and it needs numpy only: repeated texts become integer codes into one table of texts (a dict,
in order of first appearance), texts that are each new become `Texts`, numbers numpy arrays.
columns.py unpacks them into frames in the verifier's process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.verify.fields import CORE_FIELDS, NUMERIC_FIELDS
from harness.verify.texts import Texts
from harness.verify.values import column, numbers

__all__ = ["ORDER_COLUMNS", "ObjectColumn", "PartColumns", "concat", "decode"]

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
    be). With `shared`, each distinct text is the one `shared` already holds (an equal text
    of another column), so that texts packed together are pickled once."""

    def __init__(self, coded: bool = False, shared: dict[str, str] | None = None) -> None:
        self._codes: list[np.ndarray] | None = []
        self._table: dict[str, int] = {}
        self._shared = shared
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
        listed = values.tolist()
        try:
            distinct = dict.fromkeys(listed)  # in order of first appearance
        except TypeError:  # unhashable values
            return None
        distinct.pop(None, None)
        if not self._decided:
            self._decided = True
            if len(distinct) > _SHARED * len(values):
                return None  # values that are each new: codes would save nothing
        if distinct and set(map(type, distinct)) != {str}:
            return None  # not all texts (a NaN, too, is no None)
        if not distinct:
            return np.full(len(values), -1, dtype=np.int32)
        table = self._table
        new = [text for text in distinct if text not in table]
        if self._shared is not None:
            new = list(map(self._shared.setdefault, new, new))
        table.update(zip(new, range(len(table), len(table) + len(new)), strict=True))
        return np.fromiter(
            map(table.get, listed, itertools.repeat(-1)), dtype=np.int32, count=len(listed)
        )

    def _to_values(self) -> None:
        """From codes to values, for the rest of the column."""
        if self._codes:
            self._values.append(decode(np.concatenate(self._codes), list(self._table)))
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
        return ("values", concat([_objects(v) for v in self._values]))


def _objects(values: np.ndarray | Texts) -> np.ndarray:
    return values.at() if isinstance(values, Texts) else values


def decode(codes: np.ndarray, uniques: Sequence[Any]) -> np.ndarray:
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = uniques
    return table[codes]  # code -1 (a missing value) -> the last slot: None


def concat(arrays: list[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=object)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


class PartColumns:
    """The frame `part_frame(part, maps, ids)` gives, built from slices of the maps. Its order
    ids are the texts `order_ids` holds, when given (see `ObjectColumn`)."""

    def __init__(
        self, part: str, ids: bool = False, order_ids: dict[str, str] | None = None
    ) -> None:
        self.part = part
        numeric = NUMERIC_FIELDS.get(part, ())
        self._text = (["id"] if ids else []) + [k for k in CORE_FIELDS[part] if k not in numeric]
        self._numeric = numeric
        order = ORDER_COLUMNS.get(part)
        self._objects = {
            k: ObjectColumn(coded=True, shared=order_ids) if k == order else ObjectColumn()
            for k in self._text
        }
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
                values = concat(parts) if parts else numbers([], integer=key == "ts")[0]
            else:
                values = numbers(reread(key), integer=key == "ts")[0]
            columns["_" + key] = ("values", values)
        return {"part": self.part, "columns": columns, "rows": self.rows}
