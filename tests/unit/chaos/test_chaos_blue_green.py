"""The blue/green deploy's decisions, with a fake platform: what is refused before anything
starts, when the new side is abandoned, how an interrupted deploy is finished or abandoned, and
that the drain waits for the old version's pinned sagas. The real thing runs in
tests/integration/chaos/test_versioned_deploy.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.chaos import blue_green, context, deploy
from harness.chaos.deploy import DEPLOYMENT_ENV, VERSION_ENV
from harness.chaos.faults import FaultNotLanded
from harness.errors import ConfigError
from harness.platforms.base import DeployEvidence, Endpoints

pytestmark = pytest.mark.unit

ENDPOINTS = Endpoints(
    order_api="http://127.0.0.1:1",
    payment_api="http://127.0.0.1:2",
    inventory_api="http://127.0.0.1:3",
    notification_api="http://127.0.0.1:4",
    redis_url="redis://127.0.0.1:5/0",
    temporal_address="127.0.0.1:6",
    temporal_ui="http://127.0.0.1:7",
)


class FakePlatform:
    """Deploy and SideBySide over a dict, recording the calls."""

    name = "fake"

    def __init__(self, run_dir: Path, deployed: dict[str, str], ready: bool = True) -> None:
        self.run_dir = run_dir
        self.deployed = dict(deployed)
        self.pending: dict[str, Any] | None = None
        self.ready = ready
        self.calls: list[tuple[str, dict[str, str]]] = []

    def endpoints(self) -> Endpoints:
        return ENDPOINTS

    def unsupported(self, fault: str) -> str | None:
        return None

    def deploy(
        self, service: str, env: dict[str, str], wait_s: float = 120
    ) -> list[DeployEvidence]:
        self.calls.append(("deploy", env))
        return []

    def deployed_env(self, service: str) -> dict[str, str]:
        return dict(self.deployed)

    def add_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120
    ) -> list[DeployEvidence]:
        self.calls.append(("add", env))
        self.pending = {"size": 2, "env": env}
        new = "4242" if self.ready else None
        return [DeployEvidence("saga-worker_02", "", new, env, 1.0, 2.0 if new else None)]

    def retire_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120
    ) -> list[DeployEvidence]:
        self.calls.append(("retire", env))
        self.pending = None
        self.deployed.update(env)
        return []

    def side_by_side(self, service: str) -> dict[str, Any] | None:
        return self.pending


def _config(tmp_path: Path) -> dict[str, str]:
    return {"sagaquake_run_dir": str(tmp_path), "sagaquake_experiment": "versioned-deploy"}


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePlatform:
    fake = FakePlatform(tmp_path, {VERSION_ENV: "1"})
    monkeypatch.setattr(context, "platform_for", lambda kind: fake)
    return fake


def test_a_rolling_deploy_refuses_versioned_workers(platform: FakePlatform, tmp_path: Path) -> None:
    platform.deployed[DEPLOYMENT_ENV] = "sagaquake-saga"
    for action in (deploy.rolling_deploy, deploy.roll_back_deploy):
        with pytest.raises(ConfigError, match="versioned workers of Worker Deployment 'sagaquake-saga'"):  # fmt: skip
            action(configuration=_config(tmp_path))
    assert platform.calls == []


def test_a_platform_without_side_by_side_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    class RollingOnly:
        name = "k8s"
        run_dir = tmp_path

        def unsupported(self, fault: str) -> str | None:
            return "the Temporal Worker Controller's job" if fault == "side_by_side" else None

    monkeypatch.setattr(context, "platform_for", lambda kind: RollingOnly())
    with pytest.raises(ConfigError, match="cannot run a blue/green deploy: the Temporal Worker"):
        blue_green.versioned_deploy(configuration=_config(tmp_path))


@pytest.mark.parametrize("name", ["", "-x", "has space", "a" * 101, "quote'd"])
def test_a_bad_deployment_name_is_refused(platform: FakePlatform, tmp_path: Path, name: str) -> None:  # fmt: skip
    with pytest.raises(ConfigError, match="is not a Worker Deployment name"):
        blue_green.versioned_deploy(deployment=name, configuration=_config(tmp_path))
    assert platform.calls == []


def test_a_deploy_left_in_progress_is_refused(platform: FakePlatform, tmp_path: Path) -> None:
    platform.pending = {"size": 2, "env": {VERSION_ENV: "2"}}
    with pytest.raises(FaultNotLanded, match="still in progress"):
        blue_green.versioned_deploy(configuration=_config(tmp_path))
    assert platform.calls == []


def test_a_new_side_that_never_gets_ready_is_abandoned_before_any_switch(
    platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    switched: list[str] = []

    def switch(endpoints: Endpoints, deployment: str, build: str, wait_s: float) -> dict:
        switched.append(build)
        return {"at": 1.0}

    monkeypatch.setattr(blue_green, "_set_current", switch)
    platform.ready = False
    step = blue_green._Step(platform, ENDPOINTS, "saga-worker", "dep", 1.0, 1.0)
    evidence: dict[str, Any] = {}
    new = {VERSION_ENV: "2", DEPLOYMENT_ENV: "dep"}
    with pytest.raises(FaultNotLanded, match="abandoned: saga-worker_02 did not come up ready"):
        step.run(evidence, "deploy", new, 2, "saga-v1")
    # the old side's setting wins: the added replicas go, nothing was switched
    assert platform.calls == [("add", new), ("retire", {VERSION_ENV: "1"})]
    assert switched == [] and evidence["deploy"]["abandoned"] is True


def test_the_drain_waits_for_the_old_versions_pinned_sagas(
    platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = iter([3, 1, 0])
    asked: list[str] = []

    def pinned(endpoints: Endpoints, deployment: str, build: str) -> int:
        asked.append(f"{deployment}:{build}")
        return next(left)

    monkeypatch.setattr(blue_green, "_pinned_running", pinned)
    monkeypatch.setattr(blue_green.time, "sleep", lambda s: None)
    step = blue_green._Step(platform, ENDPOINTS, "saga-worker", "dep", 1.0, 60.0)
    drained = step._drain("saga-v1")
    assert drained["pinned_at_switch"] == 3 and asked == ["dep:saga-v1"] * 3
    monkeypatch.setattr(blue_green, "_pinned_running", lambda *a: 2)
    stuck = blue_green._Step(platform, ENDPOINTS, "saga-worker", "dep", 1.0, 0.0)
    with pytest.raises(FaultNotLanded, match="2 sagas pinned to dep:saga-v1 were still running"):
        stuck._drain("saga-v1")


@pytest.mark.parametrize(
    ("current", "finished"),
    [("saga-v2", True), ("saga-v1", False), (None, False)],
)
def test_an_interrupted_deploy_is_finished_only_when_temporal_routes_to_its_new_side(
    platform: FakePlatform, monkeypatch: pytest.MonkeyPatch, current: str | None, finished: bool
) -> None:
    old = {VERSION_ENV: "1", DEPLOYMENT_ENV: "dep"}
    new = {VERSION_ENV: "2", DEPLOYMENT_ENV: "dep"}
    platform.deployed = dict(old)
    platform.pending = {"size": 2, "env": new}
    monkeypatch.setattr(blue_green, "_current_version", lambda *a: current)
    monkeypatch.setattr(blue_green, "_pinned_running", lambda *a: 0)
    step = blue_green._Step(platform, ENDPOINTS, "saga-worker", "dep", 1.0, 1.0)
    out = step.end_interrupted(platform.pending)
    assert platform.calls == [("retire", new if finished else old)]
    assert ("drain" in out) is finished and out.get("abandoned", False) is not finished
