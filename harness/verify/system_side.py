"""The system's side of a snapshot read into packed columns, in a child process without pandas.

Why a child of its own: `reader.load_snapshot` reads orders:events while this reads the rest
(the client ledger, the other streams, Temporal's view, the read model), and the two take about
as long. A forked worker would start with the verifier's whole interpreter (pandas included,
~100 MB counted again in its peak); this module and what it imports need only numpy and
orjson, so its `main(RUN_DIR, OUT)` holds ~50 MB besides its columns.
It pickles what `system_side` returns into OUT (protocol 5: a numpy array's bytes are written
straight to the file) and exits 0; `reader.py` unpacks it.
"""

from __future__ import annotations

import mmap
import pickle
import sys
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from harness import keys
from harness.runs import JsonLines, RunFolder, read_json_or_empty, read_jsonl
from harness.verify.chunks import CHUNK_BYTES, read_chunks
from harness.verify.fields import PART_FILES, STREAM_PARTS
from harness.verify.packing import PartColumns
from harness.verify.values import column, no_gc

if TYPE_CHECKING:
    from harness.verify.columns import KeptFields

__all__ = [
    "LineMaps",
    "ledger_columns",
    "ledger_files",
    "main",
    "read_lines",
    "read_part",
    "system_side",
]

RECORD_PARTS = ("temporal", "readmodel")  # the parts that are JSON lines of records, not streams
Segment = tuple[Path, np.ndarray, np.ndarray, Mapping[str, Any]]
StreamEntries = tuple[list[str], list[Any]]


class LineMaps(Sequence[Mapping[str, Any]]):
    """The maps of one or more JSON-lines files, read again from disk when asked for: line `i`
    of the concatenation, as parsed (its `key` when given, e.g. a stream entry's "fields"),
    updated with its file's `extra` fields."""

    def __init__(self, segments: Sequence[Segment], key: str | None = None) -> None:
        self._segments = list(segments)  # (path, line starts, line ends, extra fields)
        self._key = key
        self._firsts = np.cumsum([0] + [len(s[1]) for s in self._segments])

    def __len__(self) -> int:
        return int(self._firsts[-1])

    def __getitem__(self, i: int) -> Mapping[str, Any]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        seg = int(np.searchsorted(self._firsts, i, side="right")) - 1
        path, starts, ends, extra = self._segments[seg]
        j = i - int(self._firsts[seg])
        with path.open("rb") as f:
            f.seek(int(starts[j]))
            value = orjson.loads(f.read(int(ends[j] - starts[j])))
        return self._shape(value, extra)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for path, starts, ends, extra in self._segments:
            data = path.read_bytes()
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                yield self._shape(orjson.loads(data[a:b]), extra)

    def pick(self, rows: np.ndarray | Sequence[int]) -> list[Mapping[str, Any]]:
        """The maps at `rows` (in that order), each file opened once: what a check that reads
        a field of many rows asks for."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(int(rows.min() if rows.min() < 0 else rows.max()))
        out: list[Mapping[str, Any]] = [{}] * len(rows)
        seg = np.searchsorted(self._firsts, rows, side="right") - 1
        for s in np.unique(seg).tolist():
            path, starts, ends, extra = self._segments[s]
            at = np.flatnonzero(seg == s)
            j = rows[at] - int(self._firsts[s])
            with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                for k, a, b in zip(at.tolist(), starts[j].tolist(), ends[j].tolist(), strict=True):
                    out[k] = self._shape(orjson.loads(m[a:b]), extra)
        return out

    def _shape(self, value: Any, extra: Mapping[str, Any]) -> Mapping[str, Any]:
        out = value[self._key] if self._key else value
        return {**extra, **out} if extra else out


def read_lines(path: Path, notes: list[str], spans: bool = False) -> JsonLines:
    """A JSON-lines part by the store's torn-line rule: a torn last line is dropped with a
    note; a corrupt line raises ValueError, so the part cannot be read and its checks say
    unknown (evidence is never dropped silently)."""
    with no_gc():
        lines = read_jsonl(path, spans=spans)
    if lines.corrupt:
        raise ValueError(lines.corrupt_note())
    notes.extend(lines.notes())
    return lines


def _read_stream(
    path: Path, notes: list[str], spans: bool = True
) -> tuple[list[str], list[Any], JsonLines]:
    """A stream's ids and field maps, and the file as read (its spans, when asked for)."""
    lines = read_lines(path, notes, spans)
    with no_gc():
        return (
            list(map(itemgetter("id"), lines.records)),
            list(map(itemgetter("fields"), lines.records)),
            lines,
        )


def ledger_files(folder: RunFolder, missing: dict[str, str]) -> list[Path]:
    files = folder.client_ledgers()
    if not files:
        missing["ledger"] = (
            f"no client ledger ({folder.CLIENT_LEDGERS}): what clients were told is unknown"
        )
    return files


def _explain_failed_export(run_dir: Path, missing: dict[str, str]) -> None:
    """Name why a part is missing when the export recorded its failure (history/export.json)."""
    errors = read_json_or_empty(RunFolder(run_dir).export).get("errors") or {}
    if not isinstance(errors, dict):
        return
    for part, error in errors.items():
        if part in PART_FILES and not (run_dir / PART_FILES[part]).exists():
            missing[part] = f"{PART_FILES[part]} is missing: the export failed ({error})"


# -- one part, a slice at a time ------------------------------------------------------------------

# (path, the maps' extra fields) of each file of a part, in order
_Files = Sequence[tuple[Path, Mapping[str, Any]]]


def _stream_maps(records: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    return list(map(itemgetter("id"), records)), list(map(itemgetter("fields"), records))


def read_part(
    part: str,
    files: _Files,
    notes: list[str],
    stream: bool,
    kept: KeptFields | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    order_ids: dict[str, str] | None = None,
) -> tuple[dict[str, Any], LineMaps]:
    """One part's packed columns (`PartColumns.packed`, its order ids the texts `order_ids`
    holds, when given) and its maps left on disk. Raises
    ValueError for a corrupt line (before anything else wrong in the file, as `_read` would),
    KeyError or TypeError for a stream entry without its id or fields."""
    builder = PartColumns(part, ids=stream, order_ids=order_ids)
    segments: list[Segment] = []
    for path, extra in files:
        seen = JsonLines(path)
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        error: Exception | None = None
        for chunk in read_chunks(path, seen, chunk_bytes):
            if error is not None or seen.corrupt:
                continue  # the file cannot be read: only its corrupt lines are still counted
            try:
                with no_gc():
                    _add(builder, chunk.records, stream, kept)
            except (KeyError, TypeError) as err:
                error = err
            starts.append(chunk.starts)
            ends.append(chunk.ends)
        if seen.corrupt:
            raise ValueError(seen.corrupt_note())
        notes.extend(seen.notes())
        if error is not None:
            raise error
        segments.append((path, _joined(starts), _joined(ends), extra))
    packed = builder.packed(lambda field: _reread(files, field, stream, chunk_bytes))
    return packed, LineMaps(segments, key="fields" if stream else None)


def _add(
    builder: PartColumns, records: list[dict[str, Any]], stream: bool, kept: KeptFields | None
) -> None:
    if not stream:
        builder.add(records)
        return
    ids, maps = _stream_maps(records)
    if kept is not None:
        kept.add(builder.rows, column(maps, "type"), maps)
    builder.add(maps, ids)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _reread(files: _Files, field: str, stream: bool, chunk_bytes: int) -> np.ndarray:
    """One field over every record of a part's files, read again (`PartColumns.packed`)."""
    values: list[np.ndarray] = []
    for path, _ in files:
        for chunk in read_chunks(path, JsonLines(path), chunk_bytes):
            maps = _stream_maps(chunk.records)[1] if stream else chunk.records
            values.append(column(maps, field))
    return np.concatenate(values) if values else np.zeros(0, dtype=object)


def system_side(run_dir: Path) -> dict[str, Any]:
    """Every part the system wrote but orders:events, and the client ledger, as packed columns
    and maps left on disk: what the worker process hands back (`load_snapshot` unpacks them).
    The ledger is read here, not beside orders:events, so the two processes take about as long.
    The parts' order ids are one text per order (`order_ids`), which the pickle writes once:
    ~170K orders' ids in six tables would be ~90 MB of str objects at 1M events, not ~15."""
    order_ids: dict[str, str] = {}
    ledger = ledger_columns(run_dir, order_ids)
    missing: dict[str, str] = {}
    notes: list[str] = []
    parts: dict[str, tuple[dict[str, Any], LineMaps]] = {}
    others: dict[str, StreamEntries] = {}
    folder = RunFolder(run_dir)
    for name, path in folder.streams():
        if name == keys.EVENTS:
            continue
        part = STREAM_PARTS.get(name)
        try:
            if part is None:
                ids, maps, _ = _read_stream(path, notes)
                others[name] = (ids, maps)
            else:
                parts[part] = read_part(part, [(path, {})], notes, stream=True, order_ids=order_ids)
        except (ValueError, KeyError, TypeError) as err:
            missing[part or name] = f"{folder.stream_rel(name)} could not be read: {err}"
    _explain_failed_export(run_dir, missing)
    for part in RECORD_PARTS:
        path = folder / PART_FILES[part]
        if not path.exists():
            missing.setdefault(part, f"{PART_FILES[part]} is missing")
            continue
        try:
            parts[part] = read_part(part, [(path, {})], notes, stream=False, order_ids=order_ids)
        except ValueError as err:
            missing[part] = f"{PART_FILES[part]} could not be read: {err}"
    inventory = None
    path = folder.inventory
    if path.exists():
        try:
            inventory = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as err:
            missing["inventory"] = f"{PART_FILES['inventory']} could not be read: {err}"
    return {
        "ledger": ledger,
        "parts": parts,
        "others": others,
        "inventory": inventory,
        "missing": missing,
        "notes": notes,
    }


def ledger_columns(run_dir: Path, order_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """The client ledger a slice at a time, each line with the `client` its file names: packed
    columns and maps left on disk (None when it cannot be read, with why in `missing`)."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    folder = RunFolder(run_dir)
    built: tuple[dict[str, Any], LineMaps] | None = None
    files = ledger_files(folder, missing)
    if files:
        named = [(path, {"client": RunFolder.ledger_name(path)}) for path in files]
        try:
            built = read_part("ledger", named, notes, stream=False, order_ids=order_ids)
        except ValueError as err:
            missing["ledger"] = f"{folder.CLIENT_LEDGERS} could not be read: {err}"
    return {"built": built, "missing": missing, "notes": notes}


def main(argv: list[str] | None = None) -> int:
    """`system_side(RUN_DIR)` pickled into OUT."""
    run_dir, out = argv if argv is not None else sys.argv[1:]
    side = system_side(Path(run_dir))
    with open(out, "wb") as f:
        pickle.dump(side, f, protocol=5)
    return 0
