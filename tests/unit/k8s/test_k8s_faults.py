"""The ambiguous faults on Kubernetes at the `Clients` seam (k8s_fakes.py, k8s_fault_fakes.py),
with the fake API server refusing what the real chaos Role (k8s/base) does not grant: which
objects a partition and a reply loss create, what heal, up and down remove, what pause and
resume exec, and the one line `unsupported` says when something is missing."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from k8s_fakes import STACK, FakeCluster, fake_clients, permissions
from k8s_fault_fakes import chaos_role

from harness.errors import ConfigError, PlatformError
from harness.platforms.base import NetFault, Partition, Pause, ReplyLoss, SideBySide
from harness.platforms.kubernetes.checks import ALWAYS_GRANTED
from harness.platforms.kubernetes.fault_specs import PAUSE_COMMAND, RESUME_COMMAND, network_policy
from harness.platforms.kubernetes.platform import KubernetesPlatform

pytestmark = pytest.mark.unit

CRD = "networkchaos.chaos-mesh.org"
POLICY = "sagaquake-partition-payment-service"
CHAOS = "sagaquake-reply-loss-payment-service"
OURS = {"app.kubernetes.io/part-of": "sagaquake"}


def make(
    tmp_path: Path, exec_rbac: bool = False, **cluster_kwargs: Any
) -> tuple[KubernetesPlatform, FakeCluster]:
    """A platform on a fake cluster whose chaos identity has exactly the Role of k8s/base (plus
    the opt-in exec Role when `exec_rbac`)."""
    cluster = FakeCluster(dict(STACK), chaos_rbac=chaos_role(exec_rbac=exec_rbac), **cluster_kwargs)
    return on(cluster, tmp_path), cluster


def on(cluster: FakeCluster, run_dir: Path) -> KubernetesPlatform:
    """A platform of its own (another run, another process) on `cluster`."""
    return KubernetesPlatform(
        run_dir, overlay="kind", clients=fake_clients(cluster), rng=random.Random(3),
        clock=cluster.clock, sleep=cluster.sleep, reachable=lambda host, port: True,
    )  # fmt: skip


def chaos_used(cluster: FakeCluster) -> set[tuple[str, str, str]]:
    return {
        p for who, m in cluster.calls if who == "chaos" for p in permissions(m)
    } - ALWAYS_GRANTED


def leftover_policy(cluster: FakeCluster, service: str) -> None:
    """What a crashed run (another process) left: found by its labels only."""
    cluster.policies[f"sagaquake-partition-{service}"] = network_policy(service, "sagaquake")


def test_the_platform_offers_the_three_optional_primitives(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    assert isinstance(platform, Pause | Partition | ReplyLoss)
    assert all(isinstance(platform, p) for p in (Pause, Partition, ReplyLoss))
    assert platform.unsupported("flood") == (
        "unknown fault primitive 'flood'; one of: pause, partition, reply_loss, side_by_side"
    )


def test_a_blue_green_deploy_is_left_to_the_temporal_worker_controller(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    assert not isinstance(platform, SideBySide)
    why = platform.unsupported("side_by_side")
    assert why and "Temporal Worker Controller" in why


# -- partition ---------------------------------------------------------------------------------


def test_partition_creates_exactly_one_policy_denying_all_ingress_to_the_service(
    tmp_path: Path,
) -> None:
    platform, cluster = make(tmp_path)
    assert platform.unsupported("partition") is None
    fault = platform.partition("payment-service")
    assert (fault.kind, fault.service, fault.ports, fault.where, fault.dropped_packets) == (
        "partition", "payment-service", (), POLICY, None,
    )  # fmt: skip
    assert list(cluster.policies) == [POLICY]
    policy = cluster.policies[POLICY]
    assert policy["metadata"]["labels"] == {
        **OURS, "sagaquake.io/fault": "partition", "sagaquake.io/service": "payment-service",
    }  # fmt: skip
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "payment-service", **OURS}},
        "policyTypes": ["Ingress"],
    }  # no ingress rule: nothing may connect
    kubernetes_validate.validate(policy, "1.30", strict=True)
    assert ("chaos", "create_namespaced_network_policy") in cluster.calls
    assert not [m for who, m in cluster.calls if who == "admin"]


def test_partitioning_twice_is_one_policy(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.partition("payment-service")
    again = platform.partition("payment-service")
    assert again.extra["existed"] and list(cluster.policies) == [POLICY]


def test_heal_deletes_the_policy_and_is_idempotent(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    platform.partition("payment-service")
    platform.partition("order-service")
    [healed] = platform.heal("payment-service")
    assert healed == NetFault(
        "partition", "payment-service", (), POLICY, None,
        {"namespace": "sagaquake", "kind": "NetworkPolicy"},
    )  # fmt: skip
    assert list(cluster.policies) == ["sagaquake-partition-order-service"]
    assert platform.heal("payment-service") == []
    assert [f.service for f in platform.heal()] == ["order-service"]
    assert platform.heal() == [] and cluster.policies == {}


def test_heal_finds_a_crashed_runs_policies_by_label_and_leaves_others(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    leftover_policy(cluster, "redis")
    cluster.policies["someone-elses"] = {"metadata": {"name": "someone-elses", "labels": OURS}}
    assert [(f.service, f.where) for f in platform.heal(None)] == [
        ("redis", "sagaquake-partition-redis")
    ]
    assert list(cluster.policies) == ["someone-elses"]


@pytest.mark.parametrize("phase", ["down", "up"])
def test_down_and_up_remove_leftover_fault_objects(tmp_path: Path, phase: str) -> None:
    platform, cluster = make(tmp_path, crds={CRD})
    platform.lose_replies("payment-service")
    leftover_policy(cluster, "temporal")
    cluster.calls.clear()
    getattr(on(cluster, tmp_path / "next-run"), phase)()  # a later run, after a crash
    assert cluster.policies == {} and cluster.chaos == {}
    assert {(who, m) for who, m in cluster.calls if m.startswith("delete_namespaced_n")} == {
        ("admin", "delete_namespaced_network_policy")
    }
    assert ("admin", "delete_namespaced_custom_object:chaos-mesh.org/networkchaos") in cluster.calls


def test_partition_refuses_a_service_nothing_connects_to(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    with pytest.raises(PlatformError, match="'saga-worker' has no port of its own to cut off"):
        platform.partition("saga-worker")
    with pytest.raises(ConfigError, match="unknown service 'payments'"):
        platform.partition("payments")
    assert cluster.policies == {}


def test_partition_is_unsupported_while_the_role_lacks_network_policies(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    assert cluster.chaos_rbac is not None
    cluster.chaos_rbac = {p for p in cluster.chaos_rbac if p[1] != "networkpolicies"}
    why = platform.unsupported("partition")
    assert why is not None
    assert "the chaos Role lacks networkpolicies create, networkpolicies delete" in why
    assert "re-apply the stack (`make kind-up`" in why


# -- reply loss ------------------------------------------------------------------------------


def test_reply_loss_is_refused_without_chaos_mesh(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    why = platform.unsupported("reply_loss")
    assert why is not None
    assert why.startswith("Chaos Mesh is not installed (no CRD networkchaos.chaos-mesh.org)")
    assert "helm install chaos-mesh" in why
    with pytest.raises(PlatformError, match="cannot lose the replies of 'payment-service': Chaos"):
        platform.lose_replies("payment-service")
    assert cluster.chaos == {} and platform.heal() == []  # healing never needs Chaos Mesh


def test_reply_loss_creates_a_network_chaos_and_heal_deletes_it(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, crds={CRD})
    assert platform.unsupported("reply_loss") is None
    fault = platform.lose_replies("payment-service")
    assert (fault.kind, fault.service, fault.ports, fault.where, fault.dropped_packets) == (
        "reply_loss", "payment-service", (), CHAOS, None,
    )  # fmt: skip
    assert fault.extra["waited_s"] >= cluster.inject_delay  # waited until Chaos Mesh injected it
    [body] = [entry["body"] for entry in cluster.chaos.values()]
    assert body["apiVersion"] == "chaos-mesh.org/v1alpha1" and body["kind"] == "NetworkChaos"
    assert body["metadata"]["labels"] == {
        **OURS, "sagaquake.io/fault": "reply_loss", "sagaquake.io/service": "payment-service",
    }  # fmt: skip
    assert body["spec"] == {
        "action": "loss",
        "mode": "all",
        "selector": {
            "namespaces": ["sagaquake"],
            "labelSelectors": {"app.kubernetes.io/name": "payment-service", **OURS},
        },
        "direction": "to",  # what the selected pods send: their replies
        "loss": {"loss": "100", "correlation": "0"},
    }
    [healed] = platform.heal("payment-service")
    assert (healed.kind, healed.where, healed.extra["recovered"]) == ("reply_loss", CHAOS, True)
    assert cluster.chaos == {} and platform.heal("payment-service") == []
    assert chaos_used(cluster) == {
        ("chaos-mesh.org", "networkchaos", verb) for verb in ("create", "delete", "list")
    } | {("networking.k8s.io", "networkpolicies", "list")}  # heal looks for partitions too


def test_reply_loss_that_chaos_mesh_never_injects_is_deleted_and_reported(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, crds={CRD}, injects=False)
    platform.partition("payment-service")
    with pytest.raises(
        PlatformError, match=r"NetworkChaos 'sagaquake-reply-loss-payment-service' was not "
        r"injected within 30 s .*deleted again.*chaos-daemon",
    ):  # fmt: skip
        platform.lose_replies("payment-service")
    assert cluster.chaos == {}
    assert list(cluster.policies) == [POLICY]  # only the reply loss was taken back


def test_reply_loss_right_after_a_slow_heal_waits_for_the_old_object(tmp_path: Path) -> None:
    """A deleted NetworkChaos keeps its AllInjected condition until Chaos Mesh has taken its
    rules out: a new reply loss must not take that for its own."""
    platform, cluster = make(tmp_path, crds={CRD}, recover_delay=35.0)
    platform.lose_replies("payment-service")
    [healed] = platform.heal("payment-service")
    assert healed.extra["recovered"] is False  # still on its way out after 30 s
    fault = platform.lose_replies("payment-service")
    assert fault.extra["waited_s"] >= 5 + cluster.inject_delay  # the old one went, then ours
    [entry] = cluster.chaos.values()
    assert "deleted" not in entry


def test_reply_loss_is_unsupported_while_the_role_lacks_network_chaos(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, crds={CRD})
    assert cluster.chaos_rbac is not None
    cluster.chaos_rbac = {p for p in cluster.chaos_rbac if p[0] != "chaos-mesh.org"}
    assert platform.unsupported("reply_loss") == (
        "the chaos Role lacks networkchaos list: re-apply the stack (`make kind-up` or "
        "`make minikube-up`)"
    )


# -- pause ---------------------------------------------------------------------------------------


def test_pause_is_refused_clearly_without_pods_exec(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)  # the default Role: no exec
    why = platform.unsupported("pause")
    assert why is not None
    assert "may not exec into pods (pods/exec create, pods/exec get)" in why
    assert "SAGAQUAKE_K8S_POD_EXEC=1" in why and "k8s/base/chaos-rbac-exec.yaml" in why
    with pytest.raises(PlatformError, match="cannot pause 'payment-service': the chaos identity"):
        platform.pause("payment-service")
    assert platform.resume(None) == []  # a rollback must not fail: nothing of ours is frozen
    assert cluster.execs == [], "an exec was tried without the permission"


def test_pause_and_resume_exec_stop_and_cont_as_the_chaos_identity(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, exec_rbac=True)
    assert platform.unsupported("pause") is None
    [evidence] = platform.pause("payment-service", 1)
    assert evidence.paused and evidence.extra["stopped_pids"] == [7]
    [(who, pod, command)] = cluster.execs
    assert (who, pod, command) == ("chaos", evidence.name, PAUSE_COMMAND)
    assert command[2].startswith("kill -STOP -1;")
    frozen = [p for p in cluster.pods.values() if p.stopped]
    assert [(p.name, p.uid) for p in frozen] == [(evidence.name, evidence.uid)]
    assert frozen[0].service == "payment-service"
    cluster.execs.clear()
    assert platform.resume("payment-service") == [evidence.name]
    assert {c[2][2] for c in cluster.execs} == {RESUME_COMMAND[2]}
    assert len(cluster.execs) == 2  # every pod of the service, whoever froze it
    assert not any(p.stopped for p in cluster.pods.values())
    assert platform.resume("payment-service") == []  # idempotent
    assert chaos_used(cluster) <= chaos_role(exec_rbac=True)


def test_pause_without_a_count_freezes_every_replica_and_resume_none_finds_them(
    tmp_path: Path,
) -> None:
    platform, _ = make(tmp_path, exec_rbac=True)
    evidence = platform.pause("payment-service")
    evidence += platform.pause("order-service", 5)  # more than run: all of them
    assert len(evidence) == 3 and all(e.paused for e in evidence)
    assert platform.resume(None) == sorted(e.name for e in evidence)
    with pytest.raises(PlatformError, match="count must be at least 1, got 0"):
        platform.pause("payment-service", 0)


def test_pause_says_so_when_the_app_is_pid_1(tmp_path: Path) -> None:
    platform, _ = make(tmp_path, exec_rbac=True, share_pid=False)
    why = platform.unsupported("pause")
    assert why is not None and why.startswith("the pods of inventory-service, notification-service")
    assert "run their app as PID 1" in why and "shareProcessNamespace: true" in why
    [evidence] = platform.pause("order-service")
    assert not evidence.paused and "the app is PID 1 of its container" in evidence.extra["why"]


def test_exec_cannot_impersonate_a_user_so_pause_says_what_to_set(tmp_path: Path) -> None:
    cluster = FakeCluster(dict(STACK))
    platform = KubernetesPlatform(tmp_path, impersonate="jane", clients=fake_clients(cluster))
    why = platform.unsupported("pause")
    assert why is not None and why.startswith("exec cannot act as 'jane'")
    assert "SAGAQUAKE_K8S_IMPERSONATE" in why


@pytest.mark.parametrize("phase", ["down", "up"])
def test_down_and_up_resume_frozen_pods_as_you(tmp_path: Path, phase: str) -> None:
    platform, cluster = make(tmp_path, exec_rbac=True)
    [evidence] = platform.pause("redis")
    cluster.execs.clear()
    getattr(on(cluster, tmp_path / "next-run"), phase)()
    resumed = [(who, pod) for who, pod, command in cluster.execs if command == RESUME_COMMAND]
    assert ("admin", evidence.name) in resumed
    assert not any(p.stopped for p in cluster.pods.values())
