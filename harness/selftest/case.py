"""One self-test case: a copy of the project (mutated or not), one `sagaquake run` of a suite from
that copy on free ports, and its outcome.

The run is a child process in its own process group with an isolated environment
(`harness.settings.isolated_env`: free ports, its own state and reports folders) and the copy
first on PYTHONPATH, so the supervised services import the copy. Ctrl-C (or SIGTERM) reaches
the child once, from us: it rolls back its faults and tears its stack down as `sagaquake run`
always does; if it cannot, its stack is stopped here (`sagaquake down`, then by the stack's
process marker). The copy is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.platforms.stackstate import kill_processes, marked_processes
from harness.run.suite import load_suite
from harness.selftest.catalogue import Mutation
from harness.selftest.mutate import apply_mutation, copy_project
from harness.selftest.outcome import CaseResult, judge
from harness.selftest.proof import StackWatch
from harness.settings import isolated_env

__all__ = ["Case", "run_case"]

CLEANUP_WAIT_S = 300.0  # how long a child may take to roll back and tear down after Ctrl-C
# on top of warm-up + load + drain: up, experiments settling, snapshot, verify, report, down
MARGIN_S = 900.0


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # mutation | control
    suite: Path  # relative to the project root
    mutation: Mutation | None = None

    def result(self) -> CaseResult:
        m = self.mutation
        return CaseResult(
            name=self.name,
            kind=self.kind,
            title=m.title if m else "unmutated system (no false alarm)",
            suite=str(self.suite),
            expect=list(m.expect) if m else [],
        )


def _own_group() -> None:
    """The child gets Ctrl-C from us only (once), and with the default handler even when we were
    started with SIGINT ignored (a background job)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_dir(reports: Path) -> Path | None:
    latest = reports / "latest"
    if latest.exists():
        return latest.resolve()
    found = sorted(p for p in reports.glob("*") if p.is_dir())
    return found[-1] if found else None


def _budget_s(suite_path: Path) -> float:
    suite = load_suite(suite_path)
    return suite.warmup_s + suite.duration_s + suite.drain_deadline_s + MARGIN_S


def _wait(
    proc: subprocess.Popen[bytes], budget_s: float, tick: Callable[[float], None]
) -> tuple[int | None, str]:
    """Wait for the child; on Ctrl-C (or past the budget) pass one SIGINT on and wait for its
    clean-up, then SIGTERM, then SIGKILL. Returns its exit code and how it ended: "done",
    "interrupted" (by us) or "timed out" (past the budget)."""
    started = time.monotonic()
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            tick(elapsed)
            if elapsed > budget_s:
                raise TimeoutError
            time.sleep(1.0)
        return proc.returncode, "done"
    except (KeyboardInterrupt, TimeoutError) as exc:
        ended = "interrupted" if isinstance(exc, KeyboardInterrupt) else "timed out"
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    for stop, wait_s in ((None, CLEANUP_WAIT_S), (proc.terminate, 60.0), (proc.kill, 60.0)):
        if stop is not None:
            with contextlib.suppress(ProcessLookupError):
                stop()
        try:
            _wait_ignoring_interrupts(proc, wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    return proc.returncode, ended


def _wait_ignoring_interrupts(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            return
        except KeyboardInterrupt:
            print("still cleaning up the run's stack (rolling back faults, stopping processes)…")
        if time.monotonic() >= deadline and proc.poll() is None:
            raise subprocess.TimeoutExpired(proc.args, timeout_s)


def _stop_stacks(stack_ids: set[str], env: dict[str, str], copy: Path) -> list[str]:
    """Stop whatever the child left of its stacks; return what had to be done."""
    done: list[str] = []
    if not any(marked_processes(s) for s in stack_ids):
        return done
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run(
            [sys.executable, "-m", "harness.cli", "down"], cwd=copy, env=env,
            capture_output=True, timeout=120,
        )  # fmt: skip
        done.append("sagaquake down")
    for stack_id in stack_ids:
        left = marked_processes(stack_id)
        if left:
            kill_processes(left)
            done.append(f"stopped {len(left)} leftover process(es) of stack {stack_id}")
    return done


def run_case(
    case: Case,
    root: Path,
    case_dir: Path,
    *,
    keep_copy: bool = False,
    tick: Callable[[float], None] = lambda _: None,
) -> CaseResult:
    """Copy, mutate, run the suite from the copy, stop every stack it started, judge. An
    interrupted case comes back with outcome `interrupted` (the caller stops there)."""
    result = case.result()
    case_dir.mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix=f"sagaquake-selftest-{case.name}-"))
    started = time.monotonic()
    try:
        copy_project(root, copy)
        module, mutated_sha = "system_under_test", None
        if case.mutation is not None:
            applied = apply_mutation(case.mutation, root, copy)
            result.evidence["applied"] = applied.as_dict()
            module, mutated_sha = case.mutation.module, applied.sha256_after
        env = {**isolated_env(case_dir), "PYTHONPATH": str(copy)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        log_path = case_dir / "sagaquake-run.log"
        result.evidence.update(copy=str(copy), log=str(log_path))
        suite = copy / case.suite
        watch = StackWatch(case_dir / "state", case_dir / "reports", copy, module, mutated_sha)
        argv = [sys.executable, "-m", "harness.cli", "run", "--suite", str(suite), "--platform", "local"]  # fmt: skip
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv, cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_own_group,
            )  # fmt: skip
            watch.start()
            budget = _budget_s(suite)
            try:
                code, ended = _wait(proc, budget, tick)
            finally:
                watch.stop()
                cleanup = _stop_stacks(watch.stack_ids, env, copy)
        result.evidence.update(proof=watch.proof, stacks=sorted(watch.stack_ids))
        if cleanup:
            result.evidence["cleanup"] = cleanup
        result.duration_s = round(time.monotonic() - started, 1)
        judge(result, _run_dir(case_dir / "reports"), None if ended == "interrupted" else code)
        if ended == "timed out":  # stopped by us: not the caller's Ctrl-C, and nothing to judge
            result.outcome = "error"
            result.detail = f"the run took longer than {budget:.0f} s and was stopped"
        proven = watch.proof.get("checked") and watch.proof.get("ok")
        if result.outcome in ("caught", "missed", "passed", "false alarm") and not proven:
            # unproven, a verdict could be about the checkout's code instead of the copy's
            result.detail = f"not proven that the services ran the copy: {_proof_text(watch.proof)}"
            result.outcome = "error"
    finally:
        if keep_copy:
            result.evidence["copy_kept"] = True
        else:
            shutil.rmtree(copy, ignore_errors=True)
    return result


def _proof_text(proof: dict[str, Any]) -> str:
    if not proof.get("checked"):
        return str(proof.get("why"))
    bad = [p for p in proof.get("probes") or [] if not p.get("in_copy")]
    if bad:
        return f"{bad[0]['services']} import {bad[0]['module']} from {bad[0]['origin']!r}"
    return "the file the services import is not the mutated one"
