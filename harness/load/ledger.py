"""The client ledger: what each client was told, one JSON line per HTTP attempt (docs/run-folder.md),
and beside it the customers' cancels (`cancel-<name>.jsonl`, one line per cancel request).

Written by the load generator alone (never through the system's Redis). Every line goes to the
file in one unbuffered `write(2)`, so it is in the kernel the moment `record` returns and
survives a crash of the generator; `fsync_every` also forces it to disk every N lines (and at
close), for crashes of the machine. A reader skips a torn last line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson

from harness.ids import order_id_for

__all__ = [
    "FIELDS",
    "OUTCOMES",
    "CancelLedger",
    "ClientLedger",
    "LedgerTail",
    "cancel_files",
    "classify",
    "ledger_dir",
    "ledger_files",
    "read_ledger",
]

LEDGER_SUBDIR = Path("history") / "ledger"
OUTCOMES = ("ok", "failed", "unknown")
FIELDS = (
    "seq",
    "op_id",
    "idempotency_key",
    "order_id",
    "customer_id",
    "amount_cents",
    "currency",
    "items",
    "attempt",
    "sent_at",
    "answered_at",
    "status",
    "outcome",
    "error",
)


def classify(status: int | None, body: Any = None) -> str:
    """The outcome of one attempt from its HTTP status (None/0: no answer) and parsed JSON body.

    2xx is `ok`; 4xx is a definite refusal (`failed`); a 5xx is `failed` only when the body is
    the service's own error (`{"detail": …}`, docs/api.md), since a proxy's or a crashing
    server's 5xx does not say whether the order was taken; a 504 is the service saying it does
    not know either (its call to Temporal may have landed); everything else is `unknown`.
    """
    if not status:
        return "unknown"
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500:
        return "failed"
    if status != 504 and 500 <= status < 600 and isinstance(body, dict) and "detail" in body:
        return "failed"
    return "unknown"


def ledger_dir(run_dir: Path) -> Path:
    return Path(run_dir) / LEDGER_SUBDIR


def ledger_files(run_dir: Path) -> list[Path]:
    return sorted(ledger_dir(run_dir).glob(f"{ClientLedger.PREFIX}*.jsonl"))


def cancel_files(run_dir: Path) -> list[Path]:
    return sorted(ledger_dir(run_dir).glob(f"{CancelLedger.PREFIX}*.jsonl"))


class _LineFile:
    """An append-only JSON-lines file of one process: each line numbered (`seq`, continued when
    the file is reopened) and written with one unbuffered `write(2)`."""

    PREFIX = ""

    def __init__(self, path: Path, fsync_every: int = 0) -> None:
        self.path = Path(path)
        self.name = self.path.stem.removeprefix(self.PREFIX)
        self.fsync_every = max(0, int(fsync_every))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.seq = _last_seq(self.path)
        self._since_sync = 0

    @classmethod
    def create(cls, run_dir: Path, name: str, fsync_every: int = 0) -> Self:
        """A new file for process `name`; `<name>-<pid>` when that name is taken already."""
        folder = ledger_dir(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for candidate in (name, f"{name}-{os.getpid()}"):
            path = folder / f"{cls.PREFIX}{candidate}.jsonl"
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            return cls(path, fsync_every)
        return cls(folder / f"{cls.PREFIX}{name}-{os.getpid()}.jsonl", fsync_every)

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one line (it is in the kernel when this returns) and return it."""
        if fields["outcome"] not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {fields['outcome']!r}")
        if self._fd is None:
            raise ValueError(f"ledger {self.path} is closed")
        self.seq += 1
        line = {"seq": self.seq, **fields}
        data = orjson.dumps(line) + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._since_sync += 1
        if self.fsync_every and self._since_sync >= self.fsync_every:
            os.fsync(self._fd)
            self._since_sync = 0
        return line

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClientLedger(_LineFile):
    """One process's ledger file, `history/ledger/client-<name>.jsonl`, append-only."""

    PREFIX = "client-"

    def record(
        self,
        *,
        op_id: str,
        idempotency_key: str,
        customer_id: str,
        amount_cents: int,
        currency: str,
        items: int,
        attempt: int,
        sent_at: float,
        answered_at: float,
        status: int | None,
        outcome: str,
        error: str | None = None,
        order_id: str | None = None,
    ) -> dict[str, Any]:
        """Append one attempt; it is in the file when this returns."""
        return self._append(
            {
                "op_id": op_id,
                "idempotency_key": idempotency_key,
                "order_id": order_id or order_id_for(idempotency_key),
                "customer_id": customer_id,
                "amount_cents": amount_cents,
                "currency": currency,
                "items": items,
                "attempt": attempt,
                "sent_at": sent_at,
                "answered_at": answered_at,
                "status": status or None,
                "outcome": outcome,
                "error": error,
            }
        )


class CancelLedger(_LineFile):
    """One process's customer cancels, `history/ledger/cancel-<name>.jsonl`: one line per
    POST /orders/{id}/cancel, with what the customer saw of the order just before."""

    PREFIX = "cancel-"

    def record(
        self,
        *,
        order_id: str,
        seen_status: str | None,
        sent_at: float,
        answered_at: float,
        status: int | None,
        outcome: str,
        error: str | None = None,
    ) -> dict[str, Any]:
        return self._append(
            {
                "order_id": order_id,
                "seen_status": seen_status,
                "sent_at": sent_at,
                "answered_at": answered_at,
                "status": status or None,
                "outcome": outcome,
                "error": error,
            }
        )


def _last_seq(path: Path) -> int:
    """The seq of the last complete line of an existing file (a reopened ledger continues it)."""
    last = 0
    for record in read_ledger(path).records:
        last = max(last, int(record.get("seq", 0)))
    return last


@dataclass
class LedgerRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: int = 0  # lines that were cut short (a crash mid-write) or unreadable


def read_ledger(path: Path) -> LedgerRead:
    """Every complete line of one ledger file."""
    out = LedgerRead()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return out
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            out.records.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            out.torn += 1
    return out


class LedgerTail:
    """Reads the lines added to a run's ledger files since the last call (files may appear late)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._offsets: dict[Path, int] = {}

    def read_new(self) -> Iterator[dict[str, Any]]:
        for path in ledger_files(self.run_dir):
            offset = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            end = chunk.rfind(b"\n") + 1  # only whole lines; a line being written waits
            self._offsets[path] = offset + end
            for raw in chunk[:end].split(b"\n"):
                if raw.strip():
                    try:
                        yield orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        continue
