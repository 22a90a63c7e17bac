"""Read a run folder's snapshot (`history/`, docs/run-folder.md) into a History.

Why slices and a second process: a million events are ~2.3 million JSON lines, and holding
them parsed would cost ~2.6 KB per event. Each part is read a slice at a time (`chunks.py`)
into the few compact columns the checks read (`columns.py`), and the maps are dropped: they
are read again from the file on demand (`LineMaps`), for the few rows a counter-example quotes;
the event fields a check reads beyond the columns are kept for the rows that have them
(`fields.EVENT_FIELDS`). orders:events is read here, and everything else (the client ledger,
the other streams, Temporal's view, the read model) at the same time in a child process
without pandas (`system_side.py`), which hands back its columns packed: the two take about as
long. On one core the same happens in turn.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

import harness
from harness import keys
from harness.runs import RunFolder
from harness.settings import VerifySettings
from harness.verify.columns import KeptFields, unpack_part
from harness.verify.fields import PART_FILES
from harness.verify.history import (
    History,
    KeptEvents,
    assemble_history,
    part_frame,
    set_histories,
)
from harness.verify.system_side import (
    LineMaps,
    ledger_files,
    read_lines,
    read_part,
    system_side,
)
from harness.verify.texts import Texts

__all__ = ["LineMaps", "load_snapshot", "read_client_side"]

_Built = tuple[pd.DataFrame, Sequence[Mapping[str, Any]]]
_Texts = dict[str, dict[str, Texts]]  # part -> its columns held as bytes (History.texts)


def read_client_side(run_dir: Path) -> dict[str, Any]:
    """What the run folder alone holds, whatever the source of the system's side: run.json, the
    client ledger and the fault windows, as maps. A part that cannot be read is None, with why."""
    missing: dict[str, str] = {}
    notes: list[str] = []
    folder = RunFolder(run_dir)
    run = _run_json(folder, missing)
    ledger: list[dict[str, Any]] | None = None
    files = ledger_files(folder, missing)
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


def _faults(
    folder: RunFolder, run: Mapping[str, Any], missing: dict[str, str], notes: list[str]
) -> list[dict[str, Any]] | None:
    if folder.faults.exists():
        try:
            return read_lines(folder.faults, notes).records
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
        records = read_lines(path, notes).records
        for rec in records:
            rec.setdefault("client", client)
        ledger.extend(records)
    return ledger


def _chaos_ran(folder: RunFolder, run: Mapping[str, Any]) -> bool:
    phases = run.get("phases") if isinstance(run.get("phases"), list) else []
    named = any(isinstance(p, dict) and "chaos" in str(p.get("name", "")) for p in phases or [])
    return named or bool(folder.journals())


def _events(
    run_dir: Path, order_ids: dict[Any, Any], texts: _Texts
) -> tuple[_Built | None, dict[str, KeptEvents], str | None, list[str]]:
    """orders:events: its frame, its maps left on disk, and the fields the checks read of a few
    event types (`fields.EVENT_FIELDS`)."""
    path = RunFolder(run_dir).stream(keys.EVENTS)
    notes: list[str] = []
    if not path.exists():
        return None, {}, None, notes
    kept = KeptFields()
    try:
        packed, maps = read_part("events", [(path, {})], notes, stream=True, kept=kept)
    except (ValueError, KeyError, TypeError) as err:
        return None, {}, f"{PART_FILES['events']} could not be read: {err}", notes
    frame, texts["events"] = unpack_part(packed, order_ids)
    del packed  # the packed columns, freed before the kept fields are unpacked
    return (frame, maps), kept.kept(), None, notes


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
    """How many processes read a snapshot: `workers`, else SAGAQUAKE_VERIFY_WORKERS, else 2 on
    two cores or more without gevent monkey-patching (Locust's: a process under it has never
    been measured or tested with the reader child), else 1."""
    if workers is None:
        workers = VerifySettings.field_from_env("verify_workers")
    if workers is not None:
        return workers
    return 2 if (os.cpu_count() or 1) > 1 and not _gevent_patched() else 1


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


# Not `-m`: run as __main__, the module's classes would be pickled as __main__'s.
_CHILD = "import sys; from harness.verify.system_side import main; sys.exit(main())"


def _in_worker(run_dir: Path, here: Callable[[], None]) -> dict[str, Any] | None:
    """`system_side(run_dir)` from a child process while `here()` runs in this process; None
    when the child could not start or did not finish (the caller then reads it here, and meets
    the same error, if any). The child is a fresh interpreter running `system_side.py`, not a
    fork: a fork's peak counts this process's pandas and everything it holds at the fork, and
    the child needs numpy and orjson only. It hands its columns back through a temporary file,
    not a pipe: a pipe's message is one bytes object in each process besides the columns."""
    fd, name = tempfile.mkstemp(prefix="sagaquake-verify-", suffix=".pickle")
    os.close(fd)
    child: subprocess.Popen[bytes] | None = None
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(run_dir), name],
            env=_child_env(),
            stdin=subprocess.DEVNULL,
        )
        here()
        if child.wait() != 0:
            return None
        with open(name, "rb") as f:
            side: dict[str, Any] = pickle.load(f)
        return side
    except OSError:
        return None
    finally:
        if child is not None and child.poll() is None:  # here() raised: stop the child
            child.kill()
            child.wait()
        with contextlib.suppress(OSError):
            os.unlink(name)


def _child_env() -> dict[str, str]:
    """This environment, with the folder this `harness` package is imported from first on the
    child's path (a caller may have found it through sys.path alone)."""
    root = str(Path(harness.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def load_snapshot(run_dir: Path | str, *, workers: int | None = None) -> History:
    """Read a run folder's `history/` into a History. With two workers (the default, see
    `_workers`), orders:events is read here while a child process reads the rest (`_in_worker`);
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
        side = system_side(run_dir)
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
