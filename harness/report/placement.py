"""New orders during a payment fault: how long after its 202 was each order placed?

While payment is down or hangs, the sagas that wait for it must not stop new orders from being
placed and reserved (issue 17: waiting local activities held every workflow-task slot, so new
orders waited for their first step until payment came back). The figure: for every order whose
client was told 202 inside a payment fault window, the time from that answer (the ledger's
``answered_at`` of its first ``ok``) to the order's first ``OrderPlaced`` in orders:events,
with its p50, p99 and max. It should stay under ``TARGET_S``.

An order accepted in a window that has no OrderPlaced counts as never placed: it is listed, and
it sits above every placed order in the percentiles (a p99 that falls on one is ``None``, not
the p99 of the others). An OrderPlaced written before the 202 reached the client (the saga can
be quicker than the answer) counts as 0 s.

``placement_delays`` is the one computation (pure, on plain mappings); ``placement`` and
``placement_per_fault`` feed it a run's data. No payment fault window, no figure (``None``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.report.data import Fault, RunData

__all__ = [
    "NOT_PLACED_LISTED",
    "PAYMENT_FAULTS",
    "PAYMENT_SERVICE",
    "TARGET_S",
    "Placement",
    "fmt_delay",
    "payment_faults",
    "placement",
    "placement_delays",
    "placement_per_fault",
]

PAYMENT_SERVICE = "payment-service"
# Fault actions (faults.jsonl `action`) that leave payment's callers refused or waiting for the
# whole window: an outage, a pause (hang or flapping), a partition, replies lost after the
# charge. Kills and restarts are over in seconds and are not counted.
PAYMENT_FAULTS = ("outage", "pause_service", "partition_service", "lose_replies")
TARGET_S = 1.0
NOT_PLACED_LISTED = 10  # orders never placed that report.html and summary.md name


@dataclass(frozen=True)
class Placement:
    """Time from 202 to OrderPlaced for the orders accepted inside some fault windows."""

    faults: tuple[int, ...]  # the windows counted, by their index in faults.jsonl
    accepted: int  # orders told 202 inside one of them
    placed: int  # ... of which have an OrderPlaced
    not_placed: tuple[str, ...]  # ... and those that have none, sorted
    p50_s: float | None  # None: no order, or the percentile falls on an order never placed
    p99_s: float | None
    max_s: float | None
    note: str = ""  # why the figure is partial or empty

    @property
    def met(self) -> bool | None:
        """p99 under TARGET_S (False when it falls on orders never placed; None: no order)."""
        if self.accepted == 0:
            return None
        return self.p99_s is not None and self.p99_s < TARGET_S


def fmt_delay(value: float | None, never: str = "—") -> str:
    """A delay as 0.123 s / 14.2 s, or ``never`` (no order, or a percentile on one never placed)."""
    return never if value is None else f"{value:.3g} s"


def payment_faults(faults: Iterable[Fault]) -> list[Fault]:
    """The windows that stall payment's callers and whose fault did not fail to land."""
    return [
        f
        for f in faults
        if f.target == PAYMENT_SERVICE and f.action in PAYMENT_FAULTS and f.landed is not False
    ]


def _quantile(ranked: Sequence[float], q: float) -> float | None:
    """The q-quantile of ascending values (linear, as pandas), None when it touches +inf."""
    if not ranked:
        return None
    pos = q * (len(ranked) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = ranked[lo], ranked[hi]
    if math.isinf(a) or (math.isinf(b) and pos > lo):
        return None
    return a if pos == lo else a + (b - a) * (pos - lo)


def placement_delays(
    windows: Sequence[Fault],
    accepted_at: Mapping[str, float],
    placed_at: Mapping[str, float],
    note: str = "",
) -> Placement | None:
    """The figure for the orders accepted inside ``windows`` (None when there is no window).

    ``accepted_at``: order id -> when its client got its first 202; ``placed_at``: order id ->
    its first OrderPlaced; both in the same seconds as the windows' ``started_at``/``ended_at``.
    """
    if not windows:
        return None
    spans = [(f.started_at, f.ended_at) for f in windows]
    inside = sorted(oid for oid, t in accepted_at.items() if any(lo <= t <= hi for lo, hi in spans))
    delays = []
    missing = []
    for oid in inside:
        placed = placed_at.get(oid)
        if placed is None or not math.isfinite(placed):
            missing.append(oid)
        else:
            delays.append(max(0.0, placed - accepted_at[oid]))
    ranked = sorted(delays) + [math.inf] * len(missing)
    return Placement(
        faults=tuple(f.index for f in windows),
        accepted=len(inside),
        placed=len(delays),
        not_placed=tuple(missing),
        p50_s=_quantile(ranked, 0.50),
        p99_s=_quantile(ranked, 0.99),
        max_s=_quantile(ranked, 1.0),
        note=note,
    )


def _inputs(data: RunData) -> tuple[dict[str, float], dict[str, float], str]:
    """(accepted_at, placed_at, note) from the run's ledger and orders:events."""
    accepted: dict[str, float] = {}
    placed: dict[str, float] = {}
    notes = []
    if data.ledger is None:
        notes.append("no client ledger: no order is known to have been accepted")
    else:
        ok = data.ledger[data.ledger["outcome"] == "ok"].dropna(subset=["order_id", "answered_at"])
        accepted = ok.groupby("order_id")["answered_at"].min().to_dict()
    if data.events is None:
        notes.append("no orders:events export: no OrderPlaced could be found")
    else:
        ev = data.events[data.events["type"] == "OrderPlaced"].dropna(subset=["order_id"])
        placed = ev.groupby("order_id")["at"].min().to_dict()
    return accepted, placed, "; ".join(notes)


def placement(data: RunData) -> Placement | None:
    """The figure over every payment fault window of the run (None: the run has none)."""
    windows = payment_faults(data.faults)
    if not windows:
        return None
    accepted, placed, note = _inputs(data)
    return placement_delays(windows, accepted, placed, note)


def placement_per_fault(data: RunData) -> list[tuple[Fault, Placement]]:
    """The figure of each payment fault window on its own, in faults.jsonl order."""
    windows = payment_faults(data.faults)
    if not windows:
        return []
    accepted, placed, note = _inputs(data)
    out = []
    for fault in windows:
        got = placement_delays([fault], accepted, placed, note)
        if got is not None:
            out.append((fault, got))
    return out
