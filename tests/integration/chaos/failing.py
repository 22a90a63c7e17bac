"""An action that fails half-way through a method, for the rollback tests."""

from __future__ import annotations

from typing import Any

from harness.chaos.context import chaos_context
from harness.chaos.redis_memory import try_write


def explode(configuration: dict[str, Any] | None = None) -> None:
    """Fail, after checking that the fault before it (Redis refusing writes) is still on."""
    refused = try_write(chaos_context(configuration))
    raise RuntimeError(f"exploded half-way; redis refused writes: {refused is not None}")
