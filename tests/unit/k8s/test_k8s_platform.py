"""The Kubernetes platform's decisions, at the `Clients` seam (tests/unit/k8s/k8s_fakes.py):
which pods a kill picks, what confirms a new incarnation, what stop/start remember, which calls
run as the chaos identity, and what those calls need from RBAC. Real behaviour: tests/k8s."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from k8s_fakes import STACK, ApiError, FakeCluster, FakeCoreV1Api, fake_clients, permissions
from kubernetes import client as k8s

from harness.errors import ConfigError, PlatformError
from harness.platforms.base import SERVICES, Platform
from harness.platforms.kubernetes.api import CHAOS_USER
from harness.platforms.kubernetes.checks import (
    ALWAYS_GRANTED,
    CHAOS_PERMISSIONS,
    CHAOSK8S_PERMISSIONS,
    role_permissions,
)
from harness.platforms.kubernetes.manifests import render_overlay
from harness.platforms.kubernetes.platform import KubernetesPlatform
from harness.platforms.kubernetes.pods import (
    PodInfo,
    choose_victims,
    grace_for_signal,
    match_replacements,
    node_host,
    overlay_for_context,
    pod_info,
    replicas_to_start,
    rollout_done,
)

pytestmark = pytest.mark.unit


def make(
    tmp_path: Path, cluster: FakeCluster | None = None, **kwargs: Any
) -> tuple[KubernetesPlatform, FakeCluster]:
    cluster = cluster or FakeCluster(dict(STACK))
    platform = KubernetesPlatform(
        tmp_path,
        clients=fake_clients(cluster),
        rng=random.Random(7),
        clock=cluster.clock,
        sleep=cluster.sleep,
        reachable=kwargs.pop("reachable", lambda host, port: True),
        **kwargs,
    )
    return platform, cluster


def chaos_permissions(cluster: FakeCluster) -> set[tuple[str, str, str]]:
    """What the chaos identity's calls needed, beyond what every identity may do."""
    return {
        p for who, m in cluster.calls if who == "chaos" for p in permissions(m)
    } - ALWAYS_GRANTED


# -- the protocol ------------------------------------------------------------------------------


def test_it_is_a_platform(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    assert isinstance(platform, Platform)
    assert platform.name == "k8s"


# -- kill ------------------------------------------------------------------------------------------


def test_kill_deletes_with_grace_zero_and_confirms_a_new_uid(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    others = {p.uid for p in cluster.pods.values() if p.service != "payment-service"}
    before = {p.uid for p in cluster.live("payment-service")}
    [evidence] = platform.kill("payment-service", 1, "KILL", wait_s=30)
    assert evidence.landed
    assert evidence.old_uid in before and evidence.new_uid not in before
    assert evidence.extra["grace_period_s"] == 0 and evidence.extra["old_pod_gone"]
    assert cluster.last_grace == 0
    now = {p.uid for p in cluster.live("payment-service")}
    assert evidence.old_uid not in now and evidence.new_uid in now and len(now) == 2
    assert {p.uid for p in cluster.pods.values() if p.service != "payment-service"} == others


def test_kill_only_picks_live_pods_of_the_service_and_never_more_than_asked() -> None:
    pods = [
        PodInfo(
            "payment-service-a", "u1", "payment-service", "Running", True, False, 0, 1.0, 1.0, None
        ),
        PodInfo(
            "payment-service-b", "u2", "payment-service", "Running", True, True, 0, 1.0, 1.0, None
        ),
        PodInfo(
            "payment-service-c", "u3", "payment-service", "Running", True, False, 0, 1.0, 1.0, None
        ),
        PodInfo(
            "order-service-a", "u4", "order-service", "Running", True, False, 0, 1.0, 1.0, None
        ),
    ]
    for seed in range(20):
        chosen = choose_victims(pods, "payment-service", 1, random.Random(seed))
        assert len(chosen) == 1 and chosen[0].uid in ("u1", "u3")
    assert {p.uid for p in choose_victims(pods, "payment-service", 2, random.Random(1))} == {
        "u1",
        "u3",
    }
    # more than run: every live one, as the local platform does
    assert {p.uid for p in choose_victims(pods, "payment-service", 3, random.Random(1))} == {
        "u1",
        "u3",
    }
    with pytest.raises(PlatformError, match="no running pod of 'inventory-service' to kill"):
        choose_victims(pods, "inventory-service", 1, random.Random(1))


def test_kill_of_a_statefulset_pod_confirms_the_same_name_with_a_new_uid(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    [old] = cluster.live("redis")
    [evidence] = platform.kill("redis", 1, "KILL")
    [new] = cluster.live("redis")
    assert evidence.landed and (old.name, new.name) == ("redis-0", "redis-0")
    assert (evidence.old_uid, evidence.new_uid) == (old.uid, new.uid)
    assert evidence.extra["new_pod"] == "redis-0"


def test_kill_that_never_comes_back_is_reported_not_landed(tmp_path: Path) -> None:
    cluster = FakeCluster(dict(STACK), never_ready={"payment-service"})
    platform, _ = make(tmp_path, cluster)
    [evidence] = platform.kill("payment-service", 1, "KILL", wait_s=5)
    assert not evidence.landed and evidence.new_uid is None
    assert evidence.extra["waited_s"] >= 5


def test_kill_with_term_uses_the_pods_grace_period_and_waits_for_the_old_pod(
    tmp_path: Path,
) -> None:
    platform, cluster = make(tmp_path)
    [evidence] = platform.kill("order-service", 1, "SIGTERM", wait_s=30)
    assert cluster.last_grace is None
    assert evidence.landed and evidence.extra["old_pod_gone"]
    assert evidence.extra["waited_s"] >= cluster.grace_s  # the old pod terminated first


def test_match_replacements_waits_until_the_victim_is_gone() -> None:
    victim = PodInfo("redis-0", "old", "redis", "Running", True, False, 0, 1.0, 1.0, None)
    terminating = PodInfo("redis-0", "old", "redis", "Running", False, True, 0, 1.0, 1.0, None)
    back_unready = PodInfo("redis-0", "new", "redis", "Running", False, False, 0, 2.0, 2.0, None)
    back = PodInfo("redis-0", "new", "redis", "Running", True, False, 0, 2.0, 2.0, None)
    assert match_replacements([victim], {"old"}, [terminating], same_name=True) == {}
    assert match_replacements([victim], {"old"}, [back_unready], same_name=True) == {}
    assert match_replacements([victim], {"old"}, [back], same_name=True) == {"old": back}


@pytest.mark.parametrize(
    ("signal", "grace"), [("KILL", 0), ("SIGKILL", 0), ("TERM", None), ("term", None)]
)
def test_signals_map_to_grace_periods(signal: str, grace: int | None) -> None:
    assert grace_for_signal(signal) == grace


def test_other_signals_are_refused_with_the_alternatives(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    with pytest.raises(
        PlatformError, match="signal 'STOP' is not supported on kubernetes: use 'KILL'"
    ):
        platform.kill("payment-service", 1, "STOP")


def test_unknown_service_is_named(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    with pytest.raises(ConfigError, match="unknown service 'payments'; one of: redis, temporal"):
        platform.kill("payments")


def test_every_pod_listing_selects_by_name_and_part_of(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    selectors: list[str | None] = []
    original = FakeCoreV1Api.list_namespaced_pod

    def spy(
        self: FakeCoreV1Api, namespace: str, label_selector: str | None = None, **kw: Any
    ) -> Any:
        selectors.append(label_selector)
        return original(self, namespace, label_selector=label_selector, **kw)

    FakeCoreV1Api.list_namespaced_pod = spy
    try:
        platform.kill("payment-service")
        platform.stop("saga-worker")
        platform.start("saga-worker")
    finally:
        FakeCoreV1Api.list_namespaced_pod = original
    assert selectors
    for selector in selectors:
        assert selector and "app.kubernetes.io/part-of=sagaquake" in selector
        assert "app.kubernetes.io/name=" in selector


# -- stop, start, scale, restart --------------------------------------------------------------------


def test_stop_scales_to_zero_and_start_restores_the_remembered_count(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.stop("payment-service")
    assert cluster.replicas["payment-service"] == 0 and cluster.live("payment-service") == []
    assert not [p for p in cluster.pods.values() if p.service == "payment-service"]
    platform.stop("payment-service")  # stopping twice must not forget the 2
    # a new platform object (another process) still knows, from the run folder
    again, _ = make(tmp_path, cluster)
    again.start("payment-service")
    assert cluster.replicas["payment-service"] == 2 and len(cluster.live("payment-service")) == 2


def test_start_after_scale_brings_back_the_scaled_count(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.scale("payment-service", 3)
    assert len(cluster.live("payment-service")) == 3
    platform.stop("payment-service")
    platform.start("payment-service")
    assert cluster.replicas["payment-service"] == 3


def test_start_with_nothing_remembered_uses_the_manifests(tmp_path: Path) -> None:
    cluster = FakeCluster({**STACK, "saga-worker": ("Deployment", 0)})
    platform, _ = make(tmp_path, cluster, overlay="kind")
    platform.start("saga-worker")
    assert cluster.replicas["saga-worker"] == 2  # k8s/base/saga-worker.yaml


def test_replicas_to_start_prefers_stopped_then_desired_then_manifests() -> None:
    state = {"stopped": {"a": 3}, "desired": {"a": 2, "b": 4}}
    assert replicas_to_start("a", state, 1) == 3
    assert replicas_to_start("b", state, 1) == 4
    assert replicas_to_start("c", state, 5) == 5
    assert replicas_to_start("c", {}, None) == 1


def test_single_writers_scale_only_to_zero_or_one(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    with pytest.raises(
        PlatformError, match="'redis' has one writer on one volume: scale it to 0 or 1, not 2"
    ):
        platform.scale("redis", 2)
    with pytest.raises(PlatformError, match="replicas must be 0 or more"):
        platform.scale("payment-service", -1)


def test_restart_replaces_every_pod(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    before = {p.uid for p in cluster.live("saga-worker")}
    platform.restart("saga-worker", wait_s=60)
    after = {p.uid for p in cluster.live("saga-worker")}
    assert len(after) == 2 and not before & after


def test_a_pod_that_cannot_get_its_image_fails_fast_with_the_hint(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.stop("projection")
    cluster.waiting_reason["projection"] = "ErrImageNeverPull"
    cluster.never_ready.add("projection")
    start = cluster.now
    with pytest.raises(
        PlatformError, match=r"(?s)ErrImageNeverPull.*kind load docker-image sagaquake:dev"
    ):
        platform.start("projection", wait_s=120)
    assert cluster.now - start < 5


# -- the chaos identity and its RBAC ----------------------------------------------------------------


def test_faults_use_only_the_chaos_client_and_exactly_the_roles_permissions(tmp_path: Path) -> None:
    cluster = FakeCluster(dict(STACK), crds={"networkchaos.chaos-mesh.org"})
    platform, _ = make(tmp_path, cluster)
    for fault in ("pause", "partition", "reply_loss"):
        platform.unsupported(fault)
    # the pre-flight reads the workloads as you (shareProcessNamespace); faults never act as you
    assert {m for who, m in cluster.calls if who == "admin"} == {
        "list_namespaced_deployment",
        "list_namespaced_stateful_set",
    }
    cluster.calls[:] = [c for c in cluster.calls if c[0] == "chaos"]
    platform.partition("payment-service")
    platform.lose_replies("order-service")
    platform.heal(None)
    platform.kill("payment-service")
    platform.kill("redis")
    platform.stop("redis")
    platform.start("redis")
    platform.stop("payment-service")
    platform.start("payment-service")
    platform.scale("saga-worker", 3)
    platform.restart("projection")
    used = chaos_permissions(cluster)
    assert used == set(CHAOS_PERMISSIONS)
    role = next(d for d in render_overlay("kind") if d["kind"] == "Role")
    assert role_permissions(role) == used
    assert not [m for who, m in cluster.calls if who == "admin"], "a fault ran as the admin"


def test_chaostoolkit_terminate_pods_needs_no_more_than_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run chaostoolkit-kubernetes' own terminate_pods against the recording seam."""
    from chaosk8s.pod import actions

    cluster = FakeCluster(dict(STACK))
    monkeypatch.setattr(actions, "create_k8s_api_client", lambda secrets=None: None)
    monkeypatch.setattr(
        actions.client, "CoreV1Api", lambda api=None: FakeCoreV1Api(cluster, "chaos")
    )
    before = {p.uid for p in cluster.live("payment-service")}
    deleted = actions.terminate_pods(
        label_selector="app.kubernetes.io/name=payment-service,app.kubernetes.io/part-of=sagaquake",
        ns="sagaquake",
        qty=1,
        rand=True,
        grace_period=0,
    )
    assert len(deleted) == 1 and cluster.last_grace == 0
    assert len(before - {p.uid for p in cluster.live("payment-service")}) == 1
    used = chaos_permissions(cluster)
    assert used == set(CHAOSK8S_PERMISSIONS["chaosk8s.pod.actions.terminate_pods"])
    assert used <= set(CHAOS_PERMISSIONS)


def test_a_forbidden_call_names_the_role(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise ApiError(403, "Forbidden")

    platform.clients.chaos_core.delete_namespaced_pod = forbidden
    with pytest.raises(
        PlatformError, match=r"forbidden.*k8s/base/chaos-rbac.yaml.*SAGAQUAKE_K8S_IMPERSONATE=none"
    ):
        platform.kill("payment-service")


def test_impersonation_defaults_to_the_chaos_service_account(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SAGAQUAKE_K8S_IMPERSONATE", raising=False)
    assert (
        KubernetesPlatform(tmp_path)._impersonate
        == CHAOS_USER
        == "system:serviceaccount:sagaquake:sagaquake-chaos"
    )
    monkeypatch.setenv("SAGAQUAKE_K8S_IMPERSONATE", "none")
    assert KubernetesPlatform(tmp_path)._impersonate is None


# -- observing ------------------------------------------------------------------------------------


def test_status_lists_every_replica_of_every_service(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    replicas = platform.status()
    assert [r.service for r in replicas] == sorted(
        (r.service for r in replicas), key=SERVICES.index
    )
    assert {r.service for r in replicas} == set(SERVICES)
    assert sum(r.service == "payment-service" for r in replicas) == 2
    assert all(r.ready and r.pid is None and r.uid.startswith("uid-") for r in replicas)


def test_endpoints_are_node_ports_on_the_node_address(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    e = platform.endpoints()
    assert e.order_api == "http://127.0.0.1:30080"
    assert e.payment_api == "http://127.0.0.1:30081"
    assert e.redis_url == "redis://127.0.0.1:30379/0"
    assert e.temporal_address == "127.0.0.1:30733"
    assert e.temporal_ui == "http://127.0.0.1:30823"


def test_endpoints_follow_a_minikube_api_server_or_an_override(tmp_path: Path) -> None:
    cluster = FakeCluster(dict(STACK))
    platform = KubernetesPlatform(
        tmp_path, clients=fake_clients(cluster, "https://192.168.49.2:8443")
    )
    assert platform.endpoints().order_api == "http://192.168.49.2:30080"
    platform = KubernetesPlatform(tmp_path, clients=fake_clients(cluster), node_host="10.1.2.3")
    assert platform.endpoints().redis_url == "redis://10.1.2.3:30379/0"


@pytest.mark.parametrize(
    ("server", "override", "host"),
    [
        ("https://127.0.0.1:39211", None, "127.0.0.1"),
        ("https://localhost:6443", None, "127.0.0.1"),
        ("https://192.168.49.2:8443", None, "192.168.49.2"),
        ("https://127.0.0.1:39211", "192.168.1.9", "192.168.1.9"),
    ],
)
def test_node_host(server: str, override: str | None, host: str) -> None:
    assert node_host(server, override) == host


@pytest.mark.parametrize(
    ("context", "override", "overlay"),
    [("kind-sagaquake", None, "kind"), ("minikube", None, "minikube"), ("prod", "kind", "kind")],
)
def test_overlay_for_context(context: str, override: str | None, overlay: str) -> None:
    assert overlay_for_context(context, override) == overlay


def test_overlay_for_an_unknown_context_asks_for_it() -> None:
    with pytest.raises(
        ConfigError, match="cannot tell which overlay fits the kubernetes context 'gke_prod'"
    ):
        overlay_for_context("gke_prod", None)
    with pytest.raises(
        ConfigError, match="SAGAQUAKE_K8S_OVERLAY='eks' is not one of kind, minikube"
    ):
        overlay_for_context("kind-x", "eks")


def test_pod_info_reads_a_v1_pod() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p", uid="u", labels={"app.kubernetes.io/name": "projection"},
                                  creation_timestamp=t0, deletion_timestamp=t0),
        status=k8s.V1PodStatus(
            phase="Running",
            start_time=t0,
            conditions=[k8s.V1PodCondition(type="Ready", status="False")],
            container_statuses=[k8s.V1ContainerStatus(
                name="c", image="i", image_id="", ready=False, restart_count=3,
                state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="CrashLoopBackOff")))],
        ),
    )  # fmt: skip
    info = pod_info(pod)
    assert (info.service, info.restarts, info.reason, info.terminating, info.ready) == (
        "projection", 3, "CrashLoopBackOff", True, False,
    )  # fmt: skip
    assert info.state == "Terminating"
    assert info.status(t0.timestamp() + 5).uptime_s == 5


@pytest.mark.parametrize(
    ("workload", "done", "why"),
    [
        ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
          "status": {"observedGeneration": 1}}, False, "not seen the new spec"),
        ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
          "status": {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 2, "readyReplicas": 2}},
         False, "1 of 2 pods updated"),
        ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
          "status": {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 3, "readyReplicas": 2}},
         False, "1 old pods still terminating"),
        ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
          "status": {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "readyReplicas": 1}},
         False, "1 of 2 pods ready"),
        ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
          "status": {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "readyReplicas": 2}},
         True, "rolled out"),
        ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 1},
          "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                     "currentRevision": "a", "updateRevision": "b"}}, False, "0 of 1 pods updated"),
        ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 1},
          "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
                     "currentRevision": "b", "updateRevision": "b"}}, True, "rolled out"),
        ({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 0},
          "status": {"observedGeneration": 3}}, True, "rolled out"),
    ],
)  # fmt: skip
def test_rollout_done_reads_like_kubectl_rollout_status(
    workload: dict, done: bool, why: str
) -> None:
    is_done, reason = rollout_done(workload)
    assert is_done == done and why in reason


# -- up and down -------------------------------------------------------------------------------------


def test_up_applies_the_namespace_first_and_workloads_last_then_waits(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, overlay="kind")
    platform.up(timeout_s=60)
    kinds = [d["kind"] for d in cluster.applied]
    assert kinds[0] == "Namespace"
    first_workload = min(i for i, k in enumerate(kinds) if k in ("Deployment", "StatefulSet"))
    assert all(k in ("Deployment", "StatefulSet") for k in kinds[first_workload:])
    assert {d["metadata"]["name"] for d in cluster.applied} >= set(SERVICES)
    state = platform._state()
    assert state["desired"]["payment-service"] == 2 and state["overlay"] == "kind"


def test_up_refuses_an_inconsistent_overlay_before_applying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from harness.platforms.kubernetes.manifests import k8s_dir

    copy = tmp_path / "k8s"
    shutil.copytree(k8s_dir(), copy)
    path = copy / "base" / "config.yaml"
    path.write_text(path.read_text().replace("http://payment-service:8080", "http://payment:8080"))
    monkeypatch.setenv("SAGAQUAKE_K8S_DIR", str(copy))
    platform, cluster = make(tmp_path, overlay="kind")
    with pytest.raises(
        PlatformError, match=r"(?s)the kind overlay is inconsistent.*there is no Service 'payment'"
    ):
        platform.up()
    assert cluster.applied == []


def test_up_says_when_the_node_ports_do_not_answer_from_here(tmp_path: Path) -> None:
    platform, _ = make(tmp_path, overlay="kind", reachable=lambda host, port: False)
    with pytest.raises(
        PlatformError,
        match=r"http://127.0.0.1:30080 does not answer from here.*k8s/kind/cluster.yaml",
    ):
        platform.up(timeout_s=30)


def test_wait_ready_names_the_pod_and_its_last_log_lines(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.stop("inventory-service")
    cluster.never_ready.add("inventory-service")
    platform._set_replicas("inventory-service", 1)
    with pytest.raises(PlatformError) as err:
        platform.wait_ready(("inventory-service", "order-service"), timeout_s=10)
    message = str(err.value)
    assert "inventory-service: 0 of 1 pods ready" in message
    assert "redis: connection refused" in message  # the pod's log tail
    assert "order-service" not in message  # it is ready: not blamed


def test_wait_ready_refuses_a_stopped_service(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    platform.stop("projection")
    with pytest.raises(PlatformError, match=r"projection scaled to 0 .stopped.*start them first"):
        platform.wait_ready(("projection",))


def test_down_deletes_the_namespace_and_is_idempotent(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    assert platform.is_up()
    platform.down()
    assert cluster.namespace_phase is None and not platform.is_up()
    platform.down()


def test_collect_logs_writes_one_file_per_pod_and_the_events(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    files = platform.collect_logs(tmp_path / "logs")
    names = {f.name for f in files}
    assert "k8s-events.log" in names and "redis-0.log" in names
    assert sum(n.startswith("payment-service-") for n in names) == 2
    assert all(f.exists() for f in files)


def test_attach_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    cluster = FakeCluster(dict(STACK), namespace_phase=None)
    from harness.errors import StackNotRunningError

    with pytest.raises(
        StackNotRunningError, match=r"no sagaquake stack in namespace 'sagaquake'.*make kind-up"
    ):
        KubernetesPlatform.attach(tmp_path, clients=fake_clients(cluster))
