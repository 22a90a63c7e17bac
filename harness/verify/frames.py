"""Turning millions of parsed JSON maps into pandas columns, fast.

Why its own module: loading dominates a verify (a million events is ~2.3 million JSON lines
across the history files), and the way columns are built decides whether that takes seconds or
tens of seconds. Three rules: pull a column with `itemgetter` over all maps at once (C speed)
rather than `.get` per map and key; keep text in object columns (pandas 3 would otherwise infer
a `str` dtype, validate every value and turn None into NaN); and keep the cyclic garbage
collector off while millions of small objects are being made (`no_gc`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from harness.verify.values import column, no_gc, numbers

__all__ = [
    "core_frame",
    "floats",
    "integers",
    "inventory_frame",
    "jsonable",
    "object_frame",
    "records_frame",
    "stream_frame",
]

_INVENTORY_HASHES = ("seed", "available", "reserved", "sold")


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars become Python ones and NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    return np.fromiter(values, dtype=object, count=len(values))


def object_frame(data: Mapping[str, Any], index: pd.Index | None = None) -> pd.DataFrame:
    """A frame whose object arrays stay object columns (pandas 3 would infer a str dtype for
    them and turn their None into NaN)."""
    columns = {
        k: pd.Series(v, dtype=object, copy=False)
        if isinstance(v, np.ndarray) and v.dtype == object
        else v
        for k, v in data.items()
    }
    frame = pd.DataFrame(columns, copy=False)
    if index is not None:
        frame.index = index
    return frame


def integers(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Integers when every value is one (or an integer string), floats with NaN otherwise."""
    return numbers(values, integer=True)[0]


def floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Numbers (or numeric strings) as floats, NaN for None and for anything not a number."""
    return numbers(values, integer=False)[0]


def core_frame(
    maps: Sequence[Mapping[str, Any]], keys: Sequence[str], ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Only `keys` of each map (and `id` when given): the columns the checks read. The maps
    themselves stay available for the rest (see History.wide)."""
    with no_gc():
        data: dict[str, Any] = {} if ids is None else {"id": _array(ids)}
        for key in keys:
            data[key] = column(maps, key)
        return object_frame(data)


def _columns(maps: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """One object array per key of `maps` (None where a map lacks the key).

    Maps written by one writer share their keys: those are transposed in C (itemgetter + zip).
    Maps of several shapes (a read model row with a cancel reason, one without) are grouped by
    shape first."""
    if not maps:
        return {}
    keys = list(maps[0])
    if keys and set(map(len, maps)) == {len(keys)}:
        try:
            return _transpose(maps, keys)
        except KeyError:
            pass  # the same number of keys, not the same keys
    shapes: dict[tuple[str, ...], list[int]] = {}
    for i, m in enumerate(maps):
        shapes.setdefault(tuple(m), []).append(i)
    n = len(maps)
    out: dict[str, np.ndarray] = {}
    for shape, rows in sorted(shapes.items(), key=lambda kv: kv[1][0]):
        if not shape:
            continue
        sub = [maps[i] for i in rows]
        at = np.asarray(rows, dtype=np.int64)
        for key, values in _transpose(sub, list(shape)).items():
            if key not in out:
                out[key] = np.full(n, None, dtype=object)
            out[key][at] = values
    return out


def _transpose(maps: Sequence[Mapping[str, Any]], keys: list[str]) -> dict[str, np.ndarray]:
    if len(keys) == 1:
        return {keys[0]: _array(list(map(itemgetter(keys[0]), maps)))}
    columns = zip(*map(itemgetter(*keys), maps), strict=True)
    return {k: _array(c) for k, c in zip(keys, columns, strict=True)}


def stream_frame(
    ids: Sequence[str] | np.ndarray,
    fields: Sequence[Mapping[str, str]],
    group: str | None = None,
) -> pd.DataFrame:
    """Every field of every entry as a column (None where an entry lacks it), `_ts` as a number.
    With `group` (an event type, a ledger kind), columns are gathered per value of that field,
    whose entries share their fields."""
    n = len(ids)
    columns: dict[str, Any] = {"id": _array(ids)}
    with no_gc():
        if group is None or n == 0:
            columns.update(_columns(fields))
        else:
            kinds = [f.get(group) for f in fields]
            rows: dict[Any, list[int]] = {}
            for i, kind in enumerate(kinds):
                rows.setdefault(kind, []).append(i)
            columns[group] = _array(kinds)
            for idx in rows.values():
                whole = len(idx) == n
                sub = fields if whole else [fields[i] for i in idx]
                at = None if whole else np.asarray(idx, dtype=np.int64)
                for key, values in _columns(sub).items():
                    if key == group:
                        continue
                    if key not in columns:
                        columns[key] = np.full(n, None, dtype=object)
                    if at is None:
                        columns[key][:] = values
                    else:
                        columns[key][at] = values
        frame = object_frame(columns)
        frame["_ts"] = integers(frame["ts"].to_numpy()) if "ts" in frame else np.full(n, np.nan)
    return frame


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every key of every JSON record as an object column (values as parsed)."""
    with no_gc():
        frame = object_frame(_columns(records))
    frame.index = pd.RangeIndex(len(records))
    return frame


def inventory_frame(hashes: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per SKU the four inventory hashes as integers (a SKU absent from a hash counts 0)."""
    skus = sorted(set().union(*(dict(hashes.get(h) or {}) for h in _INVENTORY_HASHES)))
    data = {}
    for name in _INVENTORY_HASHES:
        values = dict(hashes.get(name) or {})
        data[name] = np.array([int(values.get(s, 0) or 0) for s in skus], dtype=np.int64)
    return pd.DataFrame(data, index=pd.Index(skus, name="sku", dtype=object))
