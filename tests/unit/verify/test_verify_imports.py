"""Imports inside the verifier run one way: no module of harness/verify imports, at any depth
and even inside a function, a module that imports it back (history.py once imported facts.py
inside a function because facts.py imports History)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness.verify

pytestmark = pytest.mark.unit

FOLDER = Path(harness.verify.__file__).parent
PACKAGE = "harness.verify"


def _graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{p.stem}": p for p in FOLDER.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def test_no_verifier_module_imports_itself_back() -> None:
    graph = _graph()
    assert len(graph) > 10  # the folder was found and read
    loops = sorted(m for m in graph if m in _reaches(graph, m))
    assert loops == []


def test_history_does_not_import_the_facts_it_feeds() -> None:
    assert f"{PACKAGE}.facts" not in _reaches(_graph(), f"{PACKAGE}.history")
