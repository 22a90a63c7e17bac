"""The run folder's one owner (the store, as Jepsen's `store.clj`): where every file of a run
lives (`RunFolder`), the one JSON-lines reader, tail and appender, the atomic writers, and the
folder's creation under reports/ with reports/latest pointing at the newest.

Why one owner: the folder is a contract between the load generator, the chaos actions, the
verifier, the report and the self-test, written and read on different days and machines
(docs/run-folder.md). Spelling a path, or the rule for a torn line, once keeps them agreeing.

The torn-line rule, for every JSON-lines file: a line is a record when it is a JSON object.
A last line without its newline that is not one is a write cut short (a crash mid-write): it
is skipped and counted as `torn`. Any other line that is not a JSON object is `corrupt`: it
is skipped and its number listed, never silently; whoever reads decides what that costs (the
verifier cannot read the part, the report says so, a live view counts it). Blank lines are
nothing. A tail returns whole lines only: a line still being written waits for its newline.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from harness.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np  # imported when spans are asked for: the CLI starts without numpy

__all__ = [
    "GATE_FILE",
    "JsonLines",
    "JsonLinesTail",
    "RunFolder",
    "append_jsonl",
    "encode_line",
    "existing_run_folder",
    "iter_jsonl",
    "new_run_dir",
    "parse_lines",
    "read_json",
    "read_json_or_empty",
    "read_jsonl",
    "read_run_json",
    "stream_file_name",
    "update_run_json",
    "write_atomic",
    "write_json",
    "write_jsonl",
    "write_line",
]

GATE_FILE = "gate.json"  # what `sagaquake run` decided (harness/run/gate.py writes it)
CLIENT_PREFIX = "client-"
CANCEL_PREFIX = "cancel-"
JOURNAL_SUFFIX = ".journal.json"


def stream_file_name(stream: str) -> str:
    """`orders:events` → `orders.events.jsonl`."""
    return stream.replace(":", ".") + ".jsonl"


@dataclass(frozen=True)
class RunFolder:
    """Every path of one run folder (docs/run-folder.md). `RUN_JSON` and the other upper-case
    names are the paths relative to the folder, for messages that name a file."""

    path: Path

    RUN_JSON = "run.json"
    VERDICT = "verdict.json"
    GATE = GATE_FILE
    REPORT_HTML = "report.html"
    SUMMARY_MD = "summary.md"
    JUNIT_XML = "junit.xml"
    HISTORY = "history"
    LEDGER_DIR = "history/ledger"
    STREAMS_DIR = "history/streams"
    TEMPORAL = "history/temporal.jsonl"
    WORKFLOWS = "history/workflows.jsonl.gz"
    REPROCESS = "history/reprocess.jsonl"
    INVENTORY = "history/inventory.json"
    READMODEL = "history/readmodel.jsonl"
    FAULTS = "history/faults.jsonl"
    EXPORT = "history/export.json"
    HARNESS_ERROR = "harness-error.txt"  # the traceback of a run the harness itself broke
    CLIENT_LEDGERS = f"{LEDGER_DIR}/{CLIENT_PREFIX}*.jsonl"
    CANCEL_LEDGERS = f"{LEDGER_DIR}/{CANCEL_PREFIX}*.jsonl"
    CHAOS_DIR = "chaos"
    CHAOS_STATE = "chaos/state.json"
    LOCUST_DIR = "locust"
    LOAD_PLAN = "locust/load.json"
    LOCUST_REPORT = "locust/report.html"
    LOGS_DIR = "logs"
    PLATFORM_DIR = "platform"

    def __init__(self, path: Path | str) -> None:
        object.__setattr__(self, "path", Path(path))

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    @staticmethod
    def stream_rel(stream: str) -> str:
        """`orders:events` → `history/streams/orders.events.jsonl`."""
        return f"{RunFolder.STREAMS_DIR}/{stream_file_name(stream)}"

    @property
    def run_json(self) -> Path:
        return self.path / self.RUN_JSON

    @property
    def verdict(self) -> Path:
        return self.path / self.VERDICT

    @property
    def gate(self) -> Path:
        return self.path / self.GATE

    @property
    def outputs(self) -> tuple[Path, Path, Path]:
        """The report's files: report.html, summary.md, junit.xml."""
        return (
            self.path / self.REPORT_HTML,
            self.path / self.SUMMARY_MD,
            self.path / self.JUNIT_XML,
        )

    @property
    def harness_error(self) -> Path:
        return self.path / self.HARNESS_ERROR

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def ledger_dir(self) -> Path:
        return self.path / self.LEDGER_DIR

    @property
    def streams_dir(self) -> Path:
        return self.path / self.STREAMS_DIR

    @property
    def temporal(self) -> Path:
        return self.path / self.TEMPORAL

    @property
    def workflows(self) -> Path:
        return self.path / self.WORKFLOWS

    @property
    def reprocess(self) -> Path:
        return self.path / self.REPROCESS

    @property
    def inventory(self) -> Path:
        return self.path / self.INVENTORY

    @property
    def readmodel(self) -> Path:
        return self.path / self.READMODEL

    @property
    def faults(self) -> Path:
        return self.path / self.FAULTS

    @property
    def export(self) -> Path:
        return self.path / self.EXPORT

    @property
    def chaos_dir(self) -> Path:
        return self.path / self.CHAOS_DIR

    @property
    def chaos_state(self) -> Path:
        return self.path / self.CHAOS_STATE

    @property
    def locust_dir(self) -> Path:
        return self.path / self.LOCUST_DIR

    @property
    def load_plan(self) -> Path:
        """The load's plan (`sagaquake load` writes it before Locust starts)."""
        return self.path / self.LOAD_PLAN

    @property
    def locust_report(self) -> Path:
        return self.path / self.LOCUST_REPORT

    def arrivals(self, name: str) -> Path:
        """One Locust process's schedule and lag: `locust/arrivals-<name>.json`."""
        return self.locust_dir / f"arrivals-{name}.json"

    def arrivals_files(self) -> list[Path]:
        return sorted(self.locust_dir.glob("arrivals-*.json"))

    @property
    def logs_dir(self) -> Path:
        return self.path / self.LOGS_DIR

    @property
    def platform_dir(self) -> Path:
        return self.path / self.PLATFORM_DIR

    def stream(self, stream: str) -> Path:
        """The export of one Redis stream: `history/streams/<stream with ':' as '.'>.jsonl`."""
        return self.path / self.stream_rel(stream)

    def streams(self) -> list[tuple[str, Path]]:
        """Every exported stream, (stream name, file), by file name."""
        return [
            (p.name.removesuffix(".jsonl").replace(".", ":"), p)
            for p in sorted(self.streams_dir.glob("*.jsonl"))
        ]

    def ledger_file(self, prefix: str, name: str) -> Path:
        """A ledger file of load process `name`: `history/ledger/<prefix><name>.jsonl`."""
        return self.ledger_dir / f"{prefix}{name}.jsonl"

    def client_ledger(self, name: str) -> Path:
        return self.ledger_file(CLIENT_PREFIX, name)

    def cancel_ledger(self, name: str) -> Path:
        return self.ledger_file(CANCEL_PREFIX, name)

    def client_ledgers(self) -> list[Path]:
        """The client ledger's files, one per load process, by name."""
        return sorted(self.ledger_dir.glob(f"{CLIENT_PREFIX}*.jsonl"))

    def cancel_ledgers(self) -> list[Path]:
        return sorted(self.ledger_dir.glob(f"{CANCEL_PREFIX}*.jsonl"))

    @staticmethod
    def ledger_name(path: Path) -> str:
        """The process a ledger file belongs to: `client-c1.jsonl` → `c1`."""
        return path.stem.removeprefix(CLIENT_PREFIX).removeprefix(CANCEL_PREFIX)

    @staticmethod
    def journal_rel(experiment: str) -> str:
        """A Chaos Toolkit journal: `chaos/<experiment>.journal.json`."""
        return f"{RunFolder.CHAOS_DIR}/{experiment}{JOURNAL_SUFFIX}"

    def journal(self, experiment: str) -> Path:
        return self.path / self.journal_rel(experiment)

    def journals(self) -> list[Path]:
        return sorted(self.chaos_dir.glob(f"*{JOURNAL_SUFFIX}"))

    @staticmethod
    def experiment_of(journal: Path) -> str:
        """`chaos/kill-payment-pods.journal.json` → `kill-payment-pods`."""
        return journal.name.removesuffix(JOURNAL_SUFFIX)


# JSON lines: one reader, one tail, one appender (the rule is in the module's docstring).


@dataclass
class JsonLines:
    """What one JSON-lines file holds: its records, and what was skipped and why. With `spans`,
    `starts`/`ends` are each record's line in the file, in bytes (to read one again later)."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    starts: np.ndarray | None = None  # with spans only
    ends: np.ndarray | None = None
    torn: int = 0  # 1 when the last line was cut short (skipped)
    torn_line: bytes = b""
    corrupt: list[int] = field(default_factory=list)  # numbers (from 1) of other bad lines

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of the records' lines; only for a file read with `spans`."""
        if self.starts is None or self.ends is None:
            raise ValueError(f"{self.path.name} was read without spans")
        return self.starts, self.ends

    @property
    def unreadable(self) -> int:
        """Lines skipped: the torn one and the corrupt ones."""
        return self.torn + len(self.corrupt)

    def notes(self) -> list[str]:
        """What was skipped, in words (empty when nothing was)."""
        out = []
        if self.torn:
            out.append(f"{self.path.name}: dropped a torn last line ({self.torn_line[:60]!r})")
        if self.corrupt:
            out.append(self.corrupt_note())
        return out

    def corrupt_note(self) -> str:
        lines = ", ".join(map(str, self.corrupt[:5])) + (" …" if len(self.corrupt) > 5 else "")
        return f"{self.path.name}: {len(self.corrupt)} line(s) not a JSON object (line {lines})"


def _object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object a line holds, or None: the one test of whether a line is a record."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_lines(
    lines: list[bytes], open_last: bool
) -> tuple[list[Any], list[int] | None, bytes, list[int]]:
    """Records of `lines`, the indexes they came from (None: every non-empty line), the torn
    last line (when `open_last`: it had no newline) and the numbers of corrupt lines."""
    try:  # the fast path (no per-line Python): every line is a JSON object
        records = list(map(orjson.loads, [x for x in lines if x]))
        if set(map(type, records)) <= {dict}:
            return records, None, b"", []
    except orjson.JSONDecodeError:
        pass
    records, kept, corrupt = [], [], []
    torn = b""
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        value = _object(raw)
        if value is not None:
            records.append(value)
            kept.append(i)
        elif i == last and open_last:
            torn = raw
        else:
            corrupt.append(i + 1)
    return records, kept, torn, corrupt


def read_jsonl(path: Path | str, *, spans: bool = False) -> JsonLines:
    """Every record of a JSON-lines file, by the torn-line rule. A missing file has none."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JsonLines(path)
    lines = data.split(b"\n")  # the last item is the unterminated rest: b"" after a newline
    records, kept, torn, corrupt = parse_lines(lines, open_last=True)
    out = JsonLines(path, records, torn=int(bool(torn)), torn_line=torn, corrupt=corrupt)
    if spans:
        import numpy as np

        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        starts = np.concatenate(([0], newlines + 1))
        ends = np.concatenate((newlines, [len(data)]))
        at = ends > starts if kept is None else np.asarray(kept, dtype=np.int64)
        out.starts, out.ends = starts[at], ends[at]
    return out


def iter_jsonl(path: Path, seen: JsonLines | None = None) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file one at a time (gzip'd when its name ends in .gz), for
    files too big to hold at once; the same rule as `read_jsonl`, what was skipped counted in
    `seen` when given."""
    seen = seen if seen is not None else JsonLines(path)
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            value = _object(raw)
            if value is not None:
                yield value
            elif raw.endswith(b"\n"):
                seen.corrupt.append(number)
            else:
                seen.torn, seen.torn_line = 1, raw


class JsonLinesTail:
    """The whole lines added to files since the last read of each (files may appear late)."""

    def __init__(self) -> None:
        self._offsets: dict[Path, int] = {}
        self.corrupt = 0  # lines skipped so far: not a JSON object

    def read_new(self, path: Path) -> list[dict[str, Any]]:
        offset = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # only whole lines; a line being written waits
        self._offsets[path] = offset + end
        records, _, _, corrupt = parse_lines(chunk[:end].split(b"\n"), open_last=False)
        self.corrupt += len(corrupt)
        return records


def encode_line(record: Any) -> bytes:
    """One JSON line, newline included (values JSON has no type for are written as text)."""
    return orjson.dumps(record, default=str) + b"\n"


def write_line(fd: int, record: Any) -> bytes:
    """Append one record to an open file in one `write(2)` (looped only if the kernel takes
    part of it): on its return the line is in the kernel, whatever happens to this process."""
    data = encode_line(record)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return data


def append_jsonl(path: Path, record: Any, *, fsync: bool = True) -> None:
    """Append one record to `path` (created with its folder), fsynced unless told otherwise:
    for lines written now and then (fault windows, reprocess requests), not for a hot loop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_line(fd, record)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_jsonl(path: Path, records: Iterable[Any], batch: int = 10_000) -> int:
    """Write a whole JSON-lines file atomically, `batch` lines at a time (a million entries
    never sit in memory as one buffer). Returns the number of lines."""
    n = 0

    def chunks() -> Iterator[bytes]:
        nonlocal n
        chunk: list[bytes] = []
        for record in records:
            chunk.append(encode_line(record))
            if len(chunk) >= batch:
                n += len(chunk)
                yield b"".join(chunk)
                chunk.clear()
        n += len(chunk)
        yield b"".join(chunk)

    write_atomic(path, chunks())
    return n


# Whole files: written atomically, so a reader (or a crash) never sees half of one.


def write_atomic(path: Path, data: bytes | str | Iterable[bytes]) -> Path:
    """Write `path` through a temporary file beside it (created with its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as out:
            if isinstance(data, str):
                out.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                out.write(data)
            else:
                for part in data:
                    out.write(part)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any) -> Path:
    """One JSON file of the run folder, indented, keys sorted, atomically."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return write_atomic(path, orjson.dumps(data, default=str, option=option) + b"\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """One JSON object of the run folder, or None when it is missing (invalid JSON raises)."""
    if not path.exists():
        return None
    return dict(orjson.loads(path.read_bytes()))


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """One JSON object, or {} when it is missing, unreadable or not an object: for a reader
    that must go on whatever a crashed run left behind."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return read_json(RunFolder(run_dir).run_json) or {}


def update_run_json(run_dir: Path, **values: Any) -> dict[str, Any]:
    """Merge values into run.json (written atomically, so a crash never leaves half a file)."""
    data = read_run_json(run_dir)
    data.update(values)
    write_json(RunFolder(run_dir).run_json, data)
    return data


def existing_run_folder(run_dir: Path | str) -> RunFolder:
    """A run folder to read (verify, report): it must exist and hold run.json or history/. A
    folder that holds neither is not a run's (reports/ itself, a typo'd path that exists), and
    nothing may be written into it: a ConfigError says so."""
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise ConfigError(
            f"no run folder at '{run_dir}': pass a folder under reports/ (e.g. reports/latest)"
        )
    if not folder.run_json.exists() and not folder.history.is_dir():
        raise ConfigError(
            f"'{run_dir}' is not a run folder (no {RunFolder.RUN_JSON}, no {RunFolder.HISTORY}/): "
            "pass a folder under reports/ (e.g. reports/latest)"
        )
    return folder


def new_run_dir(label: str, root: Path | None = None) -> Path:
    """Create reports/<YYYYmmdd-HHMMSS>-<label>/ (unique) and point reports/latest at it."""
    if root is None:
        # Imported here: the verifier's reader child reads run folders with this module and
        # nothing of pydantic (harness/verify/system_side.py).
        from harness.settings import reports_root

        root = reports_root()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{label}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = root / f"{stamp}-{label}-{n}"
    try:
        run_dir.mkdir(parents=True)
        probe = run_dir / ".writable"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write the run folder {str(run_dir)!r}: {exc.strerror}; set SAGAQUAKE_REPORTS_DIR to a writable folder"
        ) from None
    latest = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        tmp.replace(latest)
    except OSError:
        pass  # a file system without symlinks: the printed path is enough
    update_run_json(run_dir, run_id=run_dir.name, started_at=time.time())
    return run_dir
