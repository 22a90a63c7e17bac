"""Planting a mutation: a copy of the project, the replacements applied to the copy only.

Why a copy: the user's checkout is never modified, so an interrupted self-test leaves no bug
behind in it, and the services of a mutated run import the copy's code (PYTHONPATH), never the
checkout's. Every replacement must match exactly once, so a mutation whose code has moved fails
loudly instead of testing nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.selftest.catalogue import Mutation, mutated_text

__all__ = ["COPIED", "Applied", "apply_mutation", "copy_project", "sha256"]

# What a run needs from the project: the harness, the system, the scenarios, the metadata.
COPIED = ("harness", "system_under_test", "scenarios", "pyproject.toml")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")


@dataclass(frozen=True)
class Applied:
    """What changed, as evidence: the file and its hash before and after."""

    file: str
    sha256_before: str
    sha256_after: str
    replacements: int

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "sha256_before": self.sha256_before,
            "sha256_after": self.sha256_after,
            "replacements": self.replacements,
            "changed": self.sha256_before != self.sha256_after,
        }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_project(root: Path, dest: Path) -> Path:
    """Copy what a run needs from `root` into `dest` (created); return `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=_IGNORED, symlinks=True)
        elif source.is_file():
            shutil.copy2(source, dest / name)
        else:
            raise ConfigError(
                f"{str(source)!r} is missing: run the self-test from a sagaquake checkout"
            )
    return dest


def apply_mutation(mutation: Mutation, root: Path, copy: Path) -> Applied:
    """Write the mutated file into `copy` (a copy of `root`), never into `root`."""
    if copy.resolve() == root.resolve():
        raise ConfigError(f"refusing to mutate the checkout itself ({root}): give a copy")
    target = copy / mutation.file
    before = sha256(root / mutation.file)
    target.write_text(mutated_text(mutation, copy))
    after = sha256(target)
    return Applied(str(mutation.file), before, after, len(mutation.replacements))
