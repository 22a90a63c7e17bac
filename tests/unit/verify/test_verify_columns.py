"""Reading a part a slice at a time gives what reading it whole gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from harness.runs import JsonLines, read_jsonl
from harness.verify.chunks import read_chunks
from harness.verify.columns import unpack_frame
from harness.verify.history import part_frame
from harness.verify.packing import PartColumns
from harness.verify.values import column

pytestmark = pytest.mark.unit


def _events(n: int, odd_ts_at: int | None = None) -> list[dict]:
    rows = []
    for i in range(n):
        fields = {"type": "OrderPlaced" if i % 3 else "OrderCompleted", "order_id": f"o{i // 3}"}
        fields["event_id"] = f"e{i}"
        fields["ts"] = str(1000 + i)
        if odd_ts_at is not None and i in (odd_ts_at, 18):
            # int("1_0") is 10 alone, but beside "x" the column is coerced: NaN
            fields["ts"] = "1_0" if i == odd_ts_at else "x"
        if i == 4:
            del fields["order_id"]  # a missing field is None
        rows.append({"id": f"{1000 + i}-0", "fields": fields})
    return rows


def _write(path: Path, rows: list[dict], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + tail)
    return path


def _sliced(path: Path, part: str, stream: bool, chunk_bytes: int) -> tuple:
    builder = PartColumns(part, ids=stream)
    seen = JsonLines(path)
    starts = []
    for chunk in read_chunks(path, seen, chunk_bytes):
        maps = [r["fields"] for r in chunk.records] if stream else chunk.records
        builder.add(maps, [r["id"] for r in chunk.records] if stream else None)
        starts.append(chunk.starts)

    def reread(field: str) -> np.ndarray:
        records = read_jsonl(path).records
        return column([r["fields"] for r in records] if stream else records, field)

    return unpack_frame(builder.packed(reread)), seen, np.concatenate(starts)


@pytest.mark.parametrize("chunk_bytes", [1, 64, 1 << 20])
@pytest.mark.parametrize("odd_ts_at", [None, 7])
def test_a_stream_read_in_slices_is_the_frame_of_all_its_maps(
    tmp_path: Path, chunk_bytes: int, odd_ts_at: int | None
) -> None:
    path = _write(tmp_path / "e.jsonl", _events(20, odd_ts_at), tail=b'{"id": "9')
    frame, seen, starts = _sliced(path, "events", True, chunk_bytes)
    whole = read_jsonl(path, spans=True)
    expected = part_frame(
        "events", [r["fields"] for r in whole.records], ids=[r["id"] for r in whole.records]
    )
    assert frame.equals(expected)
    assert list(frame.columns) == list(expected.columns)
    assert frame["_ts"].dtype == expected["_ts"].dtype  # int64, or float64 with the odd value
    assert seen.notes() == whole.notes()  # the torn last line, in the same words
    assert starts.tolist() == whole.spans()[0].tolist()


def test_slices_count_corrupt_lines_as_the_whole_file_does(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"a": 1}\n\n[1]\n{"a": 2}\nnot json\n{"a": 3}')
    seen = JsonLines(path)
    records = [r for c in read_chunks(path, seen, 8) for r in c.records]
    whole = read_jsonl(path)
    assert records == whole.records
    assert seen.corrupt == whole.corrupt == [3, 5]


def test_a_ledger_read_in_slices_is_the_frame_of_all_its_lines(tmp_path: Path) -> None:
    rows = [
        {"idempotency_key": f"k{i % 7}", "order_id": f"o{i % 7}", "outcome": "ok",
         "sent_at": 1.5 + i, "answered_at": None if i % 4 else 2.0 + i, "amount_cents": 100}
        for i in range(30)
    ]  # fmt: skip
    path = _write(tmp_path / "c.jsonl", rows)
    frame, _, _ = _sliced(path, "ledger", False, 100)
    assert frame.equals(part_frame("ledger", read_jsonl(path).records))
