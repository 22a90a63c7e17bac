"""Read a run folder's snapshot (`history/`, docs/run-folder.md) into a History.

Why a second process: parsing JSON lines is most of a verify's time (a million events is
~2.3 million lines). orders:events is parsed here, and everything else (the ledgers, Temporal's
view, the read model) at the same time in a forked worker, which hands back only the columns
the checks read; the maps themselves are read again from the file on demand (`LineMaps`), for
the few rows a counter-example quotes. On one core, or without fork, the same happens in turn.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harness.settings import VerifySettings
from harness.verify.frames import no_gc, object_frame
from harness.verify.history import (
    PART_FILES,
    STREAM_PARTS,
    History,
    StreamEntries,
    assemble_history,
    part_frame,
    set_histories,
)

__all__ = ["LineMaps", "load_snapshot", "read_client_side", "read_lines"]

_EVENTS_FILE = "orders.events.jsonl"
_RECORDS = {"temporal": "temporal.jsonl", "readmodel": "readmodel.jsonl"}
_Built = tuple[pd.DataFrame, Sequence[Mapping[str, Any]]]


class LineMaps(Sequence[Mapping[str, Any]]):
    """The maps of one or more JSON-lines files, read again from disk when asked for: line `i`
    of the concatenation, as parsed (its `key` when given, e.g. a stream entry's "fields"),
    updated with its file's `extra` fields."""

    def __init__(
        self,
        segments: Sequence[tuple[Path, np.ndarray, np.ndarray, Mapping[str, Any]]],
        key: str | None = None,
    ) -> None:
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

    def _shape(self, value: Any, extra: Mapping[str, Any]) -> Mapping[str, Any]:
        out = value[self._key] if self._key else value
        return {**extra, **out} if extra else out


def read_lines(
    path: Path, notes: list[str] | None = None, spans: bool = True
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Every JSON line of a file, and (with `spans`) where each starts and ends in it. A torn
    last line (a writer killed mid-line) is dropped with a note; a bad line elsewhere is an
    error."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if spans:
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        starts = np.concatenate(([0], newlines + 1))
        ends = np.concatenate((newlines, [len(data)]))
    else:
        starts = ends = np.zeros(len(lines), dtype=np.int64)
    with no_gc():
        try:
            keep = ends > starts if spans else slice(None)
            records = list(map(orjson.loads, [x for x in lines if x]))
            return records, starts[keep], ends[keep]
        except orjson.JSONDecodeError:
            pass
        kept = [i for i, x in enumerate(lines) if x.strip()]
        out = [orjson.loads(lines[i]) for i in kept[:-1]]
        if kept:
            try:
                out.append(orjson.loads(lines[kept[-1]]))
            except orjson.JSONDecodeError:
                if notes is not None:
                    notes.append(
                        f"{path.name}: dropped a torn last line ({lines[kept[-1]][:60]!r})"
                    )
                kept = kept[:-1]
        at = np.asarray(kept, dtype=np.int64)
        return out, starts[at], ends[at]


def _read_stream(
    path: Path, notes: list[str], spans: bool = True
) -> tuple[list[str], list[Any], np.ndarray, np.ndarray]:
    entries, starts, ends = read_lines(path, notes, spans)
    with no_gc():
        return (
            list(map(itemgetter("id"), entries)),
            list(map(itemgetter("fields"), entries)),
            starts,
            ends,
        )


def read_client_side(run_dir: Path) -> dict[str, Any]:
    """What the run folder alone holds, whatever the source of the system's side: run.json, the
    client ledger and the fault windows, as maps. A part that cannot be read is None, with why."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    run: dict[str, Any] = {}
    run_path = run_dir / "run.json"
    if run_path.exists():
        try:
            run = orjson.loads(run_path.read_bytes())
        except orjson.JSONDecodeError as err:
            missing["run"] = f"run.json is not valid JSON: {err}"
    else:
        missing["run"] = "run.json is missing"
    ledger: list[dict[str, Any]] | None = None
    files = sorted((run_dir / "history" / "ledger").glob("client-*.jsonl"))
    if files:
        ledger = []
        for path in files:
            client = path.stem.removeprefix("client-")
            records = read_lines(path, notes, spans=False)[0]
            for rec in records:
                rec.setdefault("client", client)
            ledger.extend(records)
    else:
        missing["ledger"] = (
            "no client ledger (history/ledger/client-*.jsonl): what clients were told is unknown"
        )
    faults: list[dict[str, Any]] | None = None
    faults_path = run_dir / "history" / "faults.jsonl"
    if faults_path.exists():
        faults = read_lines(faults_path, notes, spans=False)[0]
    elif _chaos_ran(run_dir, run):
        missing["faults"] = "history/faults.jsonl is missing although chaos experiments ran"
    else:
        faults = []  # no chaos ran: no fault windows, nothing to recover from
    return {"run": run, "ledger": ledger, "faults": faults, "missing": missing, "notes": notes}


def _chaos_ran(run_dir: Path, run: Mapping[str, Any]) -> bool:
    phases = run.get("phases") if isinstance(run.get("phases"), list) else []
    named = any(isinstance(p, dict) and "chaos" in str(p.get("name", "")) for p in phases or [])
    return named or any((run_dir / "chaos").glob("*.journal.json"))


def _explain_failed_export(run_dir: Path, missing: dict[str, str]) -> None:
    """Name why a part is missing when the export recorded its failure (history/export.json)."""
    path = run_dir / "history" / "export.json"
    try:
        errors = orjson.loads(path.read_bytes()).get("errors") or {} if path.exists() else {}
    except (orjson.JSONDecodeError, AttributeError):
        return
    for part, error in errors.items():
        if part in PART_FILES and not (run_dir / PART_FILES[part]).exists():
            missing[part] = f"{PART_FILES[part]} is missing: the export failed ({error})"


def _system_side(run_dir: Path, lazy: bool) -> dict[str, Any]:
    """Every part the system wrote but orders:events, built into frames. With `lazy`, the maps
    are not kept (they are read again from disk when quoted): what a worker process hands back."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    parts: dict[str, _Built] = {}
    others: dict[str, StreamEntries] = {}
    hist = run_dir / "history"
    for path in sorted((hist / "streams").glob("*.jsonl")):
        if path.name == _EVENTS_FILE:
            continue
        name = path.name.removesuffix(".jsonl").replace(".", ":")
        part = STREAM_PARTS.get(name)
        try:
            ids, maps, starts, ends = _read_stream(path, notes)
        except (orjson.JSONDecodeError, KeyError, TypeError) as err:
            missing[part or name] = f"history/streams/{path.name} could not be read: {err}"
            continue
        if part is None:
            others[name] = (ids, maps)
            continue
        keep = LineMaps([(path, starts, ends, {})], key="fields") if lazy else maps
        parts[part] = (part_frame(part, maps, ids=ids), keep)
    _explain_failed_export(run_dir, missing)
    for part, name in _RECORDS.items():
        path = hist / name
        if not path.exists():
            missing.setdefault(part, f"{PART_FILES[part]} is missing")
            continue
        try:
            records, starts, ends = read_lines(path, notes)
        except (orjson.JSONDecodeError, ValueError) as err:
            missing[part] = f"{PART_FILES[part]} could not be read: {err}"
            continue
        keep = LineMaps([(path, starts, ends, {})]) if lazy else records
        parts[part] = (part_frame(part, records), keep)
    inventory = None
    path = hist / "inventory.json"
    if path.exists():
        try:
            inventory = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as err:
            missing["inventory"] = f"{PART_FILES['inventory']} could not be read: {err}"
    return {
        "parts": parts,
        "others": others,
        "inventory": inventory,
        "missing": missing,
        "notes": notes,
    }


def _pack(frame: pd.DataFrame) -> dict[str, Any]:
    """A frame ready to cross to the parent process cheaply: each object column whose values
    repeat (a kind, an outcome, the order id of several ledger entries) as integer codes and
    its distinct values, so each distinct string is pickled once."""
    columns: dict[str, Any] = {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype == object and len(values):
            try:
                codes, uniques = pd.factorize(values)
            except TypeError:  # unhashable values (a fault's evidence): send them as they are
                codes, uniques = None, values
            if codes is not None and len(uniques) < 0.8 * len(values):
                columns[name] = ("codes", codes.astype(np.int32), np.asarray(uniques, dtype=object))
                continue
        columns[name] = ("values", values)
    return {"columns": columns, "index": frame.index}


def _unpack(packed: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, (how, *payload) in packed["columns"].items():
        if how == "codes":
            codes, uniques = payload
            table = np.empty(len(uniques) + 1, dtype=object)
            table[:-1] = uniques
            data[name] = table[codes]  # code -1 (a missing value) -> the last slot: None
        else:
            data[name] = payload[0]
    return object_frame(data, index=packed["index"])


def _packed_system_side(run_dir: Path) -> dict[str, Any]:
    """`_system_side` as a worker process returns it: frames packed, maps left on disk."""
    side = _system_side(run_dir, True)
    side["parts"] = {p: (_pack(f), m) for p, (f, m) in side["parts"].items()}
    return side


def _events(run_dir: Path) -> tuple[_Built | None, str | None, list[str]]:
    path = run_dir / "history" / "streams" / _EVENTS_FILE
    notes: list[str] = []
    if not path.exists():
        return None, None, notes
    try:
        ids, maps, _, _ = _read_stream(path, notes, spans=False)
    except (orjson.JSONDecodeError, KeyError, TypeError) as err:
        return None, f"history/streams/{_EVENTS_FILE} could not be read: {err}", notes
    return (part_frame("events", maps, ids=ids), maps), None, notes


def _client_parts(run_dir: Path) -> dict[str, Any]:
    """run.json, and the client ledger and fault windows as parts (read in this process)."""
    side = read_client_side(run_dir)
    parts: dict[str, _Built] = {}
    for part in ("ledger", "faults"):
        if side[part] is not None:
            parts[part] = (part_frame(part, side[part]), side[part])
    return {"run": side["run"], "parts": parts, "missing": side["missing"], "notes": side["notes"]}


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


def load_snapshot(run_dir: Path | str, *, workers: int | None = None) -> History:
    """Read a run folder's `history/` into a History. With two workers (the default where fork
    is safe, see `_workers`), orders:events and the client ledger are parsed here while a
    forked worker reads the rest; with one, everything is read in this process."""
    run_dir = Path(run_dir)
    side: dict[str, Any] | None = None
    if _workers(workers) > 1:
        try:
            ctx = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                future = pool.submit(_packed_system_side, run_dir)
                events, events_error, event_notes = _events(run_dir)
                client = _client_parts(run_dir)
                side = future.result()
            side["parts"] = {p: (_unpack(f), m) for p, (f, m) in side["parts"].items()}
        except (OSError, concurrent.futures.process.BrokenProcessPool):
            side = None  # no worker after all: read the rest here
    if side is None:
        events, events_error, event_notes = _events(run_dir)
        client = _client_parts(run_dir)
        side = _system_side(run_dir, False)
    parts = {**client["parts"], **side["parts"]}
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
    )
    set_histories(h, run_dir / PART_FILES["histories"])
    if "histories" in missing:  # the export recorded why it could not write them
        h.missing["histories"] = missing["histories"]
    return h
