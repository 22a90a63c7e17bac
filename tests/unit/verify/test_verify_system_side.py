"""The snapshot's reader child: a small interpreter that hands back the system's side."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from harness.verify import reader
from harness.verify.system_side import system_side
from tests.unit.verify.builders import HistoryBuilder


def _run_dir(tmp_path: Path) -> Path:
    b = HistoryBuilder()
    b.completed(items=[{"sku": "SKU-0001", "qty": 2}])
    b.declined()
    b.refunded()
    return b.write(tmp_path / "run")


def test_the_reader_child_imports_neither_pandas_nor_pydantic() -> None:
    code = (
        "import sys; import harness.verify.system_side; "
        "print(sorted(m for m in ('pandas', 'pydantic') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=reader._child_env(),
    )
    assert done.stdout.strip() == "[]"


def test_the_reader_child_hands_back_every_part(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    ran: list[str] = []
    side = reader._in_worker(run_dir, lambda: ran.append("here"))
    assert side is not None  # the child ran, no fallback to this process
    assert ran == ["here"]
    assert set(side["parts"]) == set(system_side(run_dir)["parts"])
    assert side["missing"] == {}


def test_the_parts_order_ids_are_pickled_once(tmp_path: Path) -> None:
    side = pickle.loads(pickle.dumps(system_side(_run_dir(tmp_path)), protocol=5))
    tables = {
        part: side["parts"][part][0]["columns"][column][2]
        for part, column in (("payments", "order_id"), ("temporal", "workflow_id"))
    }
    assert set(tables["payments"]) <= set(tables["temporal"])
    shared = {id(t) for t in tables["temporal"]}
    assert all(id(t) in shared for t in tables["payments"])
