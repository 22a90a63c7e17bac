"""The actions and rollbacks only speak the Platform protocol, so they work on Kubernetes too:
here against an in-memory platform that behaves like pods (uids instead of pids, new names for
replacements, `Running` phases, no pod at all when scaled to 0)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from harness.chaos import actions, context, rollbacks
from harness.chaos.faults import FaultNotLanded, read_faults
from harness.platforms.base import Endpoints, KillEvidence, ReplicaStatus

pytestmark = pytest.mark.unit

_uids = (f"{n:08x}-pod" for n in itertools.count(1))


class PodPlatform:
    """Pods by service; a kill or restart replaces the pod with a new name and uid."""

    name = "k8s"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.desired = {"payment-service": 2, "temporal": 1, "redis": 1, "projection": 1}
        self.pods: dict[str, list[tuple[str, str]]] = {s: [] for s in self.desired}
        for service, n in self.desired.items():
            for _ in range(n):
                self._add(service)
        self.stuck = False  # a killed pod never comes back

    def _add(self, service: str) -> None:
        uid = next(_uids)
        self.pods[service].append((f"{service}-{uid[:8]}", uid))

    def is_up(self) -> bool:
        return True

    def status(self) -> list[ReplicaStatus]:
        return [
            ReplicaStatus(service, name, None, uid, "Running", 10.0, 0, True)
            for service, pods in self.pods.items()
            for name, uid in pods
        ]

    def endpoints(self) -> Endpoints:
        closed = "http://127.0.0.1:1"
        return Endpoints(closed, closed, closed, closed, "redis://127.0.0.1:1/0", "x:1", closed)

    def kill(self, service: str, count: int = 1, signal: str = "KILL", wait_s: float = 30):  # type: ignore[no-untyped-def]
        victims = random.sample(self.pods[service], min(count, len(self.pods[service])))
        evidence = []
        for name, uid in victims:
            self.pods[service].remove((name, uid))
            if not self.stuck:
                self._add(service)
            new = None if self.stuck else self.pods[service][-1][1]
            evidence.append(KillEvidence(name, uid, new, signal, 0, 0, {"new_pod": new}))
        return evidence

    def stop(self, service: str) -> None:
        self.pods[service] = []

    def start(self, service: str, wait_s: float = 60) -> None:
        while len(self.pods[service]) < self.desired[service]:
            self._add(service)

    def restart(self, service: str, wait_s: float = 60) -> None:
        self.kill(service, len(self.pods[service]), "TERM", wait_s)

    def wait_ready(self, services: Any = (), timeout_s: float = 60) -> None:
        pass

    def redis(self, *command: str) -> Any:
        raise AssertionError("no redis here")


@pytest.fixture
def pods(tmp_path, monkeypatch) -> tuple[PodPlatform, dict[str, str]]:
    platform = PodPlatform(tmp_path)
    monkeypatch.setitem(context._PLATFORMS, "k8s", platform)
    config = {"sagaquake_platform": "k8s", "sagaquake_run_dir": str(tmp_path),
              "sagaquake_experiment": "pods", "sagaquake_compress": "1"}  # fmt: skip
    return platform, config


def test_a_pod_kill_is_proven_by_a_new_pod_uid(pods) -> None:
    platform, config = pods
    window = actions.kill_replicas("payment-service", count=2, configuration=config)
    assert window["landed"] is True
    killed = window["evidence"]["killed"]
    assert len(killed) == 2 and all(k["new_uid"] != k["old_uid"] for k in killed)
    assert "old_pid" not in killed[0]  # a pod uid is not a pid
    assert read_faults(platform.run_dir) == [window]


def test_a_pod_that_never_comes_back_is_not_a_landed_kill(pods) -> None:
    platform, config = pods
    platform.stuck = True
    with pytest.raises(FaultNotLanded, match=r"did not come back as a new incarnation"):
        actions.kill_replicas("projection", configuration=config)
    (window,) = read_faults(platform.run_dir)
    assert window["landed"] is False
    platform.stuck = False
    assert rollbacks.ensure_stack_ready(["projection"], configuration=config)["started"] == [
        "projection"
    ]
    assert len(platform.pods["projection"]) == 1


def test_an_outage_scales_to_nothing_and_back_with_new_pods(pods) -> None:
    _, config = pods
    window = actions.outage("payment-service", duration_s=0, configuration=config)
    evidence = window["evidence"]
    assert window["landed"] is True and evidence["down"]["running_replicas"] == 0
    assert "no answer from http://127.0.0.1:1/healthz" in evidence["down"]["http"]
    before = {r["uid"] for r in evidence["replicas_before"]}
    after = {r["uid"] for r in evidence["replicas_after"]}
    assert len(after) == 2 and not before & after


def test_a_restart_replaces_every_pod(pods) -> None:
    _, config = pods
    window = actions.restart_service("projection", configuration=config)
    evidence = window["evidence"]
    assert window["landed"] is True
    assert evidence["replicas_before"][0]["uid"] != evidence["replicas_after"][0]["uid"]
    assert evidence["restarts"] == {}  # a Deployment's new pod has a new name: nothing to compare


def test_the_rollback_starts_a_service_scaled_to_zero(pods) -> None:
    platform, config = pods
    platform.stop("payment-service")
    done = rollbacks.start_service("payment-service", configuration=config)
    assert done["ready"] is True and len(platform.pods["payment-service"]) == 2
