"""A column of texts that are each new (a stream id, an event id) as ASCII bytes in one array.

Why: as str objects such a column costs ~70-100 bytes a value (the object and its pointer);
as a numpy fixed-width bytes array, its longest text's length (16 for a stream id, ~47 for an
event id). The checks read such a column whole only to compare its values (`codes`), and as
texts only at the few rows a counter-example quotes (`at`). Only values that come back the same
are held so: each a str (or None), ASCII, without a NUL (a bytes array drops trailing NULs);
any other column stays an object column of its frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Texts"]

_DECODE_BLOCK = 1 << 16  # rows decoded at a time: bounds the transient 4-byte-a-character copy


class Texts:
    """Texts (or None) of one column: `data` (dtype S<width>, "" where None), `none` (bool),
    and `length`, the texts' lengths summed (what `compact` weighs the fixed width against)."""

    __slots__ = ("data", "length", "none")

    def __init__(self, data: np.ndarray, none: np.ndarray, length: int) -> None:
        self.data = data
        self.none = none
        self.length = length

    @staticmethod
    def of(values: np.ndarray) -> Texts | None:
        """`values` (an object array) held as bytes, or None when they would not come back."""
        none = np.asarray(values == None, dtype=bool)  # noqa: E711 (elementwise)
        texts = values[~none] if none.any() else values
        if len(texts) and set(map(type, texts)) != {str}:
            return None
        joined = "".join(texts)
        if not joined.isascii() or "\x00" in joined:
            return None
        filled = np.where(none, "", values) if none.any() else values
        data = filled.astype("S") if len(filled) else np.zeros(0, dtype="S1")
        return Texts(data, none, len(joined))

    @staticmethod
    def joined(parts: Sequence[Texts]) -> Texts:
        if len(parts) == 1:
            return parts[0]
        data = np.concatenate([p.data for p in parts])
        return Texts(data, np.concatenate([p.none for p in parts]), sum(p.length for p in parts))

    def compact(self) -> bool:
        """Whether the fixed width costs at most about twice the texts (one long text makes
        every value that wide)."""
        return self.data.itemsize <= 64 or self.data.nbytes <= 2 * self.length + 16 * len(self)

    def __len__(self) -> int:
        return len(self.data)

    def at(self, rows: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """The values at `rows` (every row when None) as str objects, None where none."""
        data = self.data if rows is None else self.data[np.asarray(rows, dtype=np.int64)]
        none = self.none if rows is None else self.none[np.asarray(rows, dtype=np.int64)]
        out = np.empty(len(data), dtype=object)
        for start in range(0, len(data), _DECODE_BLOCK):
            out[start : start + _DECODE_BLOCK] = data[start : start + _DECODE_BLOCK].astype("U")
        if none.any():
            out[none] = None
        return out

    def codes(self) -> np.ndarray:
        """Per row a code shared by equal texts (not in order of appearance), -1 for None.

        By a 64-bit hash of each text's bytes, factorized, and every repeat checked byte for
        byte against the first row of its code: a few arrays of 8 bytes a row, where sorting
        the texts would copy them twice. A collision (never seen, but possible) sorts instead."""
        import pandas as pd  # here only: the reader child (system_side.py) holds no pandas

        out = np.full(len(self.data), -1, dtype=np.int64)
        rows = np.flatnonzero(~self.none)
        if not len(rows):
            return out
        data = self.data[rows] if len(rows) < len(self.data) else self.data
        codes = pd.factorize(_hashes(data))[0]
        first = np.full(int(codes.max()) + 1, len(codes), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(codes)))
        again = np.flatnonzero(first[codes] != np.arange(len(codes)))
        if len(again) and not (data[again] == data[first[codes[again]]]).all():
            codes = np.unique(data, return_inverse=True)[1].reshape(-1)
        out[rows] = codes
        return out


def _hashes(data: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each value's bytes (zero-padded to the width)."""
    width = data.dtype.itemsize
    matrix = data.view(np.uint8).reshape(len(data), width)
    out = np.zeros(len(data), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            out *= _PRIME
            out += matrix[:, j]
    return out


_PRIME = np.uint64(1099511628211)  # FNV's 64-bit prime
