"""A JSON-lines part read a slice at a time, by the store's torn-line rule (harness/runs.py).

Why not `runs.read_jsonl`: it holds the whole file, its split lines and every parsed map at
once, about 1.5 KB per event of orders:events at the peak, and the checks keep none of that
(they keep a few columns, see `columns.py`). Here at most `chunk_bytes` of the file and its
maps are alive at a time; each record comes with its line's byte span, so the maps are read
again from disk when a counter-example quotes one (`reader.LineMaps`). The rule is the same:
a JSON object is a record, a last line without its newline that is not one is torn (skipped,
noted), any other line that is not one is corrupt, and blank lines are nothing. What was
skipped is counted in a `runs.JsonLines`, whose notes are the reader's notes word for word.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.runs import JsonLines, parse_lines

__all__ = ["CHUNK_BYTES", "Chunk", "read_chunks"]

CHUNK_BYTES = 1 << 20  # ~4K events: their maps are ~4 MB, and a slice is still C-speed


@dataclass
class Chunk:
    """The records of one slice of a file, and where each one's line is (absolute offsets)."""

    records: list[dict[str, Any]]
    starts: np.ndarray
    ends: np.ndarray


def read_chunks(path: Path, seen: JsonLines, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The records of `path` a slice of whole lines at a time; what was skipped is counted in
    `seen` (its `corrupt` line numbers and `torn` line, as `read_jsonl` would)."""
    line_no = 0  # lines before the current slice
    with path.open("rb") as f:
        offset, rest = 0, b""
        while True:
            block = f.read(chunk_bytes)
            data = rest + block
            if not data:
                return
            cut = (
                data.rfind(b"\n") + 1 if block else len(data)
            )  # the end: the unterminated rest too
            if cut == 0:  # no newline yet: one line longer than a chunk
                rest = data
                continue
            whole, rest = data[:cut], data[cut:]
            lines = whole.split(b"\n")
            if whole.endswith(b"\n"):
                lines.pop()  # the empty item after the last newline
                open_last = False
            else:
                open_last = True  # the file's last line, without its newline
            yield _chunk(lines, offset, line_no, open_last, seen)
            line_no += len(lines)
            offset += cut
            if not block:
                return


def _chunk(
    lines: list[bytes], offset: int, line_no: int, open_last: bool, seen: JsonLines
) -> Chunk:
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    starts = offset + np.cumsum(lengths + 1) - (lengths + 1)
    ends = starts + lengths
    records, kept, torn, corrupt = parse_lines(lines, open_last)
    if torn:
        seen.torn, seen.torn_line = 1, torn
    seen.corrupt.extend(line_no + n for n in corrupt)
    index = lengths > 0 if kept is None else np.asarray(kept, dtype=np.int64)
    return Chunk(records, starts[index], ends[index])
