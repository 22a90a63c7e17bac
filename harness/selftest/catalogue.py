"""The bug zoo: mutation files (`scenarios/mutations/*.yaml`), read and checked before anything starts.

Why data: a mutation is a small, named change to `system_under_test/` with the invariant it must
break, so anyone can add one without touching the harness, and the harness can refuse a file
whose target code has moved (a `find` that no longer occurs exactly once) before any stack runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

__all__ = [
    "MUTATIONS_DIR",
    "SUITE_DIRS",
    "Mutation",
    "Replacement",
    "find_suite",
    "load_catalogue",
    "load_mutation",
    "mutated_text",
    "select",
]

MUTATIONS_DIR = Path("scenarios/mutations")
# where a mutation's `suite: NAME` is looked for, in order (relative to the project root)
SUITE_DIRS = (Path("scenarios/suites/selftest"), Path("scenarios/suites"))
_KEYS = {"name", "title", "incident", "file", "replace", "suite", "expect", "quick", "pending"}
_REQUIRED = ("name", "title", "incident", "file", "replace", "suite", "expect")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TARGET = Path("system_under_test")


@dataclass(frozen=True)
class Replacement:
    find: str
    with_: str


@dataclass(frozen=True)
class Mutation:
    """One planted bug: where, what, which suite shows it, and which invariants must break."""

    source: Path  # the mutation file
    name: str
    title: str
    incident: str
    file: Path  # relative to the project root, under system_under_test/
    replacements: tuple[Replacement, ...]
    suite: Path  # relative to the project root
    expect: tuple[str, ...]
    quick: bool = False
    pending: str | None = None

    @property
    def module(self) -> str:
        """The Python module the mutated file is (what a service imports)."""
        parts = list(self.file.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)


def find_suite(value: str, root: Path, where: str) -> Path:
    """A suite name (in scenarios/suites/selftest, then scenarios/suites) or a path under `root`,
    returned relative to `root` so that it names the same file in a copy of the project."""
    candidates = [d / f"{value}.yaml" for d in SUITE_DIRS] + [Path(value)]
    for candidate in candidates:
        if not candidate.is_absolute() and (root / candidate).is_file():
            return candidate
    known = sorted({p.stem for d in SUITE_DIRS for p in (root / d).glob("*.yaml")})
    raise ConfigError(
        f"{where}: no suite {value!r}; give a path under the project or one of: {', '.join(known)}"
    )


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: key {key!r}: expected a non-empty text, got {value!r}")
    return value


def _replacements(value: Any, where: str) -> tuple[Replacement, ...]:
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            f"{where}: key 'replace': expected {{find: ..., with: ...}} or a list of them, got {value!r}"
        )
    found = []
    for i, item in enumerate(items):
        at = f"{where}: replace[{i}]"
        if not isinstance(item, dict) or set(item) != {"find", "with"}:
            raise ConfigError(f"{at}: expected exactly the keys 'find' and 'with', got {item!r}")
        find, with_ = item["find"], item["with"]
        if not isinstance(find, str) or not find.strip() or not isinstance(with_, str):
            raise ConfigError(f"{at}: 'find' must be a non-empty text and 'with' a text")
        if find == with_:
            raise ConfigError(f"{at}: 'find' and 'with' are the same text: nothing would change")
        found.append(Replacement(find, with_))
    return tuple(found)


def _expect(value: Any, where: str, known: Iterable[str]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    known = list(known)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"{where}: key 'expect': expected a list of invariant names, got {value!r}"
        )
    for name in names:
        if name not in known:
            raise ConfigError(
                f"{where}: key 'expect': unknown invariant {name!r}; known: {', '.join(known)}"
            )
    return tuple(names)


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def mutated_text(mutation: Mutation, root: Path) -> str:
    """The mutated file's text, from the file under `root`; each replacement applies to the
    result of the previous one and its `find` must occur exactly once there."""
    text = (root / mutation.file).read_text()
    for i, rep in enumerate(mutation.replacements):
        count = text.count(rep.find)
        if count != 1:
            moved = "the code it targets has moved" if count == 0 else "it is ambiguous"
            raise ConfigError(
                f"{mutation.source}: replace[{i}].find occurs {count} times in {mutation.file}, "
                f"expected exactly once ({moved}): {_excerpt(rep.find)!r}; update the mutation"
            )
        text = text.replace(rep.find, rep.with_, 1)
    if mutation.file.suffix == ".py":
        try:
            compile(text, str(mutation.file), "exec")
        except SyntaxError as exc:
            raise ConfigError(
                f"{mutation.source}: the mutated {mutation.file} does not compile "
                f"(line {exc.lineno}: {exc.msg}); fix its 'with' text"
            ) from None
    return text


def load_mutation(path: Path, root: Path, invariants: Iterable[str]) -> Mutation:
    """Read one mutation file and check it against the project at `root` (the target file
    exists and every `find` occurs in it exactly once, applied in order)."""
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read it as text: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of mutation keys, got {data!r}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; expected some of: {', '.join(sorted(_KEYS))}"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{where}: key {missing[0]!r} is missing")
    name = _text(data, "name", where)
    if not _NAME.match(name) or name != path.stem:
        raise ConfigError(
            f"{where}: key 'name': {name!r} must be lowercase words joined by '-' and equal the "
            f"file name ({path.stem!r})"
        )
    file = Path(_text(data, "file", where))
    if file.is_absolute() or ".." in file.parts or file.parts[:1] != _TARGET.parts:
        raise ConfigError(
            f"{where}: key 'file': {str(file)!r} must be a path under system_under_test/ "
            "(a mutation changes the system, never the harness)"
        )
    if not (root / file).is_file():
        raise ConfigError(f"{where}: key 'file': {str(file)!r} does not exist under {root}")
    quick, pending = data.get("quick", False), data.get("pending")
    if not isinstance(quick, bool):
        raise ConfigError(f"{where}: key 'quick': expected true or false, got {quick!r}")
    if pending is not None and (not isinstance(pending, str) or not pending.strip()):
        raise ConfigError(f"{where}: key 'pending': expected a reason (text), got {pending!r}")
    if pending is not None and quick:
        raise ConfigError(
            f"{where}: key 'quick': a pending mutation is not run, so it cannot be in the quick subset"
        )
    suite = data.get("suite")
    if not isinstance(suite, str) or not suite:
        raise ConfigError(f"{where}: key 'suite': expected a suite name or path, got {suite!r}")
    mutation = Mutation(
        source=path,
        name=name,
        title=_text(data, "title", where),
        incident=_text(data, "incident", where),
        file=file,
        replacements=_replacements(data["replace"], where),
        suite=find_suite(suite, root, f"{where}: key 'suite'"),
        expect=_expect(data["expect"], where, invariants),
        quick=quick,
        pending=pending,
    )
    mutated_text(mutation, root)  # raises when a find has moved or the result does not compile
    return mutation


def load_catalogue(folder: Path, root: Path) -> list[Mutation]:
    """Every mutation of `folder`, checked, sorted by name; names are unique by construction
    (a name is its file's)."""
    from harness.verify.invariants import invariant_names

    if not folder.is_dir():
        raise ConfigError(f"no mutation catalogue at {str(folder)!r}: give a folder of *.yaml")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"the mutation catalogue {str(folder)!r} has no *.yaml file")
    names = invariant_names()
    return [load_mutation(f, root, names) for f in files]


def select(catalogue: list[Mutation], only: list[str], quick: bool) -> list[Mutation]:
    """The mutations to run: those named by `only` (in catalogue order), else the quick ones
    with `quick`, else all. An unknown name is an error that lists the known ones."""
    if only:
        known = {m.name for m in catalogue}
        for name in only:
            if name not in known:
                raise ConfigError(
                    f"--only: no mutation {name!r}; known: {', '.join(sorted(known))}"
                )
        chosen = [m for m in catalogue if m.name in only]
        return [m for m in chosen if m.quick] if quick else chosen
    return [m for m in catalogue if m.quick] if quick else list(catalogue)
