"""``python -m harness.report <run-folder>``: regenerate a run's report (what `sagaquake report` calls).

Exits 0 when the report was written whatever the verdict (the report is the product, the
verdict is its content); ``--strict`` exits 1 unless the verdict is PASS, for CI steps
that gate on it. Exits with the error's code when the folder cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from harness.errors import HarnessError
from harness.report import render_report

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagaquake report", description=__doc__)
    parser.add_argument(
        "run_folder",
        nargs="?",
        default=os.environ.get("SAGAQUAKE_RUN_FOLDER", "reports/latest"),
        help="the run folder (env SAGAQUAKE_RUN_FOLDER, default reports/latest)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("SAGAQUAKE_REPORT_STRICT", "") not in ("", "0", "false"),
        help="exit 1 unless the verdict is PASS (env SAGAQUAKE_REPORT_STRICT)",
    )
    args = parser.parse_args(argv)
    try:
        paths = render_report(args.run_folder)
    except HarnessError as exc:
        print(f"sagaquake report: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{paths.status}: {paths.line}")
    print(f"report: {paths.html}")
    return 1 if args.strict and paths.status != "PASS" else 0


if __name__ == "__main__":
    sys.exit(main())
