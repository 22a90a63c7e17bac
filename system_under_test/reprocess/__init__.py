"""Event reprocessing: ReprocessOrders walks a range of orders:events in batches and applies an
idempotent correction to the orders it finds (docs/system.md)."""
