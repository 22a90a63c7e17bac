"""A stand-in for the Redis calls of the live monitor (`harness.live`): the order lookups in the
event log, the payments ledger and the read model, with the answers a test sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from harness import keys

__all__ = ["FakeRedis", "write_lines"]


class FakeRedis:
    """Orders' dedupe hashes (`events`: order id → event types), capture entries, the read
    model's in-flight set (order id → placed ms) and count sets; `down` makes every call fail."""

    def __init__(
        self,
        events: dict[str, set[str]] | None = None,
        captures: list[str] | None = None,
        in_flight: dict[str, float] | None = None,
        counts: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.events = events or {}
        self.captures = captures or []
        self.in_flight = in_flight or {}
        self.counts = counts
        self.down = False
        self._replies: list[Any] = []
        self.looked_up: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise redis.ConnectionError("connection refused")

    def pipeline(self, transaction: bool = False) -> FakeRedis:
        self._replies = []
        return self

    def __enter__(self) -> FakeRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self._replies = []

    def hmget(self, key: str, *fields: str) -> None:
        order_id = key.removeprefix(keys.dedupe(""))
        self.looked_up.append(order_id)
        seen = self.events.get(order_id, set())
        self._replies.append([f"{i}-0" if f in seen else None for i, f in enumerate(fields, 1)])

    def zcard(self, key: str) -> None:
        self._replies.append(len(self.in_flight))

    def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> None:
        oldest = sorted(self.in_flight.items(), key=lambda kv: kv[1])[:1]
        self._replies.append(oldest)

    def scard(self, key: str) -> None:
        names = (keys.READMODEL_PLACED, keys.READMODEL_COMPLETED, keys.READMODEL_CANCELLED)
        self._replies.append(self.counts[names.index(key)])

    def execute(self) -> list[Any]:
        self._check()
        replies, self._replies = self._replies, []
        return replies

    def xread(self, streams: dict[str, str], count: int = 0) -> list[Any]:
        self._check()
        ((stream, last),) = streams.items()
        entries = [
            (f"{i}-0", {"kind": "capture", "order_id": order_id})
            for i, order_id in enumerate(self.captures, 1)
            if i > int(last.split("-")[0])
        ]
        return [(stream, entries)] if entries else []


def write_lines(run_dir: Path, lines: list[dict[str, Any]], name: str = "t") -> None:
    """Append raw lines to a client ledger of `run_dir`, as the load generator's files hold them."""
    path = run_dir / "history" / "ledger" / f"client-{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
