"""Turn a run folder into report.html, summary.md and junit.xml.

``render_report(run_dir)`` reads the folder once (``data.load_run``) and writes the three
files next to verdict.json. It is safe to run again: it reads no clock and no machine
state, so the same folder gives the same bytes. A missing piece of the folder (no ledger,
no verdict, no journals) becomes a note in the report, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, HarnessError
from harness.report.data import load_run
from harness.report.headline import headline
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.summary import render_summary
from harness.runs import RunFolder, existing_run_folder, write_atomic

__all__ = ["ReportError", "ReportPaths", "render_report"]


class ReportError(HarnessError):
    """The run folder cannot be reported on at all (it does not exist)."""


@dataclass(frozen=True)
class ReportPaths:
    """Where the report went, and its one-line verdict (for the CLI to print)."""

    html: Path
    summary: Path
    junit: Path
    status: str  # PASS / FAIL / UNKNOWN / INCOMPLETE
    line: str


def render_report(run_dir: Path | str) -> ReportPaths:
    """Write report.html, summary.md and junit.xml into ``run_dir``."""
    run_dir = Path(run_dir)
    try:
        existing_run_folder(run_dir)
    except ConfigError as exc:
        raise ReportError(str(exc)) from None
    data = load_run(run_dir)
    head = headline(data)
    html, summary, junit = RunFolder(run_dir).outputs
    paths = ReportPaths(html=html, summary=summary, junit=junit, status=head.status, line=head.line)
    write_atomic(paths.html, render_html(data))  # atomic: a reader never sees half a report
    write_atomic(paths.summary, render_summary(data))
    write_atomic(paths.junit, render_junit(data))
    return paths
