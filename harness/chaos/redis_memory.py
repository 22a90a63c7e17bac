"""Exhausting Redis's memory and putting it back, with proof both ways.

Lowering: check the policy first (under anything but `noeviction` a lower limit *evicts keys*:
silent loss of events, not refused writes), save the original `maxmemory` in chaos/state.json
and in the Redis key `sagaquake:chaos:original-maxmemory` (so a rollback finds it even from
another run folder), lower the limit (or fill up to it), then prove it with a real write
refused with `OutOfMemoryError`. Restoring is idempotent: it puts back the saved limit, removes
filler keys, proves that a write succeeds again and forgets the saved value; with nothing
saved it does nothing.
"""

from __future__ import annotations

import time
from typing import Any

import redis.exceptions

from harness.chaos.context import ChaosContext, number
from harness.chaos.faults import FaultNotLanded, FaultWindow, close_open_windows
from harness.chaos.state import read_state, updating
from harness.errors import ConfigError, PlatformError

__all__ = [
    "FILL_PREFIX",
    "ORIGINAL_KEY",
    "PROBE_KEY",
    "lower_memory",
    "memory_facts",
    "restore_memory",
    "try_write",
]

ORIGINAL_KEY = "sagaquake:chaos:original-maxmemory"
PROBE_KEY = "sagaquake:chaos:probe"
FILL_PREFIX = "sagaquake:chaos:fill:"
_STATE = "redis_maxmemory"
_MIB = 1024 * 1024
_FILL_CHUNK = 256 * 1024


def memory_facts(ctx: ChaosContext) -> dict[str, Any]:
    info = ctx.platform.redis("INFO", "memory")
    errors = ctx.platform.redis("INFO", "errorstats")
    return {
        "used_memory": int(info["used_memory"]),
        "maxmemory": int(ctx.platform.redis("CONFIG", "GET", "maxmemory")["maxmemory"]),
        "policy": ctx.platform.redis("CONFIG", "GET", "maxmemory-policy")["maxmemory-policy"],
        "oom_errors": int(errors.get("errorstat_OOM", {}).get("count", 0)),
    }


def try_write(ctx: ChaosContext) -> str | None:
    """Write the probe key; the OOM error text when Redis refused it, None when it was written."""
    try:
        ctx.platform.redis("SET", PROBE_KEY, str(time.time()), "EX", "60")
    except redis.exceptions.OutOfMemoryError as exc:
        return f"OutOfMemoryError: {exc}"
    return None


def _save_original(ctx: ChaosContext, facts: dict[str, Any]) -> str:
    """The limit to restore later: one saved by an earlier fault not yet restored wins."""
    with updating(ctx.run_dir) as state:
        saved = state.get(_STATE)
        if saved:
            return str(saved["original"])
        earlier = ctx.platform.redis("GET", ORIGINAL_KEY)
        original = str(earlier if earlier is not None else facts["maxmemory"])
        ctx.platform.redis("SET", ORIGINAL_KEY, original)
        state[_STATE] = {"original": original, "saved_at": time.time(), "fill_keys": 0}
        return original


def lower_memory(
    ctx: ChaosContext, window: FaultWindow, mode: Any, fraction: Any, fill_mb: Any
) -> dict[str, Any]:
    """Make Redis refuse writes; return the evidence (raise FaultNotLanded without proof)."""
    if mode not in ("lower", "fill"):
        raise ConfigError(f"unknown mode {mode!r}; use lower or fill")
    share = number(fraction, "fraction", minimum=0.01, maximum=0.99)
    fill = number(fill_mb, "fill_mb", minimum=0)
    facts = memory_facts(ctx)
    window.evidence.update(before=facts, oom_errors=facts["oom_errors"])
    if facts["policy"] != "noeviction":
        window.record["landed"] = False
        raise FaultNotLanded(
            f"redis maxmemory-policy is {facts['policy']!r}: a lower limit would evict keys "
            "(silent loss), not refuse writes; set maxmemory-policy noeviction"
        )
    original = _save_original(ctx, facts)
    used = facts["used_memory"]
    limit = max(int(used * share), 1) if mode == "lower" else used + int(fill * _MIB)
    ctx.platform.redis("CONFIG", "SET", "maxmemory", str(limit))
    keys, size, refused = _fill(ctx, limit) if mode == "fill" else (0, 0, None)
    deadline = time.monotonic() + 5
    while refused is None and time.monotonic() < deadline:
        refused = try_write(ctx)
        if refused is None:
            time.sleep(0.1)
    evidence = {
        "original_maxmemory": original,
        "maxmemory": limit,
        "used_memory": used,
        "filler_keys": keys,
        "filler_bytes": size,
    }
    if refused is None:
        window.evidence.update(evidence)
        window.record["landed"] = False
        raise FaultNotLanded(
            f"redis accepted a write with maxmemory {limit} and {used} bytes in use; "
            "the memory fault did not take effect"
        )
    return {**evidence, "refused_write": refused}


def _fill(ctx: ChaosContext, limit: int) -> tuple[int, int, str | None]:
    """Write filler keys up to the limit: big ones until Redis refuses one, then small ones
    until a small one is refused too (so the memory sits at the limit, not just under it).
    Returns (keys written, bytes written, the first refusal)."""
    written, size, refusal = 0, 0, None
    for chunk, tries in ((_FILL_CHUNK, limit // _FILL_CHUNK + 64), (16 * 1024, 256)):
        value = "x" * chunk
        for _ in range(tries):
            try:
                ctx.platform.redis("SET", f"{FILL_PREFIX}{written}", value)
            except redis.exceptions.OutOfMemoryError as exc:
                refusal = refusal or f"OutOfMemoryError: {exc}"
                break
            written, size = written + 1, size + chunk
            with updating(ctx.run_dir) as state:
                state.setdefault(_STATE, {})["fill_keys"] = written
    return written, size, refusal


def restore_memory(ctx: ChaosContext, own_window: str | None = None) -> dict[str, Any]:
    """Put back the saved limit and prove a write succeeds; a no-op when nothing was saved.
    Closes the Redis fault windows left open (but `own_window`, which its caller closes)."""
    saved = read_state(ctx.run_dir).get(_STATE) or {}
    original = saved.get("original") or ctx.platform.redis("GET", ORIGINAL_KEY)
    if original is None:
        facts = memory_facts(ctx)
        return {"restored": False, "reason": "nothing to restore", **facts}
    ctx.platform.redis("CONFIG", "SET", "maxmemory", str(original))
    fillers = [f"{FILL_PREFIX}{i}" for i in range(int(saved.get("fill_keys") or 0))]
    for start in range(0, len(fillers), 100):
        ctx.platform.redis("DEL", *fillers[start : start + 100])
    refused = try_write(ctx)
    deadline = time.monotonic() + 10
    while refused is not None and time.monotonic() < deadline:
        time.sleep(0.2)
        refused = try_write(ctx)
    if refused is not None:
        raise PlatformError(
            f"redis still refuses writes after restoring maxmemory {original}: {refused}"
        )
    ctx.platform.redis("DEL", ORIGINAL_KEY)
    with updating(ctx.run_dir) as state:
        state.pop(_STATE, None)
    closed = close_open_windows(ctx.run_dir, "redis", "restore_redis_maxmemory", exclude=own_window)
    return {
        "restored": True,
        "write_ok": True,
        "fillers_removed": len(fillers),
        "windows_closed": len(closed),
        **memory_facts(ctx),
    }
