"""The client ledger: what each client was told, one JSON line per HTTP attempt (docs/run-folder.md),
and beside it the customers' cancels (`cancel-<name>.jsonl`, one line per cancel request).

Written by the load generator alone (never through the system's Redis). Every line goes to the
file in one unbuffered `write(2)`, so it is in the kernel the moment `record` returns and
survives a crash of the generator; `fsync_every` also forces it to disk every N lines (and at
close), for crashes of the machine. Where the files live, how a line is encoded and how it is
read back (a torn last line skipped and counted) are the run folder's (`harness.runs`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from harness.ids import order_id_for
from harness.runs import (
    CANCEL_PREFIX,
    CLIENT_PREFIX,
    JsonLinesTail,
    RunFolder,
    read_jsonl,
    write_line,
)

__all__ = [
    "FIELDS",
    "OUTCOMES",
    "CancelLedger",
    "ClientLedger",
    "LedgerTail",
    "classify",
]

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
        folder = RunFolder(run_dir)
        folder.ledger_dir.mkdir(parents=True, exist_ok=True)
        for candidate in (name, f"{name}-{os.getpid()}"):
            path = folder.ledger_file(cls.PREFIX, candidate)
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            return cls(path, fsync_every)
        return cls(folder.ledger_file(cls.PREFIX, f"{name}-{os.getpid()}"), fsync_every)

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Write one line (it is in the kernel when this returns) and return it."""
        if fields["outcome"] not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {fields['outcome']!r}")
        if self._fd is None:
            raise ValueError(f"ledger {self.path} is closed")
        self.seq += 1
        line = {"seq": self.seq, **fields}
        write_line(self._fd, line)
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

    PREFIX = CLIENT_PREFIX

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

    PREFIX = CANCEL_PREFIX

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
    return max((int(r.get("seq", 0)) for r in read_jsonl(path).records), default=0)


class LedgerTail:
    """Reads the lines added to a run's client ledger files since the last call (files may
    appear late); a line still being written waits for its newline."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._folder = RunFolder(self.run_dir)
        self._tail = JsonLinesTail()

    def read_new(self) -> Iterator[dict[str, Any]]:
        for path in self._folder.client_ledgers():
            yield from self._tail.read_new(path)
