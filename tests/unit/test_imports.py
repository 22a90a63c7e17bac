"""Imports inside the harness run one way: no module of harness imports, at any depth and even
inside a function, a module that imports it back (verify/history.py once imported facts.py
inside a function because facts.py imports History; report/html.py took `plots` from the package
whose __init__ imports html.py; selftest's catalogue and mutate imported each other).

The graph is read from the source with `ast`, so an import hidden in a function counts. Only the
block under `if __name__ == "__main__":` is left out: it runs when the file is the program (as
the module `__main__`), never when the module is imported, so it cannot close a loop (the
`python -m` shims call harness.cli from there)."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.unit

HARNESS = Path(harness.__file__).parent


def _module_name(path: Path, folder: Path, package: str) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":`"""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    names = [node.test.left, *node.test.comparators]
    return {getattr(n, "id", None) for n in names} >= {"__name__"} and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in names
    )


def _imported(tree: ast.Module, importer: str, is_package: bool) -> set[str]:
    """Every module name an import of `tree` names: `from X import Y` names X and X.Y (Y may be a
    module; X's __init__ runs either way)."""
    found: set[str] = set()
    todo: list[ast.AST] = [n for n in tree.body if not _is_main_block(n)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package up
                anchor = importer.split(".")[: None if is_package else -1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
        todo.extend(ast.iter_child_nodes(node))
    return found


def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Each module of the package in `folder` -> the modules of the package it imports."""
    paths = {_module_name(p, folder, package): p for p in sorted(folder.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        found = _imported(tree, name, path.name == "__init__.py")
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def _path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest chain of imports from `start` back to itself, if there is one."""
    came_from: dict[str, str] = {}
    todo = deque([start])
    while todo:
        module = todo.popleft()
        for target in sorted(graph[module]):
            if target == start:
                chain = [module]
                while chain[-1] != start:
                    chain.append(came_from[chain[-1]])
                return [start, *reversed(chain[:-1]), start]
            if target not in came_from:
                came_from[target] = module
                todo.append(target)
    return None


def import_loops(graph: dict[str, set[str]]) -> list[str]:
    """One line per loop, `a -> b -> a`, each loop once."""
    seen: set[frozenset[str]] = set()
    out = []
    for module in sorted(graph):
        chain = _path_back(graph, module)
        if chain and frozenset(chain) not in seen:
            seen.add(frozenset(chain))
            out.append(" -> ".join(chain))
    return out


def test_no_harness_module_imports_itself_back() -> None:
    graph = import_graph(HARNESS, "harness")
    assert len(graph) > 100  # every folder was found and read
    assert "harness.verify.facts" in graph["harness.verify.verifier"]  # imports are seen
    assert import_loops(graph) == []


def test_history_does_not_import_the_facts_it_feeds() -> None:
    graph = import_graph(HARNESS, "harness")
    # were facts to import history, would history lead back to facts?
    graph["harness.verify.facts"] = {"harness.verify.history"}
    assert _path_back(graph, "harness.verify.facts") is None


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_loop_is_found_at_any_depth_and_through_a_package(tmp_path: Path) -> None:
    folder = _package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "def f():\n    from pkg.b import g\n",  # inside a function
            "b.py": "import pkg.c\n",
            "c.py": "from pkg import a\n",  # through the package's namespace
            "d.py": "from pkg.a import f\n",  # imports into the loop, is not in it
            "sub/__init__.py": "from pkg.sub.x import y\n",
            "sub/x.py": "from .z import w\ny = 1\n",  # relative, to the module z
            "sub/z.py": "from .. import sub\nw = 1\n",  # relative, back to sub/__init__
        },
    )
    graph = import_graph(folder, "pkg")
    assert graph["pkg.sub.x"] == {"pkg.sub.z"}
    assert import_loops(graph) == [
        "pkg.a -> pkg.b -> pkg.c -> pkg.a",
        "pkg.sub -> pkg.sub.x -> pkg.sub.z -> pkg.sub",
    ]


def test_a_main_block_is_not_part_of_the_module(tmp_path: Path) -> None:
    folder = _package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "cli.py": "def main():\n    from pkg.tool import work\n",
            "tool.py": "def work(): ...\n\nif __name__ == '__main__':\n    from pkg.cli import main\n",
        },
    )
    assert import_loops(import_graph(folder, "pkg")) == []
    (folder / "tool.py").write_text("def shim():\n    from pkg.cli import main\n")
    assert import_loops(import_graph(folder, "pkg")) == ["pkg.cli -> pkg.tool -> pkg.cli"]
