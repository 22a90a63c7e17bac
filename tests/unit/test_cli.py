"""The one command line (harness/cli.py): every verb under `sagaquake`, `--platform` on each verb
that touches a stack, one error format, a command's own inputs checked before any stack is
looked for, and the `python -m` forms and the Make/CI/README commands going through it."""

from __future__ import annotations

import argparse
import json
import re
import runpy
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from harness import cli, stack_cli
from harness.chaos import runner
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
                 "SAGAQUAKE_REPORT_STRICT", "SAGAQUAKE_RUN_DIR", "SAGAQUAKE_COMPRESS",
                 "SAGAQUAKE_REPLAY_AGAINST"):  # fmt: skip
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


def test_a_value_that_looks_like_a_flag_gets_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["load", "--duration", "-5m"]) == 3
    err = capsys.readouterr().err
    assert "argument --duration: expected one argument" in err
    assert "given as --flag=VALUE" in err
    assert cli.main(["load", "--duration=-5m"]) == 3
    assert "expected a duration like 90s" in capsys.readouterr().err


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
        (
            ["verify", "--live", "--replay-against", "no-such-ref"],
            "error: --replay-against 'no-such-ref' is neither a folder nor a git ref",
        ),
        (
            ["verify", "--live", "--replay-against", "/"],
            "error: --replay-against '/' has no system_under_test/ package",
        ),
        (["verify", "--live", "/no/such/run"], "error: no run folder at '/no/such/run'"),
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


def _python_m(module: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """`python -m <module> <argv…>` in this process: its exit code."""
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as done:
        warnings.simplefilter("ignore", RuntimeWarning)  # the module was imported already
        runpy.run_module(module, run_name="__main__")
    return done.value.code


def test_the_chaos_module_form_is_sagaquake_chaos(
    no_stack: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _python_m("harness.chaos.runner", ["--list"], monkeypatch) == 0
    assert "kill-payment-pods" in capsys.readouterr().out.split()
    argv = ["kill-payment-pods", "--compress", "0"]
    assert _python_m("harness.chaos.runner", argv, monkeypatch) == 3
    assert capsys.readouterr().err == (
        "error: argument --compress: '0' is not a number above 0 (see `sagaquake chaos --help`)\n"
    )


def test_chaos_hands_its_flags_to_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[tuple[Any, ...]] = []

    def run(source: Path, run_dir: Any, platform: str, extra: dict[str, Any]) -> dict[str, Any]:
        ran.append((source.name, run_dir, platform, extra))
        return {"status": "completed", "deviated": False, "sagaquake": {"experiment": "x"}}

    monkeypatch.setattr(runner, "run_experiment_file", run)
    monkeypatch.setenv("SAGAQUAKE_COMPRESS", "24")
    argv = ["chaos", "kill-payment-pods", "--var", "kill_count=2", "--var", "note=a=b",
            "--run-dir", str(tmp_path), "--platform", "k8s"]  # fmt: skip
    assert cli.main(argv) == 0
    assert ran == [
        ("kill-payment-pods.yaml", str(tmp_path), "k8s",
         {"kill_count": "2", "note": "a=b", "sagaquake_compress": 24.0}),
    ]  # fmt: skip
    assert capsys.readouterr().out.startswith("experiment x: completed")


def _write_histories(run_dir: Path, *workflow_ids: str) -> None:
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.history.v1 import History, HistoryEvent

    from harness.runs import RunFolder
    from harness.verify.histories import encode, write_histories

    started = HistoryEvent(event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    records = [
        {"workflow_id": w, "run_id": f"run-{w}", "workflow_type": "OrderSaga",
         "status": "COMPLETED", "history": encode(History(events=[started]))}
        for w in workflow_ids
    ]  # fmt: skip
    write_histories(RunFolder(run_dir).workflows, records)


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        value, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
        found.append(value)
    return found


def test_verify_shows_a_runs_histories_and_verifies_nothing(
    tmp_path: Path, no_stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_histories(tmp_path, "ord-1", "ord-2")
    assert cli.main(["verify", str(tmp_path), "--show-histories"]) == 0
    runs = _json_objects(capsys.readouterr().out)
    assert [r["run_id"] for r in runs] == ["run-ord-1", "run-ord-2"]
    event = runs[0]["history"]["events"][0]
    assert (event["eventId"], event["eventType"]) == ("1", "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED")
    assert cli.main(["verify", str(tmp_path), "--show-histories", "ord-2"]) == 0
    assert [r["run_id"] for r in _json_objects(capsys.readouterr().out)] == ["run-ord-2"]
    assert cli.main(["verify", str(tmp_path), "--show-histories", "ord-9"]) == 3
    assert capsys.readouterr().err.startswith("error: no workflow 'ord-9' in ")
    assert cli.main(["verify", str(tmp_path), "--live", "--show-histories"]) == 3
    assert capsys.readouterr().err.startswith("error: --show-histories reads a run folder's")
    assert [p.name for p in tmp_path.iterdir()] == ["history"]  # no verdict.json


def test_the_histories_module_form_is_verify_show_histories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_histories(tmp_path, "ord-1", "ord-2")
    assert _python_m("harness.verify.histories", [str(tmp_path), "ord-1"], monkeypatch) == 0
    assert [r["run_id"] for r in _json_objects(capsys.readouterr().out)] == ["run-ord-1"]
    assert _python_m("harness.verify.histories", [str(tmp_path / "x")], monkeypatch) == 3
    assert capsys.readouterr().err.startswith("error: no run folder at ")


# -- every verb, bad input: one error, exit 3, nothing started or written -----------------------


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch, no_stack: None) -> None:
    """Whatever would start, find or reach a stack fails the test."""

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("reached for a stack before refusing the command's input")

    import harness.run.orchestrator
    import harness.selftest.runner

    for owner, name in ((stack_cli, "start_local"), (stack_cli, "_kubernetes"),
                        (stack_cli, "attach"), (runner, "platform_for"),
                        (harness.run.orchestrator, "run_suite"),
                        (harness.selftest.runner, "run_case")):  # fmt: skip
        monkeypatch.setattr(owner, name, refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("up --run-dir {file}", "error: argument --run-dir: '{file}' is a file: give a folder"),
        ("up --timeout 0", "error: argument --timeout: must be longer than 0 seconds"),
        ("down --platform docker", "error: argument --platform: invalid choice: 'docker'"),
        ("status --context kind-x", "error: --context is for --platform k8s"),
        ("endpoints --platform docker", "error: argument --platform: invalid choice: 'docker'"),
        ("heal --platform docker", "error: argument --platform: invalid choice: 'docker'"),
        ("render --overlay nope", "error: argument --overlay: invalid choice: 'nope'"),
        ("load --compress abc", "error: argument --compress: 'abc' is not a number above 0"),
        ("load --profile {binary}", "error: {binary}: cannot be read: not UTF-8 text"),
        ("load --run-dir {file}", "error: argument --run-dir: '{file}' is a file"),
        ("chaos", "error: chaos needs an experiment: a file, or a name in scenarios/chaos"),
        ("chaos nope", "error: no experiment 'nope': give a file or one of scenarios/chaos"),
        ("chaos {binary}", "error: cannot load experiment '{binary}': 'utf-8' codec"),
        (
            "chaos kill-payment-pods --compress abc",
            "error: argument --compress: 'abc' is not a number above 0",
        ),
        ("chaos kill-payment-pods --var x", "error: argument --var: 'x' is not KEY=VALUE"),
        (
            "chaos kill-payment-pods --var nope=1",
            "error: experiment '{repo}/scenarios/chaos/kill-payment-pods.yaml' has no configuration "
            "key 'nope'",
        ),
        ("chaos kill-payment-pods --run-dir {file}", "error: argument --run-dir: '{file}' is a"),
        ("reprocess --to xyz", "error: --to 'xyz' is not a stream id"),
        ("reprocess --from 5-0 --to 1-0", "error: --from 5-0 comes after --to 1-0"),
        ("reprocess --from + --to 7", "error: --from + comes after --to 7"),
        ("reprocess --run-dir {file}", "error: argument --run-dir: '{file}' is a file"),
        ("verify {missing}", "error: no run folder at '{missing}'"),
        ("verify", "error: verify needs a run folder (e.g. reports/latest), or --live"),
        ("verify --show-histories", "error: --show-histories needs a run folder"),
        ("verify {folder} --show-histories", "error: '{folder}' is not a run folder"),
        ("verify {folder}", "error: '{folder}' is not a run folder (no run.json, no history/)"),
        ("report {folder}", "error: '{folder}' is not a run folder (no run.json, no history/)"),
        ("report {missing}", "error: no run folder at '{missing}'"),
        ("run --suite nope", "error: no suite 'nope': give a file or one of: default"),
        ("run --suite {folder}", "error: no suite '{folder}': give a file or one of: default"),
        ("run --suite {binary}", "error: {binary}: cannot read it as text: 'utf-8' codec"),
        ("run --platform k8s --processes 0", "error: argument --processes: '0' is not a whole"),
        ("selftest --only nope", "error: --only: no mutation 'nope'; known: "),
        ("selftest --only ,", "error: --only ',' names no mutation: give names"),
        ("selftest --catalogue {missing}", "error: no mutation catalogue at '{missing}'"),
        ("selftest --catalogue {folder} --list", "error: {binary}: cannot read it as text"),
    ],
)
def test_bad_input_is_one_error_and_nothing_starts_or_is_written(
    nothing_starts: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: str,
    message: str,
) -> None:
    folder = tmp_path / "given"
    folder.mkdir()
    (folder / "binary.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff" * 8)
    (tmp_path / "a-file").write_text("not a folder")
    paths = {"file": tmp_path / "a-file", "folder": folder, "binary": folder / "binary.yaml",
             "missing": tmp_path / "missing", "repo": REPO}  # fmt: skip
    for name in ("SAGAQUAKE_STATE_DIR", "SAGAQUAKE_REPORTS_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name))
    before = sorted(tmp_path.rglob("*"))
    assert cli.main(shlex.split(argv.format(**paths))) == 3
    err = capsys.readouterr().err
    assert err.startswith(message.format(**paths))
    assert err.count("\n") <= 2 and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_show_histories_of_a_run_without_them_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.json").write_text("{}")
    assert cli.main(["verify", str(tmp_path), "--show-histories"]) == 3
    assert capsys.readouterr().err.startswith(
        f"error: no workflow histories at '{tmp_path}/history/"
    )


def test_render_without_a_kubeconfig_says_to_name_the_overlay(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.errors import PlatformError
    from harness.platforms.kubernetes import platform

    def connect(*args: Any) -> Any:
        raise PlatformError("no kubernetes cluster is configured (no kubeconfig)")

    monkeypatch.setattr(platform, "connect", connect)
    monkeypatch.delenv("SAGAQUAKE_K8S_OVERLAY", raising=False)
    assert cli.main(["render"]) == 3
    assert capsys.readouterr().err == (
        "error: no kubernetes cluster is configured (no kubeconfig); or name the overlay: "
        "--overlay kind|minikube\n"
    )


def test_up_reads_its_settings_before_it_makes_a_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAGAQUAKE_REPORTS_DIR", str(tmp_path))
    monkeypatch.setenv("SAGAQUAKE_REDIS_PORT", "abc")
    monkeypatch.setattr(stack_cli, "LocalPlatform", None)  # reached: a TypeError, not exit 3
    assert cli.main(["up"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "SAGAQUAKE_REDIS_PORT" in err
    assert list(tmp_path.iterdir()) == []


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
