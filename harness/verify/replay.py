"""Replay a run's histories against some version of the system's code: which code, and the child
process that replays (harness/verify/replay_child.py).

The code is the system under test this interpreter would import (its folder found without
importing it), or `--replay-against`: a folder holding `system_under_test/` (or that folder
itself), or a git ref of the project's repository, whose `system_under_test/` is extracted
into a temporary folder with `git archive`. The verifier never imports that code itself: the
child process does, and answers in JSON.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import ConfigError
from harness.settings import VerifySettings
from harness.verify.histories import HistoryRecords, write_histories

__all__ = ["Code", "code_to_replay", "replay_histories", "replay_processes"]

CHILD = Path(__file__).with_name("replay_child.py")
PACKAGE = "system_under_test"
_TIMEOUT_S = 3600.0
_SLOW_EXIT = 75  # replay_child.SLOW_EXIT: a history was slow inline, replay the part threaded
# A second child only pays for its start-up (~1.2 s of CPU: the SDK's and the system's imports)
# when each child gets at least this many sagas (~15 ms of CPU each): then it adds < 10 % of CPU.
_SAGAS_PER_CHILD = 1000
_GZ_BYTES_PER_SAGA = 900  # a saga's record in workflows.jsonl.gz, compressed (~13 events)


@dataclass(frozen=True)
class Code:
    """Where the workflow code to replay against lives, and what to call it in a verdict."""

    root: Path  # the folder holding system_under_test/
    label: str  # "the current code (<root>)", "ref main (abc1234)", "<path>"


def _current_root() -> Path:
    """The folder of the `system_under_test` package this interpreter would import (a selftest
    copy first on PYTHONPATH included), found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        raise ConfigError(f"no {PACKAGE} package to replay against: pass --replay-against")
    return Path(spec.origin).resolve().parents[1]


def _repo() -> Path:
    for start in (Path.cwd(), Path(__file__).resolve().parents[2]):
        found = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if found.returncode == 0:
            return Path(found.stdout.strip())
    raise ConfigError("--replay-against names no folder, and there is no git repository here")


@contextlib.contextmanager
def code_to_replay(against: str | Path | None = None) -> Iterator[Code]:
    """The code to replay against (see the module's doc); a git ref is extracted into a
    temporary folder that is removed afterwards. ConfigError for a path without
    system_under_test/ or a ref git does not know."""
    if against in (None, ""):
        root = _current_root()
        yield Code(root, f"the current code ({root})")
        return
    path = Path(str(against)).expanduser()
    if path.exists():
        root = path.resolve()
        if root.name == PACKAGE:
            root = root.parent
        if not (root / PACKAGE / "__init__.py").is_file():
            raise ConfigError(
                f"--replay-against {str(against)!r} has no {PACKAGE}/ package: give the folder "
                "of a checkout of the project, or a git ref"
            )
        yield Code(root, str(root))
        return
    repo = _repo()
    ref = str(against)
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if commit.returncode != 0:
        raise ConfigError(
            f"--replay-against {ref!r} is neither a folder nor a git ref of {repo}: "
            "give a path, a branch, a tag or a commit"
        )
    sha = commit.stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", sha, PACKAGE],
        capture_output=True, check=False,
    )  # fmt: skip
    if archive.returncode != 0:
        raise ConfigError(
            f"git ref {ref!r} ({sha[:7]}) has no {PACKAGE}/: {archive.stderr.decode()[:200]}"
        )
    folder = Path(tempfile.mkdtemp(prefix="sagaquake-replay-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        yield Code(folder, f"ref {ref} ({sha[:7]})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def replay_processes(sagas: int | None = None) -> int:
    """How many child processes replay at once: SAGAQUAKE_VERIFY_WORKERS, else 2 on two cores
    or more (a replay is CPU-bound, ~15 ms a saga) when there are `sagas` enough for both
    (_SAGAS_PER_CHILD each; None: enough), else 1."""
    workers = VerifySettings.field_from_env("verify_workers")
    if workers is not None:
        return int(workers)
    if sagas is not None and sagas < 2 * _SAGAS_PER_CHILD:
        return 1
    return 2 if (os.cpu_count() or 1) > 1 else 1


def _sagas_in(path: Path) -> int:
    """About how many records the histories file holds, from its size (not read)."""
    return path.stat().st_size // _GZ_BYTES_PER_SAGA


def replay_histories(
    histories: HistoryRecords, code: Code, parts: int | None = None
) -> dict[str, Any]:
    """Replay every history against `code` in `parts` child processes at once (each replays
    every `parts`-th line); their JSON answers merged (see replay_child.py), plus `code` (the
    label). Raises RuntimeError when a child fails."""
    with contextlib.ExitStack() as stack:
        if isinstance(histories, Path):
            path = histories
            k = parts or replay_processes(_sagas_in(path))
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sagaquake-")))
            path = folder / "workflows.jsonl.gz"
            write_histories(path, histories)
            k = parts or replay_processes(len(histories))
        env = {**os.environ, "PYTHONPATH": str(code.root), "PYTHONDONTWRITEBYTECODE": "1"}
        argv = [sys.executable, str(CHILD), "--histories", str(path), "--code", str(code.root)]

        def start(j: int, *flags: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [*argv, "--part", f"{j}/{k}", *flags],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=code.root,
            )

        children = [start(j) for j in range(k)]
        answers = []
        for j, child in enumerate(children):
            out, err = child.communicate(timeout=_TIMEOUT_S)
            if child.returncode == _SLOW_EXIT:  # a slow history: the part again, threaded
                children[j] = child = start(j, "--threaded")
                out, err = child.communicate(timeout=_TIMEOUT_S)
            if child.returncode != 0 or not out.strip():
                for other in children:
                    other.kill()
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"the replay of {code.label} failed: " + " / ".join(tail))
            answers.append(orjson.loads(out.strip().splitlines()[-1]))
    return {
        "code": code.label,
        "histories": sum(a["histories"] for a in answers),
        "replayed": sum(a["replayed"] for a in answers),
        "workflow_types": answers[0]["workflow_types"],
        "took_s": max(a["took_s"] for a in answers),
        "parts": k,
        "failures": sorted((f for a in answers for f in a["failures"]), key=lambda f: f["index"]),
    }
