"""Workflow and activity inputs: single dataclasses, so fields can be added without breaking histories.

No `from __future__ import annotations` here: Temporal's converter calls get_type_hints on every
conversion, and string annotations would be re-evaluated each time (4% of the worker's CPU).
"""

from dataclasses import dataclass, field

__all__ = [
    "BUSINESS_FAILURES",
    "CANCEL_SIGNAL",
    "CUSTOMER_CANCELLED",
    "TASK_QUEUE",
    "WORKFLOW_TYPE",
    "CancelInput",
    "LineItem",
    "OrderInput",
    "OrderResult",
]

WORKFLOW_TYPE = "OrderSaga"
TASK_QUEUE = "order-saga"

# Failures the saga answers by compensating, never by retrying: the customer's problem, not ours.
BUSINESS_FAILURES = (
    "PaymentDeclined",
    "OutOfStock",
    "UnknownSku",
    "ReservationLost",
    "UnexpectedResponse",
    "FraudSuspected",  # version 2's fraud check
)

# The saga's signal for a customer's cancel, and the reason its OrderCancelled then carries.
CANCEL_SIGNAL = "cancel"
CUSTOMER_CANCELLED = "customer_cancelled"


@dataclass
class LineItem:
    sku: str
    qty: int


@dataclass
class OrderInput:
    order_id: str
    customer_id: str
    items: list[LineItem]
    amount_cents: int
    currency: str
    idempotency_key: str = ""
    accepted_at_ms: int = 0


@dataclass
class CancelInput:
    order: OrderInput
    reason: str


@dataclass
class OrderResult:
    order_id: str
    status: str  # completed | cancelled
    reason: str = ""
    steps: list[str] = field(default_factory=list)
