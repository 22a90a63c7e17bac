"""The mutation catalogue is checked before anything starts: every error names the file, the key
and what to do; a `find` that no longer matches exactly once fails loudly (the code moved)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.selftest.catalogue import load_catalogue, load_mutation, select
from harness.selftest.runner import ROOT, plan_cases
from harness.verify.invariants import invariant_names

pytestmark = pytest.mark.unit

CODE = """\
def charge(order):
    key = f"{order}:charge"
    return key
"""

GOOD = """\
name: NAME
title: A charge key that changes on every attempt
incident: A retried charge was a new charge.
file: system_under_test/pay.py
replace:
  find: 'key = f"{order}:charge"'
  with: 'key = f"{order}:charge:{attempt}"'
suite: tiny
expect: [exactly_once_money]
quick: true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one system file and one self-test suite."""
    (tmp_path / "system_under_test").mkdir()
    (tmp_path / "system_under_test" / "pay.py").write_text(CODE)
    (tmp_path / "scenarios" / "suites" / "selftest").mkdir(parents=True)
    (tmp_path / "scenarios" / "suites" / "selftest" / "tiny.yaml").write_text("name: tiny\n")
    (tmp_path / "scenarios" / "mutations").mkdir()
    return tmp_path


def write(project: Path, text: str, name: str = "key-per-attempt") -> Path:
    path = project / "scenarios" / "mutations" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).replace("NAME", name))
    return path


def load(project: Path, text: str, name: str = "key-per-attempt"):
    return load_mutation(write(project, text, name), project, invariant_names())


def test_a_good_mutation_reads_with_its_suite_and_module(project: Path) -> None:
    m = load(project, GOOD)
    assert m.name == "key-per-attempt" and m.quick and m.pending is None
    assert m.file == Path("system_under_test/pay.py") and m.module == "system_under_test.pay"
    assert m.suite == Path("scenarios/suites/selftest/tiny.yaml")
    assert m.expect == ("exactly_once_money",)
    assert [(r.find, r.with_) for r in m.replacements] == [
        ('key = f"{order}:charge"', 'key = f"{order}:charge:{attempt}"')
    ]


def test_a_find_that_no_longer_occurs_fails_naming_the_file_and_the_text(project: Path) -> None:
    (project / "system_under_test" / "pay.py").write_text(CODE.replace(":charge", ":pay"))
    with pytest.raises(ConfigError) as err:
        load(project, GOOD)
    message = str(err.value)
    assert (
        "key-per-attempt.yaml: replace[0].find occurs 0 times in system_under_test/pay.py"
        in message
    )
    assert "the code it targets has moved" in message
    assert "'key = f\"{order}:charge\"'" in message


def test_a_find_that_occurs_twice_is_ambiguous(project: Path) -> None:
    (project / "system_under_test" / "pay.py").write_text(CODE + CODE)
    with pytest.raises(ConfigError, match=r"occurs 2 times .*\(it is ambiguous\)"):
        load(project, GOOD)


def test_replacements_apply_in_order_each_to_the_result_of_the_last(project: Path) -> None:
    text = GOOD.replace(
        "replace:\n  find: 'key = f\"{order}:charge\"'\n  with: 'key = f\"{order}:charge:{attempt}\"'",
        "replace:\n  - {find: ':charge\"', with: ':pay\"'}\n  - {find: ':pay\"', with: ':charge:x\"'}",
    )
    m = load(project, text)
    assert len(m.replacements) == 2


def test_a_mutation_that_does_not_compile_is_refused(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"the mutated system_under_test/pay.py does not compile"):
        load(
            project, GOOD.replace("with: 'key = f\"{order}:charge:{attempt}\"'", "with: 'key = ('")
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("quick: true", "quick: true\nseverity: high"), "unknown key 'severity'"),
        (("title: A charge key that changes on every attempt\n", ""), "key 'title' is missing"),
        (
            ("[exactly_once_money]", "[exactly_once_mony]"),
            "unknown invariant 'exactly_once_mony'; known: no_lost_order",
        ),
        (("[exactly_once_money]", "[]"), "key 'expect': expected a list of invariant names"),
        (
            ("system_under_test/pay.py", "harness/verify/money.py"),
            "must be a path under system_under_test/",
        ),
        (
            ("system_under_test/pay.py", "system_under_test/../harness/x.py"),
            "must be a path under system_under_test/",
        ),
        (
            ("system_under_test/pay.py", "system_under_test/gone.py"),
            "'system_under_test/gone.py' does not exist",
        ),
        (
            ("suite: tiny", "suite: huge"),
            "no suite 'huge'; give a path under the project or one of: tiny",
        ),
        (("quick: true", "quick: yes please"), "key 'quick': expected true or false"),
        (("quick: true", "quick: true\npending: ''"), "key 'pending': expected a reason"),
        (("quick: true", "quick: true\npending: needs issue 15"), "cannot be in the quick subset"),
        (
            ("with: 'key = f\"{order}:charge:{attempt}\"'", "with: 'key = f\"{order}:charge\"'"),
            "the same text",
        ),
    ],
)
def test_every_malformed_key_is_named(project: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(project, GOOD.replace(*change))
    assert message in str(err.value)
    assert str(err.value).startswith(str(project / "scenarios" / "mutations"))


def test_the_name_must_be_the_file_name(project: Path) -> None:
    path = write(project, GOOD.replace("name: NAME", "name: other"))
    with pytest.raises(
        ConfigError, match="must be lowercase words joined by '-' and equal the file name"
    ):
        load_mutation(path, project, invariant_names())


def test_selection_by_name_and_quick(project: Path) -> None:
    write(project, GOOD, "a-quick-one")
    write(project, GOOD.replace("quick: true", "quick: false"), "a-slow-one")
    catalogue = load_catalogue(project / "scenarios" / "mutations", project)
    assert [m.name for m in select(catalogue, [], quick=True)] == ["a-quick-one"]
    assert [m.name for m in select(catalogue, [], quick=False)] == ["a-quick-one", "a-slow-one"]
    assert [m.name for m in select(catalogue, ["a-slow-one"], quick=False)] == ["a-slow-one"]
    with pytest.raises(
        ConfigError, match="--only: no mutation 'nope'; known: a-quick-one, a-slow-one"
    ):
        select(catalogue, ["nope"], quick=False)


def test_an_empty_or_missing_catalogue_is_an_error(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"has no \*\.yaml file"):
        load_catalogue(project / "scenarios" / "mutations", project)
    with pytest.raises(ConfigError, match="no mutation catalogue at"):
        load_catalogue(project / "nowhere", project)


def test_controls_run_first_once_per_suite_and_pending_mutations_need_none(project: Path) -> None:
    write(project, GOOD, "a-one")
    write(project, GOOD, "b-two")
    write(project, GOOD.replace("quick: true", "pending: 'needs issue 15'"), "c-pending")
    cases = plan_cases(load_catalogue(project / "scenarios" / "mutations", project), control=True)
    assert [(c.name, c.kind) for c in cases] == [
        ("control-tiny", "control"),
        ("a-one", "mutation"),
        ("b-two", "mutation"),
        ("c-pending", "mutation"),
    ]


def test_the_shipped_catalogue_applies_to_the_code_as_it_is_now() -> None:
    """Every shipped mutation still finds its code exactly once: when this fails, the system
    changed under a mutation; update the mutation's `find` (and check it still means the bug)."""
    catalogue = load_catalogue(ROOT / "scenarios" / "mutations", ROOT)
    assert len(catalogue) >= 12
    runnable = [m for m in catalogue if not m.pending]
    assert len(runnable) >= 12 and len({m.name for m in catalogue}) == len(catalogue)
    assert 1 <= sum(m.quick for m in catalogue) <= 6
