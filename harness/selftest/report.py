"""The self-test's results: a table on the terminal, `selftest.json` and `junit.xml`.

In junit.xml a mutation that was not caught is a `<failure>` (the harness has a hole), a case
that could not be judged is an `<error>`, and a pending mutation is `<skipped>` with its reason;
the exit code, not the skip, keeps a pending mutation from passing silently (docs/selftest.md).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness import runs
from harness.selftest.outcome import CaseResult

__all__ = ["exit_code", "render_table", "score", "short_failed", "write_json", "write_junit"]


def score(results: list[CaseResult]) -> dict[str, int]:
    """Caught mutations over the mutations that ran (pending ones are counted apart)."""
    mutations = [r for r in results if r.kind == "mutation"]
    ran = [r for r in mutations if r.outcome != "pending"]
    controls = [r for r in results if r.kind == "control"]
    return {
        "caught": sum(1 for r in ran if r.outcome == "caught"),
        "ran": len(ran),
        "pending": len(mutations) - len(ran),
        "controls_passed": sum(1 for r in controls if r.outcome == "passed"),
        "controls": len(controls),
    }


def exit_code(results: list[CaseResult], control_skipped: bool) -> int:
    """0 every mutation caught and every control passed; 1 a mutation not caught or a false
    alarm; 2 nothing wrong seen but something not checked (pending, an error, no control);
    130 interrupted."""
    if any(r.outcome == "interrupted" for r in results):
        return 130
    if any(r.outcome in ("missed", "failed otherwise", "false alarm") for r in results):
        return 1
    if control_skipped or any(r.outcome in ("pending", "error") for r in results):
        return 2
    return 0


def _color(r: CaseResult) -> str:
    if r.ok:
        return "green"
    return "yellow" if r.outcome in ("pending", "interrupted") else "red"


def short_failed(failed: list[str], limit: int = 4) -> str:
    """What failed, for a table cell: thresholds only when nothing else explains the failure
    (each invariant has a threshold that repeats its count)."""
    shown = [f for f in failed if not f.startswith("threshold ")] or failed
    more = f"; +{len(shown) - limit} more" if len(shown) > limit else ""
    return "; ".join(shown[:limit]) + more


def render_table(results: list[CaseResult], console: Console, folder: Path | None = None) -> None:
    table = Table(title="sagaquake selftest", show_lines=False)
    for column in ("mutation", "expected invariant", "what failed", "caught", "time", "run folder"):
        table.add_column(column, overflow="fold")
    for r in results:
        failed = short_failed(r.failed)
        if r.outcome == "pending" or (r.outcome == "error" and not r.failed):
            failed = r.detail
        where = r.run_dir or "-"
        if folder is not None and r.run_dir and Path(r.run_dir).is_relative_to(folder):
            where = str(Path(r.run_dir).relative_to(folder))
        table.add_row(
            r.name if r.kind == "mutation" else f"[bold]{r.name}[/]",
            ", ".join(r.expect) or "(none: must pass)",
            failed or "nothing",
            f"[{_color(r)}]{r.label}[/]",
            f"{r.duration_s / 60:.1f} min" if r.duration_s else "-",
            where,
        )
    # a log file or a CI console is not a terminal: give the table room instead of 80 columns
    out = console if console.is_terminal else Console(file=console.file, width=180)
    out.print(table)
    s = score(results)
    line = f"mutation score: {s['caught']}/{s['ran']} caught"
    if s["pending"]:
        line += f", {s['pending']} pending (not run, not counted as caught)"
    line += f"; controls: {s['controls_passed']}/{s['controls']} passed"
    console.print(line)
    if folder is not None:
        console.print(f"run folders are under {folder}")


def write_json(path: Path, results: list[CaseResult], meta: dict[str, Any]) -> Path:
    payload = {**meta, "score": score(results), "cases": [r.as_dict() for r in results]}
    return runs.write_json(path, payload)


def _case(suite: ET.Element, r: CaseResult) -> None:
    classname = "selftest.mutation" if r.kind == "mutation" else "selftest.control"
    case = ET.SubElement(
        suite, "testcase", {"classname": classname, "name": r.name, "time": f"{r.duration_s:.1f}"}
    )
    where = f" (run folder {r.run_dir})" if r.run_dir else ""
    failed = "; ".join(r.failed) or "nothing failed"
    if r.outcome == "pending":
        ET.SubElement(case, "skipped", {"message": f"pending: {r.detail}"})
    elif r.outcome == "missed":
        ET.SubElement(
            case, "failure", {"message": f"not caught: the gate passed{where}"}
        ).text = f"{r.title}\nexpected a violation of: {', '.join(r.expect)}"
    elif r.outcome == "failed otherwise":
        message = f"not caught: {r.detail}; what failed: {failed}{where}"
        ET.SubElement(case, "failure", {"message": message}).text = r.title
    elif r.outcome == "false alarm":
        message = f"the unmutated system failed the gate: {failed}{where}"
        ET.SubElement(case, "failure", {"message": message})
    elif r.outcome in ("error", "interrupted"):
        ET.SubElement(case, "error", {"message": f"{r.outcome}: {r.detail or failed}{where}"})
    else:
        out = ET.SubElement(case, "system-out")
        out.text = f"{r.label}: {failed}{where}"


def write_junit(path: Path, results: list[CaseResult]) -> Path:
    root = ET.Element("testsuites", {"name": "sagaquake selftest"})
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    suite = ET.SubElement(root, "testsuite", {"name": "selftest", "timestamp": stamp})
    for r in results:
        _case(suite, r)
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))
    suite.set("time", f"{sum(r.duration_s for r in results):.1f}")
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return path
