"""Columns of values pulled out of parsed JSON maps, without pandas.

Why apart from frames.py: the snapshot's reader child (`system_side.py`) builds its columns
with these and never imports pandas (~40 MB of interpreter it would hold for the whole read).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

__all__ = ["column", "no_gc", "numbers"]


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Building millions of small objects is ~2x faster without the cyclic collector running.

    Nests: only the outermost block turns the collector back on. verify_run holds it off for
    the whole verification, since re-enabling it mid-way makes the next allocation scan every
    live object of the history (seconds, at a million events)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    return np.fromiter(values, dtype=object, count=len(values))


def column(maps: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """`key` of every map (None where absent)."""
    try:
        return _array(list(map(itemgetter(key), maps)))
    except KeyError:
        return _array([m.get(key) for m in maps])


def numbers(values: Sequence[Any] | np.ndarray, *, integer: bool) -> tuple[np.ndarray, bool]:
    """`integers(values)` or `floats(values)`, and whether every value took the first way (int,
    or float()). Only then do the numbers of a column read in slices, joined, equal those of
    the whole column: otherwise its values decide together (see columns.PartColumns)."""
    if integer:
        try:
            return np.fromiter(map(int, values), dtype=np.int64, count=len(values)), True
        except (TypeError, ValueError):
            return numbers(values, integer=False)[0], False
    try:
        return np.asarray(values, dtype=float), True
    except (TypeError, ValueError):
        import pandas as pd  # the rare path: the reader child imports pandas only here

        coerced = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        return coerced.to_numpy(float), False
