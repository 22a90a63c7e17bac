"""The verifier holds the system to rules of its own: no module of harness/verify imports
system_under_test (a borrowed rule agrees with any bug in it; docs/selftest.md's
readmodel-cancelled-as-completed is the mutation that proves it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness.verify

pytestmark = pytest.mark.unit

# Replays histories against the code under test in a child interpreter: importing it is its job.
REPLAYS_THE_SYSTEM = {"replay_child.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_verifier_module_imports_the_system_under_test() -> None:
    folder = Path(harness.verify.__file__).parent
    borrowed = {
        path.name: sorted(m for m in _imports(path) if m.split(".")[0] == "system_under_test")
        for path in sorted(folder.glob("*.py"))
        if path.name not in REPLAYS_THE_SYSTEM
    }
    assert {name: mods for name, mods in borrowed.items() if mods} == {}
    assert len(borrowed) > 10  # the folder was found and read
