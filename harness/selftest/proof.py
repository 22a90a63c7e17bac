"""Proof that a mutated run's services run the copy's code, taken from the running stack.

Why: the project is installed editable in the venv, so a service started without the copy on
its path would silently import the user's (unmutated) checkout and every mutation would "pass".
While the run's stack is up, the watcher reads each service process's own command line, working
folder and environment, and asks the same interpreter, with exactly those, where the mutated
module comes from: the answer must be the copy's file, with the mutated file's hash.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import psutil

from harness.platforms.stackstate import MARKER, marked_processes
from harness.runs import RunFolder, read_json_or_empty
from harness.selftest.mutate import sha256

__all__ = ["StackWatch", "probe_origin", "service_processes"]

_PROBE = (
    "import importlib.util, sys; spec = importlib.util.find_spec(sys.argv[1]); "
    "print(spec.origin if spec and spec.origin else '')"
)


def service_processes(stack_id: str) -> list[tuple[psutil.Process, str]]:
    """(process, module) of every `python -m system_under_test.…` process of the stack."""
    found = []
    for proc in marked_processes(stack_id):
        with contextlib.suppress(psutil.Error):
            argv = proc.cmdline()
            if "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("system_under_test"):
                found.append((proc, argv[argv.index("-m") + 1]))
    return found


def probe_origin(python: str, cwd: str, env: dict[str, str], module: str) -> str:
    """Where `module` is imported from by `python` started in `cwd` with `env` ('' if nowhere)."""
    clean = {k: v for k, v in env.items() if k != MARKER}  # the probe is no part of the stack
    done = subprocess.run(
        [python, "-c", _PROBE, module],
        cwd=cwd, env=clean, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else ""


class StackWatch:
    """Watches a `sagaquake run` child: which stacks it started (to stop them if it cannot),
    and, once its stack is up, where its services import `module` from."""

    def __init__(
        self, state_dir: Path, reports_dir: Path, copy: Path, module: str, mutated_sha: str | None
    ) -> None:
        self.state_dir, self.reports_dir = state_dir, reports_dir
        self.copy, self.module, self.mutated_sha = copy.resolve(), module, mutated_sha
        self.stack_ids: set[str] = set()
        self.proof: dict[str, Any] = {"checked": False, "why": "the stack never came up"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="selftest-watch", daemon=True)

    def start(self) -> StackWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._note_stack()
            if self.stack_ids and self._stack_is_up():
                with contextlib.suppress(Exception):
                    self.proof = self._prove()
                    if self.proof.get("checked"):
                        break
        while not self._stop.wait(2.0):  # keep noting stacks (a fresh start gets a new one)
            self._note_stack()

    def _note_stack(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            data = json.loads((self.state_dir / "stack.json").read_text())
            self.stack_ids.add(str(data["stack_id"]))

    def _stack_is_up(self) -> bool:
        """The run has left its `up` phase: every service answered its readiness check."""
        phases = read_json_or_empty(RunFolder(self.reports_dir / "latest").run_json).get("phases")
        return any(p.get("name") not in ("up", None) for p in phases or [] if isinstance(p, dict))

    def _prove(self) -> dict[str, Any]:
        # one probe per distinct (interpreter, working folder, PYTHONPATH): that is what decides
        groups: dict[tuple[str, str, str], tuple[dict[str, str], list[str]]] = {}
        for stack_id in sorted(self.stack_ids):
            for proc, module in service_processes(stack_id):
                with contextlib.suppress(psutil.Error):
                    env = proc.environ()
                    key = (proc.cmdline()[0], proc.cwd(), env.get("PYTHONPATH", ""))
                    groups.setdefault(key, (env, []))[1].append(f"{module} (pid {proc.pid})")
        if not groups:
            return {"checked": False, "why": "no service process of the stack was found"}
        probes = []
        for (python, cwd, pythonpath), (env, services) in groups.items():
            origin = probe_origin(python, cwd, env, self.module)
            path = Path(origin).resolve() if origin else None
            probes.append(
                {
                    "services": services,
                    "python": python,
                    "cwd": cwd,
                    "pythonpath": pythonpath,
                    "module": self.module,
                    "origin": origin,
                    "in_copy": bool(path and path.is_relative_to(self.copy)),
                    "sha256": sha256(path) if path and path.is_file() else None,
                }
            )
        in_copy = all(p["in_copy"] for p in probes)
        mutated = self.mutated_sha is None or all(p["sha256"] == self.mutated_sha for p in probes)
        return {
            "checked": True,
            "ok": in_copy and mutated,
            "copy": str(self.copy),
            "probes": probes,
        }
