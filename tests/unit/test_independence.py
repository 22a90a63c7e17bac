"""The harness states its own expectations of the system (harness/keys.py, harness/ids.py,
verify's rules): the load generator, the live monitor and the verifier never borrow the system's
code to decide what is right, or a wrong rule in the system could never be caught (the
selftest's readmodel-cancelled-as-completed is the mutation that proves it for the verifier)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.unit

HARNESS = Path(harness.__file__).parent
# The only modules whose job is to run the system's own code, never to judge it:
ENTRY_POINTS = {
    # replays histories against the code under test in a child interpreter
    "verify/replay_child.py",
    # starts the system's ReprocessOrders workflow through its own client and input type
    "reprocess.py",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_harness_module_but_the_entry_points_imports_the_system_under_test() -> None:
    modules = sorted(HARNESS.rglob("*.py"))
    borrowed = {
        str(path.relative_to(HARNESS)): sorted(
            m for m in _imports(path) if m.split(".")[0] == "system_under_test"
        )
        for path in modules
        if str(path.relative_to(HARNESS)) not in ENTRY_POINTS
    }
    assert {name: mods for name, mods in borrowed.items() if mods} == {}
    assert {"load/ledger.py", "load/webui.py", "live.py"} <= set(borrowed)


def test_the_entry_points_still_exist() -> None:
    """An entry point that moved or was deleted must leave this list too."""
    assert all((HARNESS / name).is_file() for name in ENTRY_POINTS)
