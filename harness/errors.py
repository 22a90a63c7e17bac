"""One exception root for everything the harness reports to a user.

Messages are lowercase, quote the bad value and say how to fix it; the CLI prints them
in one or two lines instead of a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HarnessError",
    "MissingBinaryError",
    "PlatformError",
    "PortInUseError",
    "StackAlreadyRunningError",
    "StackNotRunningError",
]


class HarnessError(Exception):
    """Something the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 3


class ConfigError(HarnessError):
    """A scenario, profile, suite or experiment file (or a flag) is malformed."""


class MissingBinaryError(HarnessError):
    """A program the platform needs (redis-server, temporal) is not installed."""


class PortInUseError(HarnessError):
    """A port the stack needs is taken."""


class PlatformError(HarnessError):
    """The platform could not bring the stack up, act on it, or tear it down."""


class StackAlreadyRunningError(PlatformError):
    """`up` found a stack that is still running."""


class StackNotRunningError(PlatformError):
    """A command needs a running stack and there is none."""
