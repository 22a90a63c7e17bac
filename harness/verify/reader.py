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

from harness import keys
from harness.runs import JsonLines, RunFolder, read_json_or_empty, read_jsonl
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

__all__ = ["LineMaps", "load_snapshot", "read_client_side"]

_RECORDS = ("temporal", "readmodel")  # the parts that are JSON lines of records, not streams
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
    run: dict[str, Any] = {}
    folder = RunFolder(run_dir)
    if folder.run_json.exists():
        try:
            run = orjson.loads(folder.run_json.read_bytes())
        except orjson.JSONDecodeError as err:
            missing["run"] = f"{folder.RUN_JSON} is not valid JSON: {err}"
    else:
        missing["run"] = f"{folder.RUN_JSON} is missing"
    ledger: list[dict[str, Any]] | None = None
    files = folder.client_ledgers()
    if not files:
        missing["ledger"] = (
            f"no client ledger ({folder.CLIENT_LEDGERS}): what clients were told is unknown"
        )
    else:
        try:
            ledger = _read_ledger(files, notes)
        except ValueError as err:
            missing["ledger"] = f"{folder.CLIENT_LEDGERS} could not be read: {err}"
    faults: list[dict[str, Any]] | None = None
    if folder.faults.exists():
        try:
            faults = _read(folder.faults, notes).records
        except ValueError as err:
            missing["faults"] = f"{folder.FAULTS} could not be read: {err}"
    elif _chaos_ran(folder, run):
        missing["faults"] = f"{folder.FAULTS} is missing although chaos experiments ran"
    else:
        faults = []  # no chaos ran: no fault windows, nothing to recover from
    return {"run": run, "ledger": ledger, "faults": faults, "missing": missing, "notes": notes}


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


def _system_side(run_dir: Path, lazy: bool) -> dict[str, Any]:
    """Every part the system wrote but orders:events, built into frames. With `lazy`, the maps
    are not kept (they are read again from disk when quoted): what a worker process hands back."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    parts: dict[str, _Built] = {}
    others: dict[str, StreamEntries] = {}
    folder = RunFolder(run_dir)
    for name, path in folder.streams():
        if name == keys.EVENTS:
            continue
        part = STREAM_PARTS.get(name)
        try:
            ids, maps, lines = _read_stream(path, notes)
        except (ValueError, KeyError, TypeError) as err:
            missing[part or name] = f"{folder.stream_rel(name)} could not be read: {err}"
            continue
        if part is None:
            others[name] = (ids, maps)
            continue
        keep = LineMaps([(path, *lines.spans(), {})], key="fields") if lazy else maps
        parts[part] = (part_frame(part, maps, ids=ids), keep)
    _explain_failed_export(run_dir, missing)
    for part in _RECORDS:
        path = folder / PART_FILES[part]
        if not path.exists():
            missing.setdefault(part, f"{PART_FILES[part]} is missing")
            continue
        try:
            lines = _read(path, notes, spans=True)
        except ValueError as err:
            missing[part] = f"{PART_FILES[part]} could not be read: {err}"
            continue
        keep = LineMaps([(path, *lines.spans(), {})]) if lazy else lines.records
        parts[part] = (part_frame(part, lines.records), keep)
    inventory = None
    path = folder.inventory
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
    path = RunFolder(run_dir).stream(keys.EVENTS)
    notes: list[str] = []
    if not path.exists():
        return None, None, notes
    try:
        ids, maps, _ = _read_stream(path, notes, spans=False)
    except (ValueError, KeyError, TypeError) as err:
        return None, f"{PART_FILES['events']} could not be read: {err}", notes
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
