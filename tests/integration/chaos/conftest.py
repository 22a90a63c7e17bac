"""Chaos tests share the session's stack: each one gets a run folder of its own and must leave
the stack as it found it (every service ready, Redis's memory limit and policy unchanged, no
process frozen, no nftables rule)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.redis_memory import ORIGINAL_KEY
from harness.platforms.base import SERVICES
from harness.platforms.local_faults import frozen
from harness.platforms.stackstate import marked_processes


@pytest.fixture
def chaos_run(stack, tmp_path) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The configuration activities get: this stack, a fresh run folder, compression 1."""
    platform = stack.platform
    before = {
        key: platform.redis("CONFIG", "GET", key)[key] for key in ("maxmemory", "maxmemory-policy")
    }
    run_dir: Path = tmp_path / "run"
    run_dir.mkdir()
    yield {
        "sagaquake_platform": "local",
        "sagaquake_run_dir": str(run_dir),
        "sagaquake_experiment": "test",
        "sagaquake_compress": "1",
    }
    assert not frozen(marked_processes(platform.stack_id)), "the test left a process frozen"
    assert platform.net_faults() == [], "the test left an nftables rule in place"
    platform.wait_ready(SERVICES, timeout_s=120)
    after = {key: platform.redis("CONFIG", "GET", key)[key] for key in before}
    assert after == before, "the test left Redis's memory settings changed"
    assert platform.redis("GET", ORIGINAL_KEY) is None
