"""Read a run folder's snapshot (`history/`, docs/run-folder.md) into a History.

Why slices and a second process: a million events are ~2.3 million JSON lines, and holding
them parsed would cost ~2.6 KB per event. Each part is read a slice at a time (`chunks.py`)
into the few compact columns the checks read (`columns.py`), and the maps are dropped: they
are read again from the file on demand (`LineMaps`), for the few rows a counter-example quotes;
the event fields a check reads beyond the columns are kept for the rows that have them
(`history.EVENT_FIELDS`). orders:events is read here, and everything else (the client ledger,
the other streams, Temporal's view, the read model) at the same time in a forked worker, which
hands back its columns packed: the two take about as long. On one core, or without fork, the same happens in turn.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import mmap
import multiprocessing
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harness import keys
from harness.runs import JsonLines, RunFolder, read_json_or_empty, read_jsonl
from harness.settings import VerifySettings
from harness.verify.chunks import CHUNK_BYTES, read_chunks
from harness.verify.columns import KeptFields, PartColumns, unpack_part
from harness.verify.frames import column, no_gc
from harness.verify.history import (
    PART_FILES,
    STREAM_PARTS,
    History,
    KeptEvents,
    StreamEntries,
    assemble_history,
    part_frame,
    set_histories,
)
from harness.verify.texts import Texts

__all__ = ["LineMaps", "load_snapshot", "read_client_side"]

_RECORDS = ("temporal", "readmodel")  # the parts that are JSON lines of records, not streams
_Built = tuple[pd.DataFrame, Sequence[Mapping[str, Any]]]
_Texts = dict[str, dict[str, Texts]]  # part -> its columns held as bytes (History.texts)
_Segment = tuple[Path, np.ndarray, np.ndarray, Mapping[str, Any]]


class LineMaps(Sequence[Mapping[str, Any]]):
    """The maps of one or more JSON-lines files, read again from disk when asked for: line `i`
    of the concatenation, as parsed (its `key` when given, e.g. a stream entry's "fields"),
    updated with its file's `extra` fields."""

    def __init__(self, segments: Sequence[_Segment], key: str | None = None) -> None:
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


def _read(path: Path, notes: list[str], spans: bool = False) -> JsonLines:
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
    lines = _read(path, notes, spans)
    with no_gc():
        return (
            list(map(itemgetter("id"), lines.records)),
            list(map(itemgetter("fields"), lines.records)),
            lines,
        )


def read_client_side(run_dir: Path) -> dict[str, Any]:
    """What the run folder alone holds, whatever the source of the system's side: run.json, the
    client ledger and the fault windows, as maps. A part that cannot be read is None, with why."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    folder = RunFolder(run_dir)
    run = _run_json(folder, missing)
    ledger: list[dict[str, Any]] | None = None
    files = _ledger_files(folder, missing)
    if files:
        try:
            ledger = _read_ledger(files, notes)
        except ValueError as err:
            missing["ledger"] = f"{folder.CLIENT_LEDGERS} could not be read: {err}"
    faults = _faults(folder, run, missing, notes)
    return {"run": run, "ledger": ledger, "faults": faults, "missing": missing, "notes": notes}


def _run_json(folder: RunFolder, missing: dict[str, str]) -> dict[str, Any]:
    if not folder.run_json.exists():
        missing["run"] = f"{folder.RUN_JSON} is missing"
        return {}
    try:
        run = orjson.loads(folder.run_json.read_bytes())
    except orjson.JSONDecodeError as err:
        missing["run"] = f"{folder.RUN_JSON} is not valid JSON: {err}"
        return {}
    if not isinstance(run, dict):
        missing["run"] = f"{folder.RUN_JSON} is not a JSON object"
        return {}
    return run


def _ledger_files(folder: RunFolder, missing: dict[str, str]) -> list[Path]:
    files = folder.client_ledgers()
    if not files:
        missing["ledger"] = (
            f"no client ledger ({folder.CLIENT_LEDGERS}): what clients were told is unknown"
        )
    return files


def _faults(
    folder: RunFolder, run: Mapping[str, Any], missing: dict[str, str], notes: list[str]
) -> list[dict[str, Any]] | None:
    if folder.faults.exists():
        try:
            return _read(folder.faults, notes).records
        except ValueError as err:
            missing["faults"] = f"{folder.FAULTS} could not be read: {err}"
            return None
    if _chaos_ran(folder, run):
        missing["faults"] = f"{folder.FAULTS} is missing although chaos experiments ran"
        return None
    return []  # no chaos ran: no fault windows, nothing to recover from


def _read_ledger(files: list[Path], notes: list[str]) -> list[dict[str, Any]]:
    """The client ledger's lines, each with the `client` its file names."""
    ledger: list[dict[str, Any]] = []
    for path in files:
        client = RunFolder.ledger_name(path)
        records = _read(path, notes).records
        for rec in records:
            rec.setdefault("client", client)
        ledger.extend(records)
    return ledger


def _chaos_ran(folder: RunFolder, run: Mapping[str, Any]) -> bool:
    phases = run.get("phases") if isinstance(run.get("phases"), list) else []
    named = any(isinstance(p, dict) and "chaos" in str(p.get("name", "")) for p in phases or [])
    return named or bool(folder.journals())


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


def _read_part(
    part: str,
    files: _Files,
    notes: list[str],
    stream: bool,
    kept: KeptFields | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[dict[str, Any], LineMaps]:
    """One part's packed columns (`PartColumns.packed`) and its maps left on disk. Raises
    ValueError for a corrupt line (before anything else wrong in the file, as `_read` would),
    KeyError or TypeError for a stream entry without its id or fields."""
    builder = PartColumns(part, ids=stream)
    segments: list[_Segment] = []
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


def _system_side(run_dir: Path) -> dict[str, Any]:
    """Every part the system wrote but orders:events, and the client ledger, as packed columns
    and maps left on disk: what the worker process hands back (`load_snapshot` unpacks them).
    The ledger is read here, not beside orders:events, so the two processes take about as long."""
    ledger = _ledger(run_dir)
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
                parts[part] = _read_part(part, [(path, {})], notes, stream=True)
        except (ValueError, KeyError, TypeError) as err:
            missing[part or name] = f"{folder.stream_rel(name)} could not be read: {err}"
    _explain_failed_export(run_dir, missing)
    for part in _RECORDS:
        path = folder / PART_FILES[part]
        if not path.exists():
            missing.setdefault(part, f"{PART_FILES[part]} is missing")
            continue
        try:
            parts[part] = _read_part(part, [(path, {})], notes, stream=False)
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


def _events(
    run_dir: Path, order_ids: dict[Any, Any], texts: _Texts
) -> tuple[_Built | None, dict[str, KeptEvents], str | None, list[str]]:
    """orders:events: its frame, its maps left on disk, and the fields the checks read of a few
    event types (`history.EVENT_FIELDS`)."""
    path = RunFolder(run_dir).stream(keys.EVENTS)
    notes: list[str] = []
    if not path.exists():
        return None, {}, None, notes
    kept = KeptFields()
    try:
        packed, maps = _read_part("events", [(path, {})], notes, stream=True, kept=kept)
    except (ValueError, KeyError, TypeError) as err:
        return None, {}, f"{PART_FILES['events']} could not be read: {err}", notes
    frame, texts["events"] = unpack_part(packed, order_ids)
    del packed  # the packed columns, freed before the kept fields are unpacked
    return (frame, maps), kept.kept(), None, notes


def _ledger(run_dir: Path) -> dict[str, Any]:
    """The client ledger a slice at a time, each line with the `client` its file names: packed
    columns and maps left on disk (None when it cannot be read, with why in `missing`)."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    folder = RunFolder(run_dir)
    built: tuple[dict[str, Any], LineMaps] | None = None
    files = _ledger_files(folder, missing)
    if files:
        named = [(path, {"client": RunFolder.ledger_name(path)}) for path in files]
        try:
            built = _read_part("ledger", named, notes, stream=False)
        except ValueError as err:
            missing["ledger"] = f"{folder.CLIENT_LEDGERS} could not be read: {err}"
    return {"built": built, "missing": missing, "notes": notes}


def _client_parts(
    run_dir: Path, ledger: dict[str, Any], order_ids: dict[Any, Any]
) -> dict[str, Any]:
    """run.json, the client ledger (as `_ledger` read it) and the fault windows as parts."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    folder = RunFolder(run_dir)
    run = _run_json(folder, missing)
    parts: dict[str, _Built] = {}
    missing.update(ledger["missing"])
    notes.extend(ledger["notes"])
    if ledger["built"] is not None:
        packed, maps = ledger.pop("built")  # freed once unpacked
        parts["ledger"] = (unpack_part(packed, order_ids)[0], maps)
        del packed
    faults = _faults(folder, run, missing, notes)
    if faults is not None:
        parts["faults"] = (part_frame("faults", faults), faults)
    return {"run": run, "parts": parts, "missing": missing, "notes": notes}


def _workers(workers: int | None) -> int:
    """How many processes read a snapshot: `workers`, else SAGAQUAKE_VERIFY_WORKERS, else 2
    where fork is safe (two cores or more, fork available, no gevent monkey-patching: Locust
    patches threading, and a forked worker under gevent can hang), else 1."""
    if workers is None:
        workers = VerifySettings.field_from_env("verify_workers")
    if workers is not None:
        return workers
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    return 2 if can_fork and (os.cpu_count() or 1) > 1 and not _gevent_patched() else 1


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def _in_worker(run_dir: Path, here: Callable[[], None]) -> dict[str, Any] | None:
    """`_system_side(run_dir)` from a forked worker while `here()` runs in this process; None
    when no worker could be started. The worker hands its columns back through a temporary
    file (`_system_side_to`), not the pool's pipe: a pipe's message is one bytes object in each
    process besides the columns (~110 bytes an event at the peak of both)."""
    fd, name = tempfile.mkstemp(prefix="sagaquake-verify-", suffix=".pickle")
    os.close(fd)
    try:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            future = pool.submit(_system_side_to, run_dir, name)
            here()
            future.result()
        with open(name, "rb") as f:
            side: dict[str, Any] = pickle.load(f)
        return side
    except (OSError, concurrent.futures.process.BrokenProcessPool):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _system_side_to(run_dir: Path, path: str) -> None:
    """`_system_side(run_dir)` pickled into `path`, written as it is pickled (protocol 5 writes
    a numpy array's bytes straight to the file)."""
    side = _system_side(run_dir)
    with open(path, "wb") as f:
        pickle.dump(side, f, protocol=5)


def load_snapshot(run_dir: Path | str, *, workers: int | None = None) -> History:
    """Read a run folder's `history/` into a History. With two workers (the default where fork
    is safe, see `_workers`), orders:events is read here while a forked worker reads the rest;
    with one, everything is read in this process."""
    run_dir = Path(run_dir)
    got: dict[str, Any] = {}
    order_ids: dict[Any, Any] = {}  # one text per order id, shared by every part
    texts: _Texts = {}

    def here() -> None:
        got["events"] = _events(run_dir, order_ids, texts)

    side = _in_worker(run_dir, here) if _workers(workers) > 1 else None
    if side is None:  # one process, or no worker after all: read the rest here
        if "events" not in got:
            here()
        side = _system_side(run_dir)
    events, kept, events_error, event_notes = got["events"]
    client = _client_parts(run_dir, side["ledger"], order_ids)
    built = {}
    packed_parts = side["parts"]
    for part in list(packed_parts):  # each packed part freed as soon as it is unpacked
        packed, maps = packed_parts.pop(part)
        frame, texts[part] = unpack_part(packed, order_ids)
        built[part] = (frame, maps)
        del packed
    parts = {**client["parts"], **built}
    missing = {**client["missing"], **side["missing"]}
    if events is not None:
        parts["events"] = events
    elif events_error:
        missing["events"] = events_error
    h = assemble_history(
        source="snapshot",
        run=client["run"],
        parts=parts,
        inventory=side["inventory"],
        other_streams=side["others"],
        missing=missing,
        notes=[*event_notes, *client["notes"], *side["notes"]],
        run_dir=run_dir,
        kept=kept,
        texts=texts,
    )
    set_histories(h, run_dir / PART_FILES["histories"])
    if "histories" in missing:  # the export recorded why it could not write them
        h.missing["histories"] = missing["histories"]
    return h
