"""The benchmarks run to completion in their CI size (`--quick`), so they do not rot.

Benchmarks are not tests: nothing here asserts a timing or a ratio. What is held is that
`benchmarks/run_all.py --quick` exits 0, that every benchmark wrote its JSON with the machine,
the headline and the keys docs/performance.md documents, and that nothing it started is left
running. About 4-5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.nightly]

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "coldstart": ("up_s", "down_s", "temporal_floor_s"),
    "http": ("uvicorn_auto", "servers", "clients"),
    "verify": ("drain", "verify", "ratio", "target_met", "redis"),
    "overhead": (
        "load_generator_cpu_s_per_1k",
        "system_cpu_s_per_1k",
        "verifier_cpu_s_per_1k",
        "load_generator_over_system",
    ),
    "saga": ("ladders", "saga_ceiling_rate", "bare_local_ceiling_rate", "ratio", "profile"),
    "peak": ("trials", "best_factor", "target_factor", "ratio_to_target"),
}


def _our_processes(out: Path) -> set[int]:
    """Benchmark-started processes that could outlive a benchmark: supervisord and Temporal of
    its stacks (their folders are under /tmp/sagaquake-bench-* or `out`), the bare workers."""
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(mark in cmd for mark in ("bare_workflow.py", "sagaquake-bench-", str(out))):
            found.add(proc.info["pid"])
    return found


@pytest.mark.timeout(900)
def test_run_all_quick_completes_and_writes_every_json(tmp_path: Path) -> None:
    before = _our_processes(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run_all.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["results"]["benchmarks"]) == set(EXPECTED)
    for name, keys in EXPECTED.items():
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["benchmark"] == name and data["quick"] is True
        assert {"cores", "cpu_model", "memory_gb", "load_average"} <= set(data["machine"])
        assert data["timestamp"] and data["headline"], name
        assert set(keys) <= set(data["results"]), (name, sorted(data["results"]))
        assert summary["results"]["benchmarks"][name]["exit_code"] == 0

    saga = json.loads((tmp_path / "saga.json").read_text())["results"]
    assert {"saga", "bare-local", "bare-regular"} <= set(saga["ladders"])
    assert all(lad["steps"] for lad in saga["ladders"].values())
    peak = json.loads((tmp_path / "peak.json").read_text())["results"]
    assert len(peak["trials"]) == 1
    assert {"p99_all_s", "p99_unfaulted_s", "passed", "violations"} <= set(peak["trials"][0])
    assert (tmp_path / "peak-runs").is_dir()
    assert _our_processes(tmp_path) - before == set(), "a benchmark left a process behind"
