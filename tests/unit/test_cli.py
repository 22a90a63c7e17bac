"""The one command line (harness/cli.py): every verb under `sagaquake`, `--platform` on each verb
that touches a stack, one error format, a command's own inputs checked before any stack is
looked for, and the `python -m` forms and the Make/CI/README commands going through it."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from harness import cli, stack_cli
from harness.errors import StackNotRunningError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
VERBS = ["up", "down", "status", "endpoints", "heal", "render", "load", "chaos", "reprocess",
         "verify", "report", "run", "selftest"]  # fmt: skip
STACK_VERBS = ["up", "down", "status", "endpoints", "heal", "load", "chaos", "reprocess",
               "verify", "run"]  # fmt: skip


@pytest.fixture(autouse=True)
def _no_platform_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAGAQUAKE_PLATFORM", "SAGAQUAKE_K8S_CONTEXT", "SAGAQUAKE_ORDER_REPLICAS",
                 "SAGAQUAKE_REPORT_STRICT", "SAGAQUAKE_RUN_DIR"):  # fmt: skip
        monkeypatch.setenv(name, "")  # so that what main sets is undone after the test
        monkeypatch.delenv(name)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, argparse.Namespace]]:
    """The stack verbs replaced by recorders: what main passed them, nothing started."""
    seen: list[tuple[str, argparse.Namespace]] = []
    for verb in ("up", "down", "status", "endpoints", "heal", "render"):

        def record(args: argparse.Namespace, console: Any, verb: str = verb) -> int:
            seen.append((verb, args))
            return 0

        monkeypatch.setattr(stack_cli, f"{verb}_command", record)
    return seen


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking for a stack fails the test: the command had to refuse its inputs first."""

    def attach(kind: str = "local") -> Any:
        raise AssertionError(f"looked for a {kind} stack before checking the command's inputs")

    monkeypatch.setattr(cli, "attach", attach)


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    parser, commands = cli.build_parser()
    assert sorted(commands) == sorted(VERBS)
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    listed = re.findall(r"^    (\S+)", text, re.M)
    assert listed == VERBS


@pytest.mark.parametrize("verb", STACK_VERBS)
def test_every_verb_that_touches_a_stack_takes_platform_and_context(verb: str) -> None:
    parser, _ = cli.build_parser()
    args = parser.parse_args([verb, "--platform", "k8s", "--context", "kind-x"])
    assert (args.platform, args.context) == ("k8s", "kind-x")


def test_usage_errors_have_the_one_error_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up", "--order-replicas", "x"]) == 3
    err = capsys.readouterr().err
    assert err == (
        "error: argument --order-replicas: 'x' is not a whole number from 1 to 10 "
        "(see `sagaquake up --help`)\n"
    )
    assert cli.main(["bogus"]) == 3
    assert capsys.readouterr().err.startswith("error: argument command: invalid choice: 'bogus'")
    assert cli.main([]) == 3
    assert "usage:" not in capsys.readouterr().err


def test_harness_errors_have_the_same_format_and_keep_brackets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "[bold]x[/]"
    assert cli.main(["report", str(folder)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: no run folder at '{folder}'")
    assert err.count("\n") == 1


def test_a_flag_of_the_other_platform_is_refused(
    calls: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["up", "--platform", "k8s", "--order-replicas", "3"]) == 3
    assert capsys.readouterr().err == (
        "error: --order-replicas is for --platform local, and this command runs on k8s: drop it, "
        "or add --platform local\n"
    )
    assert cli.main(["up", "--overlay", "kind"]) == 3
    assert "--overlay is for --platform k8s" in capsys.readouterr().err
    assert calls == []


def test_a_setting_from_the_environment_is_not_refused(
    calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGAQUAKE_ORDER_REPLICAS", "3")
    assert cli.main(["up", "--platform", "k8s", "--image", "img:1", "--timeout", "10m"]) == 0
    [(verb, args)] = calls
    assert (verb, args.platform, args.image, args.timeout) == ("up", "k8s", "img:1", 600.0)
    assert args.order_replicas == 3


def test_the_platform_variable_is_checked(
    calls: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAGAQUAKE_PLATFORM", "docker")
    assert cli.main(["status"]) == 3
    assert "unknown platform 'docker'" in capsys.readouterr().err
    monkeypatch.setenv("SAGAQUAKE_PLATFORM", "kubernetes")
    assert cli.main(["status"]) == 0
    assert calls[0][1].platform == "k8s"


def test_context_is_handed_on_to_what_the_command_attaches(
    calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    assert cli.main(["status", "--platform", "k8s", "--context", "kind-y"]) == 0
    assert os.environ["SAGAQUAKE_K8S_CONTEXT"] == "kind-y"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["load", "--profile", "nope"], "error: unknown profile 'nope'"),
        (["load", "--compress", "-3"], "error: argument --compress: '-3' is not a number above 0"),
        (["load", "--duration", "1x"], "error: --duration: expected a duration"),
        (["load", "--start-hour", "25"], "error: start hour '25'"),
        (["reprocess", "--from", "abc"], "error: --from 'abc' is not a stream id"),
        (["reprocess", "--percent-bp", "0"], "error: argument --percent-bp: '0' is not a whole"),
        (["reprocess", "--correction-id", "a b"], "error: --correction-id 'a b'"),
        (["run", "--processes", "0"], "error: argument --processes: '0' is not a whole number"),
        (["up", "--timeout", "soon"], "error: argument --timeout: expected a duration"),
    ],
)
def test_inputs_are_checked_before_a_stack_is_looked_for(
    no_stack: None, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 3
    assert capsys.readouterr().err.startswith(message)


def test_without_a_stack_a_good_load_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def attach(kind: str = "local") -> Any:
        raise StackNotRunningError("no local stack is running: start one with `sagaquake up`")

    monkeypatch.setattr(cli, "attach", attach)
    assert cli.main(["load", "--profile", "flat", "--duration", "10s"]) == 3
    assert capsys.readouterr().err.startswith("error: no local stack is running")


def test_report_defaults_to_the_latest_run_and_has_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    parser, _ = cli.build_parser()
    args = parser.parse_args(["report"])
    assert (args.run_dir, bool(args.strict)) == ("reports/latest", False)
    monkeypatch.setenv("SAGAQUAKE_RUN_DIR", "reports/x")
    monkeypatch.setenv("SAGAQUAKE_REPORT_STRICT", "1")
    parser, _ = cli.build_parser()
    args = parser.parse_args(["report"])
    assert (args.run_dir, args.strict) == ("reports/x", True)


def test_the_kubernetes_module_form_is_the_k8s_platform_of_the_same_verbs(
    calls: list[Any],
) -> None:
    from harness.platforms.kubernetes.__main__ import main

    assert main(["up", "--context", "kind-z", "--overlay", "kind", "--timeout", "600"]) == 0
    assert main(["down"]) == 0
    assert main(["render", "--overlay", "minikube"]) == 0
    (up, up_args), (down, down_args), (render, render_args) = calls
    assert (up, up_args.platform, up_args.context, up_args.timeout) == ("up", "k8s", "kind-z", 600)
    assert (down, down_args.platform) == ("down", "k8s")
    assert (render, render_args.overlay) == ("render", "minikube")


def test_the_report_module_form_is_sagaquake_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.report.__main__ import main

    assert main([str(tmp_path / "nope"), "--strict"]) == 3
    assert capsys.readouterr().err.startswith("error: no run folder at")


# -- the commands people type: Make, CI, the README and the platform docs -----------------------

_MAKE_VALUES = {"K8S_UP_TIMEOUT": "600", "SUITE": "default", "PLATFORM": "local"}


def _make_line(line: str) -> list[str]:
    """A recipe's arguments with every variable set (and every `$(if …)` taken)."""
    line = re.sub(r"\$\(([A-Z0-9_]+)\)", lambda m: _MAKE_VALUES.get(m[1], "x"), line)
    return shlex.split(re.sub(r"\$\(if [^,]*,([^)]*)\)", r"\1", line))


def _typed_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name in ("Makefile", "k8s/make.mk"):
        for m in re.finditer(r"\$\(BIN\)/sagaquake ([a-z][^&|;\n]*)", (REPO / name).read_text()):
            found.append((name, _make_line(m[1])))
    for name in (".ci/run", ".github/workflows/nightly.yml"):
        for m in re.finditer(r"\.venv/bin/sagaquake ([^\n#]*)", (REPO / name).read_text()):
            found.append((name, shlex.split(m[1])))
    for name in ("README.md", "docs/platform.md", "docs/kubernetes.md"):
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", (REPO / name).read_text(), re.S):
            for line in block.splitlines():
                m = re.match(r"(?:\S*\s)?(?:\.venv/bin/)?sagaquake (.*?)(?:\s+#.*)?$", line)
                if m and "<" not in m[1]:
                    found.append((name, shlex.split(m[1])))
    return found


def test_the_commands_in_make_ci_and_the_docs_parse() -> None:
    commands = _typed_commands()
    assert {name for name, _ in commands} >= {"Makefile", "k8s/make.mk", ".ci/run", "README.md"}
    assert next(a for n, a in commands if n == "k8s/make.mk")[:3] == ["up", "--platform", "k8s"]
    parser, _ = cli.build_parser()
    for name, argv in commands:
        args = parser.parse_args(argv)
        cli._check_platform(args)  # no flag of the other platform either
        assert args.command, (name, argv)


def test_make_and_ci_run_sagaquake_not_python_modules() -> None:
    """The shims are for people's habits; what we ship runs the one command."""
    for name in ("Makefile", "k8s/make.mk", ".ci/run", ".github/workflows/nightly.yml"):
        assert not re.search(r"python -m harness\.", (REPO / name).read_text()), name
