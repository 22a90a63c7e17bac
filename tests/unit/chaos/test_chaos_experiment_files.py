"""The experiment files of scenarios/chaos pass `chaos validate` and sagaquake's own checks and
keep the house rules; an invalid file is rejected before anything runs, with a message naming
the file and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.chaos.control import primitives_needed
from harness.chaos.runner import (
    EXPERIMENTS_DIR,
    list_experiments,
    load_experiment_file,
    resolve_experiment,
    run_experiment_file,
)
from harness.errors import ConfigError

pytestmark = pytest.mark.unit

EXPECTED = [
    "inventory-lost-replies",
    "kill-inventory-mid-request",
    "kill-notification-mid-request",
    "kill-order-service-mid-request",
    "kill-payment-pods",
    "kill-projection-mid-request",
    "kill-saga-workers",
    "notification-lost-replies",
    "notification-outage",
    "payment-hang",
    "payment-lost-replies",
    "payment-outage",
    "projection-consumer-lost",
    "redis-lost-replies",
    "redis-memory-exhaustion",
    "redis-partition",
    "redis-restart",
    "reprocess-under-chaos",
    "rolling-deploy",
    "slow-redis",
    "temporal-outage",
    "temporal-partition",
    "temporal-restart",
    "versioned-deploy",
]
ACTION_MODULES = (
    "harness.chaos.actions",
    "harness.chaos.ambiguous",
    "harness.chaos.blue_green",
    "harness.chaos.deploy",
    "harness.chaos.midrequest",
    "harness.chaos.reprocess",
)
CHAOS = Path(sys.executable).parent / "chaos"
# a frozen process, a network rule, workers beside workers: the rollbacks that undo each
UNDO = {
    "pause": {"resume_services", "heal_network"},
    "partition": {"heal_network"},
    "reply_loss": {"heal_network"},
    "side_by_side": {"roll_back_versioned_deploy"},
}


def test_every_mission_and_incident_experiment_is_there() -> None:
    assert list_experiments() == EXPECTED


def test_chaos_validate_accepts_every_experiment(tmp_path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}  # no user settings file
    procs = {
        name: subprocess.Popen(
            [
                str(CHAOS),
                "--no-version-check",
                "--no-log-file",
                "validate",
                str(EXPERIMENTS_DIR / f"{name}.yaml"),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in EXPECTED
    }
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}:\n{out}"
        assert "experiment syntax and semantic look valid" in out, out


@pytest.mark.parametrize("name", EXPECTED)
def test_every_experiment_keeps_the_house_rules(name: str) -> None:
    experiment = load_experiment_file(resolve_experiment(name))
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"
    assert experiment["tags"] and experiment["contributions"]
    config = experiment["configuration"]
    assert config["sagaquake_experiment"] == name
    for key, value in config.items():
        if key != "sagaquake_experiment":
            assert value["type"] == "env" and "default" in value, key
            assert value["key"].startswith("SAGAQUAKE_"), key
    (control,) = experiment["controls"]
    assert control["provider"]["module"] == "harness.chaos.control"
    assert control["provider"]["arguments"]["safeguard"]["limits"]
    assert experiment["steady-state-hypothesis"]["probes"]
    assert experiment["rollbacks"], "every experiment puts the stack back"
    actions = [a for a in experiment["method"] if a["type"] == "action"]
    assert actions and all(a["provider"]["module"] in ACTION_MODULES for a in actions)
    rollbacks = {r["provider"]["func"] for r in experiment["rollbacks"]}
    assert "ensure_stack_ready" in rollbacks, "the last safety net: every service up and ready"
    for primitive in primitives_needed(experiment):  # each kind of fault has its own undo
        assert rollbacks & UNDO[primitive], (primitive, rollbacks)


def write(tmp_path: Path, experiment: dict, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(experiment))
    return path


def base() -> dict:
    return yaml.safe_load((EXPERIMENTS_DIR / "payment-outage.yaml").read_text())


def test_a_missing_method_is_named(tmp_path) -> None:
    experiment = base()
    del experiment["method"]
    path = write(tmp_path, experiment)
    with pytest.raises(ConfigError, match=rf"experiment '{path}' is invalid: an experiment requires a method"):  # fmt: skip
        load_experiment_file(path)


def test_a_function_the_extension_does_not_have_is_named(tmp_path) -> None:
    experiment = base()
    experiment["method"][0]["provider"]["func"] = "kill_everything"
    with pytest.raises(
        ConfigError,
        match=r"does not expose a function called 'kill_everything' in action 'payment-outage'",
    ):
        load_experiment_file(write(tmp_path, experiment))


def test_an_argument_the_action_does_not_take_is_named(tmp_path) -> None:
    experiment = base()
    experiment["method"][0]["provider"]["arguments"]["duration"] = 5
    with pytest.raises(
        ConfigError,
        match=r"argument 'duration' is not part of the function signature in activity 'outage'",
    ):
        load_experiment_file(write(tmp_path, experiment))


def test_an_unknown_service_is_named_with_the_activity(tmp_path) -> None:
    experiment = base()
    experiment["method"][0]["provider"]["arguments"]["service"] = "paymnt-service"
    with pytest.raises(
        ConfigError,
        match=r"is invalid: method action 'payment-outage': unknown service 'paymnt-service'",
    ):
        load_experiment_file(write(tmp_path, experiment))


def test_a_bad_value_from_the_configuration_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAGAQUAKE_CHAOS_OUTAGE_S", "ten minutes")
    with pytest.raises(
        ConfigError,
        match=r"configuration key 'outage_s': environment variable SAGAQUAKE_CHAOS_OUTAGE_S 'ten minutes' is not a float",
    ):
        load_experiment_file(resolve_experiment("payment-outage"))
    experiment = base()
    experiment["configuration"]["outage_s"] = -5
    with pytest.raises(ConfigError, match=r"argument duration_s=-5 is not a number of 0 or more"):
        load_experiment_file(write(tmp_path, experiment))


def test_a_bad_safeguard_is_named(tmp_path) -> None:
    experiment = base()
    experiment["controls"][0]["provider"]["arguments"]["safeguard"]["limits"][0]["probe"] = "sla"
    with pytest.raises(ConfigError, match=r"safeguard limits\[0\].probe 'sla' is not a probe"):
        load_experiment_file(write(tmp_path, experiment))


def test_yaml_that_does_not_parse_is_named(tmp_path) -> None:
    path = tmp_path / "torn.yaml"
    path.write_text("title: x\nmethod: [\n")
    with pytest.raises(ConfigError, match=rf"cannot load experiment '{path}': Failed parsing YAML"):
        load_experiment_file(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"is not a mapping with title, description and method"):
        load_experiment_file(path)


def test_an_unknown_experiment_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no experiment 'kill-everything'.*kill-payment-pods"):
        resolve_experiment("kill-everything")


def test_an_unknown_configuration_override_is_named_before_touching_a_stack() -> None:
    with pytest.raises(ConfigError, match=r"has no configuration key 'outage_minutes'"):
        run_experiment_file("payment-outage", extra_config={"outage_minutes": 10})
