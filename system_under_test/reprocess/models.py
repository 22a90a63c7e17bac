"""Inputs and results of ReprocessOrders and its activities: single dataclasses, so fields can be
added without breaking histories (no `from __future__ import annotations`: Temporal's converter
evaluates the annotations)."""

from dataclasses import dataclass, field

__all__ = [
    "WORKFLOW_TYPE",
    "BatchResult",
    "CompletedOrder",
    "CorrectionBatch",
    "ReprocessInput",
    "ReprocessResult",
    "ReprocessTotals",
    "ScanInput",
    "ScanResult",
    "refund_for",
    "workflow_id_for",
]

WORKFLOW_TYPE = "ReprocessOrders"


def workflow_id_for(correction_id: str) -> str:
    """One workflow per correction: starting a correction twice is refused, not repeated."""
    return f"reprocess-{correction_id}"


def refund_for(amount_cents: int, percent_bp: int) -> int:
    """The price correction of an order: `percent_bp` basis points of its amount, in whole cents
    rounded down (0: the order is not affected)."""
    return amount_cents * percent_bp // 10_000


@dataclass
class ReprocessTotals:
    """What the chain of runs did so far (carried across continue-as-new)."""

    scanned: int = 0  # entries of orders:events examined
    completed: int = 0  # OrderCompleted entries found in the range
    corrected: int = 0  # corrections applied now
    already: int = 0  # corrections found already applied (a retried batch)
    unaffected: int = 0  # orders whose correction rounds to 0 cents
    refused: int = 0  # orders the correction refused (no capture: never in a completed order)
    refunded_cents: int = 0
    batches: int = 0
    runs: int = 1


@dataclass
class ReprocessInput:
    """Correct every order completed in [from_id, to_id] of orders:events (stream ids, inclusive;
    "-" the start, "+" the end as the first run finds it) by `percent_bp` basis points of its
    amount, refunded. `cursor` is the last entry examined (the next scan starts after it)."""

    correction_id: str
    from_id: str = "-"
    to_id: str = "+"
    percent_bp: int = 500
    batch_size: int = 200
    batches_per_run: int = 20
    cursor: str = ""
    totals: ReprocessTotals = field(default_factory=ReprocessTotals)


@dataclass
class ScanInput:
    from_id: str
    to_id: str
    cursor: str
    batch_size: int


@dataclass
class CompletedOrder:
    order_id: str
    amount_cents: int
    stream_id: str  # its OrderCompleted entry


@dataclass
class ScanResult:
    orders: list[CompletedOrder]
    cursor: str  # the last entry examined
    scanned: int
    done: bool  # the range is exhausted


@dataclass
class CorrectionBatch:
    correction_id: str
    percent_bp: int
    orders: list[CompletedOrder]


@dataclass
class BatchResult:
    corrected: int = 0
    already: int = 0
    unaffected: int = 0
    refused: int = 0
    refunded_cents: int = 0


@dataclass
class ReprocessResult:
    correction_id: str
    from_id: str
    to_id: str
    totals: ReprocessTotals
