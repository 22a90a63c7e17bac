"""Helpers for tests that run `sagaquake` or `chaos` as a user would: in a subprocess."""

from __future__ import annotations

import os
import signal
from dataclasses import fields
from pathlib import Path

from harness.settings import LocalPorts

__all__ = ["interruptible", "isolated_env"]


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess with its own free ports, state and reports folders, so it
    never meets the session's stack or a user's."""
    ports = LocalPorts.free()
    env = {
        **os.environ,
        "SAGAQUAKE_STATE_DIR": str(tmp_path / "state"),
        "SAGAQUAKE_REPORTS_DIR": str(tmp_path / "reports"),
    }
    env.update(
        {
            f"SAGAQUAKE_{f.name.upper()}_PORT": str(getattr(ports, f.name))
            for f in fields(LocalPorts)
        }
    )
    return env


def interruptible() -> None:
    """`preexec_fn` for a subprocess a test will Ctrl-C. A shell starts background jobs with
    SIGINT ignored, an ignored signal survives exec, and Python then never raises
    KeyboardInterrupt: a test run in the background would send its Ctrl-C into the void."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
