"""payment-service: captures and refunds with idempotency keys over its own Redis ledger."""
