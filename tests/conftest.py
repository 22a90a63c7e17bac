"""Shared fixtures: one real local stack per test session (redis-server, Temporal dev server and
every service as real processes on free ports), started through the local platform itself.

When a test that used the stack fails, the last lines of every process log are added to its
report, so a failure shows what the services said.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Keep the session's stack pointer away from a user's `sagaquake up` stack.
os.environ.setdefault("SAGAQUAKE_STATE_DIR", tempfile.mkdtemp(prefix="sagaquake-state-"))

from harness.platforms.base import Endpoints
from harness.platforms.local import LocalPlatform
from harness.settings import LocalOptions, LocalPorts


@dataclass
class Stack:
    platform: LocalPlatform
    endpoints: Endpoints
    run_dir: Path


_STACKS: list[LocalPlatform] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack-run")
    # a lost consumer's entries are reclaimed after 10 s, not 60 (projection-consumer-lost)
    platform = LocalPlatform(run_dir, LocalPorts.free(), LocalOptions(reclaim_idle_s=10))
    platform.up(timeout_s=180)
    _STACKS.append(platform)
    try:
        yield Stack(platform, platform.endpoints(), run_dir)
    finally:
        _STACKS.remove(platform)
        platform.down()


def log_tails(platform: LocalPlatform, lines: int = 15) -> str:
    parts = []
    for log in sorted(platform.logs_dir.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.name} ---\n" + "\n".join(tail))
    return "\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed and _STACKS and "stack" in getattr(item, "fixturenames", ()):
        report.sections.append(("stack logs (last lines)", log_tails(_STACKS[-1])))
    return report
