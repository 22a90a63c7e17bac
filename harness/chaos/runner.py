"""Run a Chaos Toolkit experiment file from the harness: `sagaquake chaos <experiment>`.

`run_experiment_file` loads and validates the file (Chaos Toolkit's own validation, then
sagaquake's argument checks), points it at the platform and run folder, runs it with chaoslib
and the rollback strategy `always`, and saves the journal as `<run_dir>/chaos/<name>.journal.json`.
A file that cannot be loaded or is invalid raises `ConfigError` naming the file and the
problem, before anything touches the stack.

harness/cli.py owns the command line: it calls `add_chaos_arguments(parser)` on the `chaos`
sub-parser and `chaos_command(args)`, which returns the exit code (0 the hypothesis held,
1 the experiment deviated, failed or was aborted, 130 interrupted).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any

from chaoslib.configuration import load_configuration
from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
from chaoslib.loader import load_experiment
from chaoslib.types import Strategy

from harness.chaos import actions, ambiguous, deploy, midrequest, probes, reprocess, rollbacks
from harness.chaos.context import CONFIG_KEYS, number, platform_for, service_name
from harness.chaos.control import journal_path, save_journal
from harness.chaos.faults import ensure_faults_file
from harness.errors import ConfigError, HarnessError
from harness.settings import env_text

__all__ = [
    "EXPERIMENTS_DIR",
    "add_chaos_arguments",
    "chaos_command",
    "check_experiment",
    "list_experiments",
    "load_experiment_file",
    "register",
    "resolve_experiment",
    "run_experiment_file",
]

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "chaos"
CONTROL_MODULE = "harness.chaos.control"
_MODULES = {
    m.__name__: m for m in (actions, ambiguous, deploy, midrequest, probes, reprocess, rollbacks)
}
logger = logging.getLogger("chaostoolkit")


def list_experiments(folder: Path = EXPERIMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def resolve_experiment(name_or_path: str | Path) -> Path:
    """A path to an experiment file, or the name of one in scenarios/chaos/."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    for folder in (Path.cwd() / "scenarios" / "chaos", EXPERIMENTS_DIR):
        for suffix in (".yaml", ".yml", ".json"):
            candidate = folder / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate.resolve()
    known = ", ".join(list_experiments()) or "none"
    raise ConfigError(
        f"no experiment {str(name_or_path)!r}: give a file or one of scenarios/chaos: {known}"
    )


def load_experiment_file(path: Path) -> dict[str, Any]:
    """Load and validate an experiment; ConfigError naming the file and the problem."""
    try:
        experiment = load_experiment(str(path))
    except (ChaosException, OSError) as exc:
        raise ConfigError(f"cannot load experiment {str(path)!r}: {_one_line(exc)}") from None
    if not isinstance(experiment, dict):
        raise ConfigError(
            f"experiment {str(path)!r} is not a mapping with title, description and method"
        )
    try:
        _check_configuration(experiment)
        ensure_experiment_is_valid(experiment)
    except (ChaosException, ConfigError) as exc:
        raise ConfigError(f"experiment {str(path)!r} is invalid: {_one_line(exc)}") from None
    try:
        check_experiment(experiment)
    except ConfigError as exc:
        raise ConfigError(f"experiment {str(path)!r} is invalid: {exc}") from None
    return experiment


def check_experiment(
    experiment: dict[str, Any], extra_config: dict[str, Any] | None = None
) -> None:
    """sagaquake's checks on top of Chaos Toolkit's: the arguments of the extension's own
    activities, with the configuration substituted (a service that does not exist, a
    negative duration, a fraction outside (0, 1))."""
    from chaoslib import substitute

    config = load_configuration(experiment.get("configuration") or {}, dict(extra_config or {}))
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for phase, activities in (
        ("steady-state-hypothesis", hypothesis.get("probes") or []),
        ("method", experiment.get("method") or []),
        ("rollbacks", experiment.get("rollbacks") or []),
    ):
        for activity in activities:
            provider = activity.get("provider") or {}
            if provider.get("type") != "python" or provider.get("module") not in _MODULES:
                continue
            arguments = substitute(provider.get("arguments") or {}, config, None) or {}
            where = f"{phase} {activity.get('type', 'activity')} {activity.get('name')!r}"
            try:
                _check_arguments(arguments)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None


def _check_configuration(experiment: dict[str, Any]) -> None:
    """Environment values that do not convert to their `env_var_type`, named (chaoslib would
    stop on a bare ValueError)."""
    from chaoslib import convert_to_type

    config = experiment.get("configuration") or {}
    if not isinstance(config, dict):
        raise ConfigError("configuration must be a mapping of keys to values")
    for key, spec in config.items():
        if not (isinstance(spec, dict) and spec.get("type") == "env" and spec.get("env_var_type")):
            continue
        raw = os.environ.get(str(spec.get("key")), spec.get("default"))
        try:
            convert_to_type(spec["env_var_type"], raw)
        except (TypeError, ValueError, AttributeError):
            source = (
                f"environment variable {spec.get('key')}"
                if spec.get("key") in os.environ
                else "default"
            )
            raise ConfigError(
                f"configuration key {key!r}: {source} {raw!r} is not a {spec['env_var_type']}"
            ) from None


def _check_arguments(arguments: dict[str, Any]) -> None:
    for name, value in arguments.items():
        if name == "service":
            service_name(value)
        elif name == "services":
            for item in value or []:
                service_name(item)
        elif name == "count" or name == "attempts":
            number(value, name, minimum=1)
        elif name == "fraction":
            number(value, name, minimum=0.01, maximum=0.99)
        elif name.endswith(("_s", "_ms")) or name in ("fill_mb", "replicas"):
            number(value, name, minimum=0)
        elif name == "signal":
            actions._signal(value)
        elif name == "mode" and value not in ("lower", "fill"):
            raise ConfigError(f"argument mode={value!r} is not one of: lower, fill")
    if "flap_paused_ms" in arguments or "flap_every_ms" in arguments:
        ambiguous.flap_cycle(arguments.get("flap_paused_ms", 0), arguments.get("flap_every_ms", 0))


def _with_control(experiment: dict[str, Any]) -> dict[str, Any]:
    """Make sure the sagaquake control follows the run (the harness's files all declare it)."""
    controls = experiment.setdefault("controls", [])
    if not any((c.get("provider") or {}).get("module") == CONTROL_MODULE for c in controls):
        controls.append({"name": "sagaquake", "provider": {"type": "python", "module": CONTROL_MODULE}})  # fmt: skip
    return experiment


def run_experiment_file(
    path: str | Path,
    run_dir: str | Path | None = None,
    platform_kind: str = "local",
    extra_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one experiment (a file, or a name in scenarios/chaos) against the running stack of
    `platform_kind`, recording into `run_dir` (default: the stack's run folder), with
    `extra_config` overriding its configuration. Returns the journal, also saved as
    `<run_dir>/chaos/<name>.journal.json`. Raises ConfigError for a bad file or key."""
    source = resolve_experiment(path)
    experiment = load_experiment_file(source)
    name = source.stem
    declared = experiment.setdefault("configuration", {})
    overrides = {k: v for k, v in (extra_config or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(declared) - set(CONFIG_KEYS.values()))
    if unknown:
        raise ConfigError(
            f"experiment {str(source)!r} has no configuration key {unknown[0]!r}; "
            f"it knows: {', '.join(sorted(declared))}"
        )
    try:
        check_experiment(experiment, overrides)
        if overrides.get(CONFIG_KEYS["compress"]) not in (None, ""):
            number(overrides[CONFIG_KEYS["compress"]], CONFIG_KEYS["compress"], minimum=0.001)
    except (ConfigError, ChaosException) as exc:
        raise ConfigError(f"experiment {str(source)!r} is invalid: {_one_line(exc)}") from None
    platform = platform_for(platform_kind)
    folder = Path(run_dir or platform.run_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    ensure_faults_file(folder)
    declared.update(
        {
            CONFIG_KEYS["platform"]: platform_kind,
            CONFIG_KEYS["run_dir"]: str(folder),
            CONFIG_KEYS["experiment"]: name,
        }
    )
    declared.setdefault(
        CONFIG_KEYS["compress"],
        {"type": "env", "key": "SAGAQUAKE_COMPRESS", "default": ""},
    )
    settings = {"runtime": {"rollbacks": {"strategy": "always"}, "hypothesis": {"strategy": "default"}}}  # fmt: skip
    handler = _log_to(journal_path(folder, name).with_suffix("").with_suffix(".log"))
    try:
        journal = run_experiment(
            _with_control(copy.deepcopy(experiment)),
            settings=settings,
            experiment_vars=(dict(overrides), {}),
            strategy=Strategy.DEFAULT,
        )
    finally:
        logger.removeHandler(handler)
        handler.close()
    save_journal(journal, journal_path(folder, name))
    return dict(journal)


def _log_to(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


# -- the command ------------------------------------------------------------------------------


def add_chaos_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of `sagaquake chaos`; each default comes from its SAGAQUAKE_* variable."""
    parser.add_argument(
        "experiment",
        nargs="?",
        help=f"an experiment file, or a name in scenarios/chaos ({', '.join(list_experiments())})",
    )
    parser.add_argument(
        "--platform",
        default=env_text("SAGAQUAKE_PLATFORM") or "local",
        choices=["local", "k8s"],
        help="the platform the stack runs on [env SAGAQUAKE_PLATFORM]",
    )
    parser.add_argument(
        "--run-dir",
        default=env_text("SAGAQUAKE_RUN_DIR"),
        help="run folder for the journal and fault windows; default the stack's own [env SAGAQUAKE_RUN_DIR]",
    )
    parser.add_argument(
        "--compress",
        default=env_text("SAGAQUAKE_COMPRESS"),
        help="production seconds per wall second for fault durations; default run.json's, else 1 "
        "[env SAGAQUAKE_COMPRESS]",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a configuration key of the experiment (repeatable)",
    )
    parser.add_argument(
        "--validate", action="store_true", help="only check the experiment file, run nothing"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the experiments of scenarios/chaos"
    )
    return parser


def _vars(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {pair!r} is not KEY=VALUE")
        out[key.strip()] = value
    return out


def chaos_command(args: argparse.Namespace, out: Any = None) -> int:
    """`sagaquake chaos`: run (or validate, or list) an experiment; return the exit code."""
    out = out or sys.stdout
    if args.list or not args.experiment:
        for name in list_experiments():
            print(name, file=out)
        return 0 if args.list else 2
    source = resolve_experiment(args.experiment)
    if args.validate:
        load_experiment_file(source)
        print(f"{source}: valid", file=out)
        return 0
    extra = _vars(args.var)
    if args.compress:
        extra[CONFIG_KEYS["compress"]] = args.compress
    console = logging.StreamHandler(out)
    console.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    console.setLevel(logging.INFO)
    logger.addHandler(console)
    try:
        journal = run_experiment_file(source, args.run_dir, args.platform, extra)
    finally:
        logger.removeHandler(console)
    return _report(journal, out)


def _report(journal: dict[str, Any], out: Any) -> int:
    extra = journal.get("sagaquake") or {}
    status, deviated = journal.get("status"), bool(journal.get("deviated"))
    print(f"experiment {extra.get('experiment')}: {status}{' (deviated)' if deviated else ''}", file=out)  # fmt: skip
    for fault in extra.get("faults") or []:
        span = (fault.get("ended_at") or 0) - (fault.get("started_at") or 0)
        landed = "landed" if fault.get("landed") else "NOT landed"
        print(f"  fault {fault['action']} on {fault['target']}: {landed}, {span:.1f} s", file=out)
    if extra.get("not_run"):
        before = (journal.get("steady_states") or {}).get("before") or {}
        off = [
            p["activity"]["name"] for p in before.get("probes", []) if not p.get("tolerance_met")
        ]
        print(f"  not run: {extra['not_run']} ({', '.join(off)})", file=out)
    fired = (extra.get("safeguard") or {}).get("fired")
    if fired:
        print(f"  safeguard aborted it: {fired['reason']}", file=out)
    for failure in (extra.get("failed_actions") or []) + (extra.get("failed_rollbacks") or []):
        print(f"  failed: {failure}", file=out)
    if extra.get("run_dir"):
        path = journal_path(Path(extra["run_dir"]), str(extra.get("experiment")))
        print(f"  journal {path}", file=out)
    if status == "interrupted":
        return 130
    return 0 if status == "completed" and not deviated else 1


def register(sub: Any, commands: dict[str, Any]) -> None:
    """Add `sagaquake chaos` to the CLI's sub-parsers (the shape harness/cli.py's
    `_extensions()` returns)."""
    parser = sub.add_parser(
        "chaos", help="run a Chaos Toolkit experiment against the stack (scenarios/chaos)"
    )
    add_chaos_arguments(parser)
    commands["chaos"] = chaos_command


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.chaos.runner`: the same command, until harness/cli.py wires it."""
    parser = add_chaos_arguments(argparse.ArgumentParser(prog="sagaquake chaos"))
    try:
        return chaos_command(parser.parse_args(argv))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
