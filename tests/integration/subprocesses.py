"""Helpers for tests that run `sagaquake` or `chaos` as a user would: in a subprocess (its
environment: `harness.settings.isolated_env`)."""

from __future__ import annotations

import signal

__all__ = ["interruptible"]


def interruptible() -> None:
    """`preexec_fn` for a subprocess a test will Ctrl-C. A shell starts background jobs with
    SIGINT ignored, an ignored signal survives exec, and Python then never raises
    KeyboardInterrupt: a test run in the background would send its Ctrl-C into the void."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
