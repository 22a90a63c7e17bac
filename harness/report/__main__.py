"""``python -m harness.report [run-folder] [--strict]``: the same as `sagaquake report` (a thin
shim over harness/cli.py, which owns the flags and the error format)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from harness.cli import main as sagaquake

    return sagaquake(["report", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
