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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.verify.fields import COMPACT_TEXTS, EVENT_FIELDS
from harness.verify.frames import object_frame
from harness.verify.history import KeptEvents, derive_columns
from harness.verify.packing import ORDER_COLUMNS, ObjectColumn, concat, decode
from harness.verify.texts import Texts
from harness.verify.values import column

__all__ = [
    "KeptFields",
    "unpack",
    "unpack_frame",
    "unpack_part",
]


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
    return decode(payload[0], uniques)


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
            rows = concat(self._rows[event_type]) if self._rows[event_type] else None
            rows = rows.astype(np.int64) if rows is not None else np.zeros(0, dtype=np.int64)
            if names is None:
                out[event_type] = KeptEvents(rows, maps=self._maps[event_type])
            else:
                columns = {n: unpack(self._columns[event_type][n].packed()) for n in names}
                if not len(rows):
                    columns = {n: np.zeros(0, dtype=object) for n in names}
                out[event_type] = KeptEvents(rows, columns=columns)
        return out
