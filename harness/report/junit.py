"""junit.xml: the run as test results, so any CI shows which invariant or threshold broke.

Two suites: ``invariants`` (one test case per invariant in verdict.json) and ``thresholds``
(one per threshold of gate.json, or of verdict.json when the run was only verified); a third,
``experiments``, fails one case per experiment the gate says did not complete. A failed check
is a ``<failure>`` whose
message names the first counter-examples. A check that could not run (status
``unknown``, or a threshold without ``ok``) is an ``<error>``, not ``<skipped>``: CI
systems show a skip as neutral and let the job pass, and an unchecked invariant must never
pass a reliability gate. A missing verdict.json is one erroring test case ``verdict``, and
an interrupted run adds an erroring ``run.complete``, so an empty or partial run never
looks green.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from harness.report.data import RunData
from harness.report.headline import invariants, threshold_status, threshold_text, violations
from harness.report.journal import short_json
from harness.runs import RunFolder

__all__ = ["FIRST_EXAMPLES", "render_junit"]

FIRST_EXAMPLES = 5  # counter-examples named in a failure's text


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})


def _suite(root: ET.Element, name: str, timestamp: str | None) -> ET.Element:
    attrs = {
        "name": name,
        "tests": "0",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
        "time": "0",
    }
    if timestamp:
        attrs["timestamp"] = timestamp
    return ET.SubElement(root, "testsuite", attrs)


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))


def _examples_text(inv: dict[str, Any]) -> tuple[str, str]:
    examples = inv.get("counterexamples")
    examples = [x for x in examples if isinstance(x, dict)] if isinstance(examples, list) else []
    n = violations(inv)
    first = examples[:FIRST_EXAMPLES]
    names = ", ".join(str(x.get("order_id", "?")) for x in first)
    message = f"violated by {n:,} order{'s' if n != 1 else ''}" + (f": {names}" if names else "")
    if n > len(first):
        message += ", …"
    lines = [f"{inv.get('title') or inv.get('name')}: {message}", ""]
    for x in first:
        lines.append(f"- {x.get('order_id', '?')}: {x.get('why', '')}")
        for key in ("client", "events"):
            if x.get(key):
                lines.append(f"    {key}: {short_json(x[key], 600)}")
    if n > len(first):
        lines.append(f"… {n - len(first):,} more in verdict.json / report.html")
    return message, "\n".join(lines)


def _invariant_suite(root: ET.Element, data: RunData, timestamp: str | None) -> None:
    suite = _suite(root, "invariants", timestamp)
    if data.verdict is None:
        case = _case(suite, "sagaquake.run", "verdict")
        why = data.notes.get("verdict", "no verdict.json")
        ET.SubElement(
            case, "error", {"type": "NoVerdict", "message": why}
        ).text = f"{why}: run `sagaquake verify <run-folder>` before `sagaquake report`"
    for inv in invariants(data):
        name = str(inv.get("name") or "?")
        case = _case(suite, "sagaquake.invariants", name)
        status = inv.get("status")
        if status == "fail":
            message, text = _examples_text(inv)
            ET.SubElement(
                case, "failure", {"type": "InvariantViolated", "message": message}
            ).text = text
        elif status != "pass":
            why = str(inv.get("error") or inv.get("note") or inv.get("reason") or "not checked")
            ET.SubElement(
                case, "error", {"type": "InvariantUnknown", "message": f"could not check: {why}"}
            ).text = f"status {status!r}: {why}"
    _count(suite)


def _threshold_suite(root: ET.Element, data: RunData, timestamp: str | None) -> None:
    suite = _suite(root, "thresholds", timestamp)
    for t in data.thresholds:
        case = _case(suite, "sagaquake.thresholds", str(t.get("name") or "?"))
        text = threshold_text(t)
        status = threshold_status(t)
        if status == "fail":
            ET.SubElement(case, "failure", {"type": "ThresholdMissed", "message": text}).text = text
        elif status == "unknown":
            ET.SubElement(case, "error", {"type": "ThresholdUnknown", "message": text}).text = text
    _count(suite)


def _properties(root: ET.Element, data: RunData) -> None:
    suite = root.find("testsuite")
    if suite is None:
        return
    props = ET.Element("properties")
    for key in ("run_id", "suite", "profile", "compress", "seed", "platform"):
        if data.run.get(key) is not None:
            ET.SubElement(props, "property", {"name": key, "value": str(data.run[key])})
    if len(props):
        suite.insert(0, props)


def render_junit(data: RunData) -> str:
    """junit.xml as text. Deterministic: its only timestamp is verdict.json's checked_at."""
    checked = (data.verdict or {}).get("checked_at")
    timestamp = (
        datetime.fromtimestamp(checked, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if isinstance(checked, int | float)
        else None
    )
    run_id = str(data.run.get("run_id") or data.run_dir.name)
    root = ET.Element("testsuites", {"name": f"sagaquake {run_id}"})
    _invariant_suite(root, data, timestamp)
    _threshold_suite(root, data, timestamp)
    if data.failed_experiments:
        suite = _suite(root, "experiments", timestamp)
        for name in data.failed_experiments:
            case = _case(suite, "sagaquake.experiments", name)
            text = f"experiment {name} did not complete (see {RunFolder.journal_rel(name)})"
            ET.SubElement(
                case, "failure", {"type": "ExperimentFailed", "message": text}
            ).text = text
        _count(suite)
    if data.incomplete:
        suite = _suite(root, "run", timestamp)
        case = _case(suite, "sagaquake.run", "complete")
        ET.SubElement(
            case, "error", {"type": "RunIncomplete", "message": "the run was interrupted"}
        )
        _count(suite)
    _properties(root, data)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root.findall("testsuite"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
