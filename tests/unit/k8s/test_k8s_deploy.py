"""The Kubernetes side of a rolling deploy (harness/platforms/kubernetes/deploy.py) against a fake
Deployment that rolls one pod at a time: the patch it sends, the pairing of old and new pods with
their times, what it remembers, and what it refuses. Real behaviour needs a cluster (tests/k8s)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import PlatformError
from harness.platforms.kubernetes.deploy import deploy, deployed_env, env_patch
from harness.platforms.kubernetes.pods import PodInfo

pytestmark = pytest.mark.unit


def pod(name: str, uid: str, ready: bool = True, terminating: bool = False) -> PodInfo:
    return PodInfo(name, uid, "saga-worker", "Running", ready, terminating, 0, 0.0, 0.0, None)


class RollingDeployment:
    """Two pods replaced one at a time after a patch; each `pods()` call is one step."""

    STEPS = [
        [pod("w-a", "a"), pod("w-b", "b")],
        [pod("w-a", "a"), pod("w-b", "b"), pod("w-c", "c", ready=False)],
        [pod("w-a", "a", terminating=True), pod("w-b", "b"), pod("w-c", "c")],
        [pod("w-b", "b"), pod("w-c", "c"), pod("w-d", "d", ready=False)],
        [pod("w-b", "b", terminating=True), pod("w-c", "c"), pod("w-d", "d")],
        [pod("w-c", "c"), pod("w-d", "d")],
    ]

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env or {"SAGAQUAKE_HEALTH_PORT": "8081"})
        self.patches: list[dict[str, Any]] = []
        self.step = 0
        self.state: dict[str, Any] = {}
        self.t = 1000.0

    # what KubernetesPlatform offers k8s_deploy
    namespace = "sagaquake"

    def _workload(self, service: str) -> tuple[str, str]:
        return ("StatefulSet", service) if service == "redis" else ("Deployment", service)

    @property
    def clients(self) -> Any:
        return SimpleNamespace(
            apps=SimpleNamespace(
                read_namespaced_deployment=self._read, patch_namespaced_deployment=self._patch
            )
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def _read(self, name: str, ns: str) -> Any:
        """A V1Deployment's shape, plus `status`: what `rollout_done` reads, as a dict."""
        done = not self.patches or self.step >= len(self.STEPS) - 1
        env = [SimpleNamespace(name=k, value=v) for k, v in self.env.items()]
        container = SimpleNamespace(name="saga-worker", env=env)
        template = SimpleNamespace(spec=SimpleNamespace(containers=[container]))
        status = {
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 2,
                "replicas": 2,
                "updatedReplicas": 2 if done else 1,
                "readyReplicas": 2,
            },
        }
        return SimpleNamespace(spec=SimpleNamespace(replicas=2, template=template), status=status)

    def _patch(self, name: str, ns: str, body: dict[str, Any]) -> None:
        self.patches.append(body)
        for item in body["spec"]["template"]["spec"]["containers"][0]["env"]:
            self.env[item["name"]] = item["value"]

    def _pods(self, service: str) -> list[PodInfo]:
        pods = self.STEPS[min(self.step, len(self.STEPS) - 1)]
        if self.patches:
            self.step += 1
        return list(pods)

    def _state(self) -> dict[str, Any]:
        return dict(self.state)

    def _save_state(self, state: dict[str, Any]) -> None:
        self.state = state

    def _clock(self) -> float:
        return self.t

    def _sleep(self, s: float) -> None:
        self.t += s


@pytest.fixture(autouse=True)
def serialized(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake's deployment is already a dict for `rollout_done`."""
    import harness.platforms.kubernetes.deploy as k8s_deploy

    monkeypatch.setattr(
        k8s_deploy,
        "_serialized",
        lambda platform, name: {**platform._read(name, "").status, "kind": "Deployment"},
    )


def test_the_patch_merges_the_container_env_by_name() -> None:
    assert env_patch("saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"}) == {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "saga-worker",
                            "env": [{"name": "SAGAQUAKE_SAGA_VERSION", "value": "2"}],
                        }
                    ]
                }
            }
        }
    }


def test_a_rollout_pairs_each_old_pod_with_its_replacement() -> None:
    fake = RollingDeployment()
    replaced = deploy(fake, "saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"}, wait_s=60)
    assert fake.patches == [env_patch("saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"})]
    assert [(e.old_uid, e.new_uid, e.extra["pod"], e.extra["old_pod"]) for e in replaced] == [
        ("a", "c", "w-c", "w-a"),
        ("b", "d", "w-d", "w-b"),
    ]
    assert all(e.landed and e.env == {"SAGAQUAKE_SAGA_VERSION": "2"} for e in replaced)
    assert replaced[0].stopped_at <= replaced[1].stopped_at
    assert deployed_env(fake, "saga-worker") == {"SAGAQUAKE_SAGA_VERSION": "2"}
    # the same environment again: nothing to roll
    assert deploy(fake, "saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"}) == []
    assert len(fake.patches) == 1


def test_a_statefulset_is_refused() -> None:
    with pytest.raises(PlatformError, match=r"'redis' is a StatefulSet: only a Deployment"):
        deploy(RollingDeployment(), "redis", {"X": "1"})


def test_a_rollout_that_never_finishes_says_what_it_waits_for() -> None:
    fake = RollingDeployment()
    fake.STEPS = [[pod("w-a", "a"), pod("w-b", "b")]]  # nothing ever changes
    with pytest.raises(PlatformError, match=r"the rollout did not finish within 20 s"):
        deploy(fake, "saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"}, wait_s=10)


def test_the_kubernetes_platform_is_a_deploy_platform(tmp_path) -> None:
    from harness.platforms.base import Deploy
    from harness.platforms.kubernetes.platform import KubernetesPlatform

    assert isinstance(KubernetesPlatform(tmp_path), Deploy)
