"""A mutation is planted in a copy only: the user's checkout is never modified, the copy has the
change (and its hash says so), and nothing the copy does not need is copied."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.selftest.catalogue import load_mutation
from harness.selftest.mutate import apply_mutation, copy_project, sha256
from harness.selftest.runner import ROOT
from harness.verify.invariants import invariant_names

pytestmark = pytest.mark.unit

MUTATION = """\
name: key-per-attempt
title: t
incident: i
file: system_under_test/saga/pay.py
replace:
  - find: ":charge"
    with: ":charge:1"
suite: tiny
expect: [exactly_once_money]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "system_under_test" / "saga" / "__pycache__").mkdir(parents=True)
    (root / "system_under_test" / "saga" / "pay.py").write_text('KEY = "ord:charge"\n')
    (root / "system_under_test" / "saga" / "__pycache__" / "pay.cpython-311.pyc").write_bytes(b"x")
    (root / "harness").mkdir()
    (root / "harness" / "cli.py").write_text("")
    (root / "scenarios" / "suites" / "selftest").mkdir(parents=True)
    (root / "scenarios" / "suites" / "selftest" / "tiny.yaml").write_text("name: tiny\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / ".venv").mkdir()
    (root / "reports").mkdir()
    (root / "scenarios" / "mutations").mkdir()
    (root / "scenarios" / "mutations" / "key-per-attempt.yaml").write_text(MUTATION)
    return root


def test_the_copy_has_the_mutation_and_the_checkout_does_not(project: Path, tmp_path: Path) -> None:
    mutation = load_mutation(
        project / "scenarios" / "mutations" / "key-per-attempt.yaml", project, invariant_names()
    )
    original = project / "system_under_test" / "saga" / "pay.py"
    before = sha256(original)
    copy = copy_project(project, tmp_path / "copy")
    applied = apply_mutation(mutation, project, copy)
    assert sha256(original) == before
    assert original.read_text() == 'KEY = "ord:charge"\n'
    assert (copy / "system_under_test" / "saga" / "pay.py").read_text() == 'KEY = "ord:charge:1"\n'
    assert applied.as_dict() == {
        "file": "system_under_test/saga/pay.py",
        "sha256_before": before,
        "sha256_after": sha256(copy / "system_under_test" / "saga" / "pay.py"),
        "replacements": 1,
        "changed": True,
    }
    assert mutation.module == "system_under_test.saga.pay"


def test_the_copy_holds_what_a_run_needs_and_nothing_else(project: Path, tmp_path: Path) -> None:
    copy = copy_project(project, tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir()) == [
        "harness", "pyproject.toml", "scenarios", "system_under_test",
    ]  # fmt: skip
    assert not list(copy.rglob("__pycache__")) and not list(copy.rglob("*.pyc"))


def test_the_checkout_itself_is_never_mutated(project: Path) -> None:
    mutation = load_mutation(
        project / "scenarios" / "mutations" / "key-per-attempt.yaml", project, invariant_names()
    )
    with pytest.raises(ConfigError, match="refusing to mutate the checkout itself"):
        apply_mutation(mutation, project, project)
    assert (project / "system_under_test" / "saga" / "pay.py").read_text() == 'KEY = "ord:charge"\n'


def test_a_copy_of_a_folder_that_is_not_a_checkout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="is missing: run the self-test from a sagaquake checkout"
    ):
        copy_project(tmp_path, tmp_path / "copy")


def test_a_mutation_whose_code_moved_after_validation_fails_when_applied(
    project: Path, tmp_path: Path
) -> None:
    mutation = load_mutation(
        project / "scenarios" / "mutations" / "key-per-attempt.yaml", project, invariant_names()
    )
    copy = copy_project(project, tmp_path / "copy")
    (copy / "system_under_test" / "saga" / "pay.py").write_text('KEY = "ord:pay"\n')
    with pytest.raises(ConfigError, match="occurs 0 times"):
        apply_mutation(mutation, project, copy)


def test_every_shipped_mutation_changes_its_file_in_a_copy_of_this_checkout(tmp_path: Path) -> None:
    from harness.selftest.catalogue import load_catalogue

    copy = copy_project(ROOT, tmp_path / "copy")
    for mutation in load_catalogue(ROOT / "scenarios" / "mutations", ROOT):
        applied = apply_mutation(mutation, ROOT, copy)
        assert applied.sha256_before != applied.sha256_after, mutation.name
        assert sha256(ROOT / mutation.file) == applied.sha256_before, mutation.name
        (copy / mutation.file).write_bytes((ROOT / mutation.file).read_bytes())  # next one clean
