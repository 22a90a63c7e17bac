"""`python -m harness.platforms.kubernetes up|down|status|endpoints|heal|render [flags]`: the
same as `sagaquake <verb> --platform k8s [flags]` (a thin shim over harness/cli.py, which owns
the flags and the error format)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

VERBS = ("up", "down", "status", "endpoints", "heal", "render")


def main(argv: Sequence[str] | None = None) -> int:
    from harness.cli import main as sagaquake

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in VERBS and args[0] != "render":  # render is Kubernetes' alone
        args[1:1] = ["--platform", "k8s"]
    return sagaquake(args)


if __name__ == "__main__":
    sys.exit(main())
