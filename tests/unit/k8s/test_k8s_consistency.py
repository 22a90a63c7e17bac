"""Consistency of the manifests beyond the schemas: every check passes on both overlays, and
fails on a copy broken on purpose (so no check can pass by accident)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.platforms.base import SERVICES
from harness.platforms.kubernetes import checks
from harness.platforms.kubernetes.manifests import OVERLAYS, k8s_dir, pod_templates, render_overlay

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
K8S = k8s_dir()
# Processes whose environment the manifests set (the locustfile's are documented in the brief
# and read by harness/load/settings.py).
_ENV_SOURCES = ("system_under_test", "harness/load", "scenarios/load")
_LOCUST_ENV = {"SAGAQUAKE_ORDER_API", "SAGAQUAKE_PROFILE", "SAGAQUAKE_COMPRESS",
               "SAGAQUAKE_RUN_DIR", "SAGAQUAKE_REDIS_URL"}  # fmt: skip


def known_env() -> set[str]:
    names = set(_LOCUST_ENV)
    for folder in _ENV_SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            names |= set(re.findall(r"SAGAQUAKE_[A-Z][A-Z0-9_]*[A-Z0-9]", path.read_text()))
    return names


@pytest.fixture(scope="module", params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render_overlay(request.param)


def kind_cluster() -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / "kind" / "cluster.yaml").read_text()))


# -- each check passes on the real overlays ---------------------------------------------------


def test_all_checks_pass(docs: list[dict[str, Any]]) -> None:
    assert checks.check_all(docs) == []
    assert checks.check_env_names(docs, known_env()) == []
    assert checks.check_kind_ports(docs, kind_cluster()) == []


def test_redis_limit_sits_well_above_maxmemory(docs: list[dict[str, Any]]) -> None:
    conf = next(d for d in docs if d["metadata"]["name"] == "redis-config")["data"]["redis.conf"]
    maxmemory = checks.redis_bytes(re.search(r"^maxmemory (\S+)$", conf, re.M)[1])  # type: ignore[index]
    redis = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "redis")
    limit = checks.memory_bytes(
        redis["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    )
    assert limit >= 2 * maxmemory
    assert "maxmemory-policy noeviction" in conf and "appendonly yes" in conf


def test_chaos_role_allows_exactly_pods_scaling_policies_and_network_chaos(
    docs: list[dict[str, Any]],
) -> None:
    [role] = [d for d in docs if d["kind"] == "Role"]
    assert checks.role_permissions(role) == {
        ("", "pods", "list"),
        ("", "pods", "delete"),
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "patch"),
        ("apps", "statefulsets/scale", "get"),
        ("apps", "statefulsets/scale", "patch"),
        ("networking.k8s.io", "networkpolicies", "create"),
        ("networking.k8s.io", "networkpolicies", "delete"),
        ("networking.k8s.io", "networkpolicies", "list"),
        ("chaos-mesh.org", "networkchaos", "create"),
        ("chaos-mesh.org", "networkchaos", "delete"),
        ("chaos-mesh.org", "networkchaos", "list"),
    }
    assert not any(p[1] == "pods/exec" for p in checks.role_permissions(role))
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert checks.EXEC_ROLE not in {d["metadata"]["name"] for d in docs}  # opt-in only


def exec_rbac() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / "base" / "chaos-rbac-exec.yaml").read_text()) if d]


def test_the_opt_in_exec_role_grants_exactly_pods_exec_to_chaos(docs: list[dict[str, Any]]) -> None:
    extra = exec_rbac()
    assert {d["kind"] for d in extra} == {"Role", "RoleBinding"}
    [role] = [d for d in extra if d["kind"] == "Role"]
    assert checks.role_permissions(role) == set(checks.EXEC_PERMISSIONS)
    assert "chaos-rbac-exec.yaml" not in (K8S / "base" / "kustomization.yaml").read_text()
    assert checks.check_all(docs + extra) == []  # the platform's pre-flight with the opt-in


def test_every_pod_of_the_stack_shares_its_process_namespace(docs: list[dict[str, Any]]) -> None:
    """So the app is not PID 1 and a pause's SIGSTOP from an exec reaches it."""
    for workload, spec in pod_templates(docs):
        name = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        assert bool(spec.get("shareProcessNamespace")) is (name in SERVICES), name


def test_requests_fit_the_nodes_they_are_made_for() -> None:
    """kind runs on a 4-core CI runner, minikube is started with 4 CPUs and 6 GiB; leave a third
    of each for Kubernetes' own pods."""
    budget = {"kind": (4.0, 14 * 1024**3), "minikube": (4.0, 6 * 1024**3)}
    for overlay in OVERLAYS:
        cpu = mem = 0.0
        for workload, spec in pod_templates(render_overlay(overlay)):
            for c in spec["containers"]:
                requests = c["resources"]["requests"]
                n = workload["spec"].get("replicas", 1)
                value = str(requests["cpu"])
                cpu += n * (float(value[:-1]) / 1000 if value.endswith("m") else float(value))
                mem += n * checks.memory_bytes(requests["memory"])
        assert cpu <= budget[overlay][0] * 2 / 3, (overlay, cpu)
        assert mem <= budget[overlay][1] * 2 / 3, (overlay, mem / 1024**3)


def test_make_fragment_exposes_the_same_node_ports() -> None:
    text = (K8S / "make.mk").read_text()
    listed = {int(p) for p in re.search(r"^K8S_NODE_PORTS\s*:?=\s*(.+)$", text, re.M)[1].split()}  # type: ignore[index]
    node_ports = {
        p["nodePort"]
        for d in render_overlay("minikube")
        if d["kind"] == "Service"
        for p in d["spec"]["ports"]
        if "nodePort" in p
    }
    assert listed == node_ports


def test_experiments_in_the_repository_use_chaosk8s_safely() -> None:
    experiments = {}
    for path in sorted((REPO / "scenarios" / "chaos").rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            experiments[str(path.relative_to(REPO))] = yaml.safe_load(path.read_text())
        elif path.suffix == ".json":
            experiments[str(path.relative_to(REPO))] = json.loads(path.read_text())
    assert (
        checks.check_experiments({k: v for k, v in experiments.items() if isinstance(v, dict)})
        == []
    )


# -- each check fails on a broken copy ---------------------------------------------------------


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _container(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    container: dict[str, Any] = _find(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]
    return container


def _set_env(docs: list[dict[str, Any]], key: str, value: str) -> None:
    _find(docs, "ConfigMap", "sagaquake-config")["data"][key] = value


def _break_selector(d: list[dict[str, Any]]) -> None:
    _find(d, "Service", "payment-service")["spec"]["selector"]["app.kubernetes.io/name"] = (
        "payments"
    )


def _break_target_port(d: list[dict[str, Any]]) -> None:
    _find(d, "Service", "order-service")["spec"]["ports"][0]["targetPort"] = "web"


def _break_workload_selector(d: list[dict[str, Any]]) -> None:
    _find(d, "Deployment", "projection")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/name"
    ] = "proj"


def _break_label(d: list[dict[str, Any]]) -> None:
    del _find(d, "Deployment", "saga-worker")["spec"]["template"]["metadata"]["labels"][
        "app.kubernetes.io/part-of"
    ]


def _break_namespace(d: list[dict[str, Any]]) -> None:
    _find(d, "ConfigMap", "redis-config")["metadata"]["namespace"] = "default"


def _break_payment_url(d: list[dict[str, Any]]) -> None:
    _set_env(d, "SAGAQUAKE_PAYMENT_URL", "http://payments:8080")


def _break_temporal_port(d: list[dict[str, Any]]) -> None:
    _set_env(d, "SAGAQUAKE_TEMPORAL_ADDRESS", "temporal:7234")


def _break_redis_namespace(d: list[dict[str, Any]]) -> None:
    _set_env(d, "SAGAQUAKE_REDIS_URL", "redis://redis.other.svc:6379/0")


def _break_listen_port(d: list[dict[str, Any]]) -> None:
    _container(d, "Deployment", "inventory-service")["env"][0]["value"] = "9090"


def _break_master_host(d: list[dict[str, Any]]) -> None:
    cmd = _container(d, "Deployment", "locust-worker")["command"]
    cmd[cmd.index("--master-host=locust-master")] = "--master-host=locust"


def _break_image(d: list[dict[str, Any]]) -> None:
    _container(d, "Deployment", "temporal")["image"] = "temporalio/temporal:latest"


def _break_pull_policy(d: list[dict[str, Any]]) -> None:
    _container(d, "Deployment", "order-service")["imagePullPolicy"] = "Always"


def _break_probe(d: list[dict[str, Any]]) -> None:
    _container(d, "Deployment", "payment-service")["readinessProbe"]["httpGet"]["path"] = "/healthz"


def _break_no_liveness(d: list[dict[str, Any]]) -> None:
    del _container(d, "StatefulSet", "redis")["livenessProbe"]


def _break_limits(d: list[dict[str, Any]]) -> None:
    del _container(d, "Deployment", "saga-worker")["resources"]["limits"]


def _break_service_links(d: list[dict[str, Any]]) -> None:
    del _find(d, "Deployment", "locust-master")["spec"]["template"]["spec"]["enableServiceLinks"]


def _break_redis_limit(d: list[dict[str, Any]]) -> None:
    _container(d, "StatefulSet", "redis")["resources"]["limits"]["memory"] = "600Mi"


def _break_redis_policy(d: list[dict[str, Any]]) -> None:
    cm = _find(d, "ConfigMap", "redis-config")["data"]
    cm["redis.conf"] = cm["redis.conf"].replace("noeviction", "allkeys-lru")


def _break_redis_volume(d: list[dict[str, Any]]) -> None:
    cm = _find(d, "ConfigMap", "redis-config")["data"]
    cm["redis.conf"] = cm["redis.conf"].replace("dir /data", "dir /tmp")


def _break_role_exec(d: list[dict[str, Any]]) -> None:
    _find(d, "Role", "sagaquake-chaos")["rules"].append(
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}
    )


def _break_role_delete(d: list[dict[str, Any]]) -> None:
    _find(d, "Role", "sagaquake-chaos")["rules"][0]["verbs"] = ["list"]


def _break_binding(d: list[dict[str, Any]]) -> None:
    _find(d, "RoleBinding", "sagaquake-chaos")["subjects"][0]["name"] = "default"


def _break_config_ref(d: list[dict[str, Any]]) -> None:
    _container(d, "Deployment", "order-service")["envFrom"][0]["configMapRef"]["name"] = "config"


def _break_claim(d: list[dict[str, Any]]) -> None:
    _find(d, "PersistentVolumeClaim", "temporal-data")["metadata"]["name"] = "temporal"


def _break_env_name(d: list[dict[str, Any]]) -> None:
    _set_env(d, "SAGAQUAKE_DECLINE_RATIO", "0.1")


def _break_share_pid(d: list[dict[str, Any]]) -> None:
    del _find(d, "Deployment", "payment-service")["spec"]["template"]["spec"][
        "shareProcessNamespace"
    ]


def _break_role_policies(d: list[dict[str, Any]]) -> None:
    rules = _find(d, "Role", "sagaquake-chaos")["rules"]
    rules[:] = [r for r in rules if r["apiGroups"] != ["networking.k8s.io"]]


def _break_exec_role_verbs(d: list[dict[str, Any]]) -> None:
    extra = exec_rbac()
    _find(extra, "Role", "sagaquake-chaos-exec")["rules"][0]["resources"].append("pods")
    d += extra


def _break_exec_binding(d: list[dict[str, Any]]) -> None:
    extra = exec_rbac()
    _find(extra, "RoleBinding", "sagaquake-chaos-exec")["subjects"][0]["name"] = "default"
    d += extra


BREAKS: list[tuple[Callable[[list[dict[str, Any]]], None], Callable[..., list[str]], str]] = [
    (_break_selector, checks.check_selectors, "selector .* matches no Deployment or StatefulSet"),
    (_break_target_port, checks.check_selectors, "targetPort 'web' is not a container port"),
    (_break_workload_selector, checks.check_selectors, "does not match its pods"),
    (_break_label, checks.check_labels, "pods lack the label app.kubernetes.io/part-of"),
    (_break_namespace, checks.check_labels, "is in namespace 'default'"),
    (_break_payment_url, checks.check_env_targets, "SAGAQUAKE_PAYMENT_URL.*no Service 'payments'"),
    (_break_temporal_port, checks.check_env_targets, "Service 'temporal' has no port 7234"),
    (_break_redis_namespace, checks.check_env_targets, "not in namespace 'sagaquake'"),
    (_break_listen_port, checks.check_env_targets, "SAGAQUAKE_PORT='9090'.*declares no such port"),
    (_break_master_host, checks.check_env_targets, "--master-host=locust: there is no Service"),
    (_break_image, checks.check_images, "runs 'temporalio/temporal:latest', not 'sagaquake:dev'"),
    (_break_pull_policy, checks.check_images, "imagePullPolicy 'Always'"),
    (_break_probe, checks.check_pods, "readiness must GET /readyz"),
    (_break_no_liveness, checks.check_pods, "needs a readiness and a liveness probe"),
    (_break_limits, checks.check_pods, "needs cpu and memory limits"),
    (_break_service_links, checks.check_pods, "enableServiceLinks"),
    (_break_redis_limit, checks.check_redis_memory, "at least 2x maxmemory"),
    (_break_redis_policy, checks.check_redis_memory, "maxmemory-policy is 'allkeys-lru'"),
    (_break_redis_volume, checks.check_redis_memory, "not on a persistent volume claim"),
    (_break_role_exec, checks.check_chaos_role, "grants create on core/pods/exec, which chaos does not use"),
    (_break_role_delete, checks.check_chaos_role, "lacks delete on core/pods"),
    (_break_binding, checks.check_chaos_role, "no RoleBinding binds"),
    (_break_config_ref, checks.check_refs, "names ConfigMap 'config', which does not exist"),
    (_break_claim, checks.check_refs, "names claim 'temporal-data', which does not exist"),
    (_break_env_name, checks.check_env_names, "no process reads the variable 'SAGAQUAKE_DECLINE_RATIO'"),
    (_break_share_pid, checks.check_pods, "'payment-service': set shareProcessNamespace: true"),
    (_break_role_policies, checks.check_chaos_role, "lacks create on networking.k8s.io/networkpolicies"),
    (_break_exec_role_verbs, checks.check_exec_role, "grants create on core/pods; it may grant only"),
    (_break_exec_binding, checks.check_exec_role, "to the ServiceAccount 'sagaquake-chaos' only"),
]  # fmt: skip


def _run(check: Callable[..., list[str]], docs: list[dict[str, Any]]) -> list[str]:
    if check is checks.check_chaos_role:
        return check(docs, checks.CHAOS_PERMISSIONS)
    if check is checks.check_env_names:
        return check(docs, known_env())
    return check(docs)


@pytest.mark.parametrize(
    ("breaker", "check", "message"), BREAKS, ids=[b[0].__name__ for b in BREAKS]
)
def test_each_check_fails_on_a_broken_manifest(
    breaker: Callable[[list[dict[str, Any]]], None], check: Callable[..., list[str]], message: str
) -> None:
    docs = copy.deepcopy(render_overlay("kind"))
    assert _run(check, docs) == []
    breaker(docs)
    problems = _run(check, docs)
    assert any(re.search(message, p) for p in problems), problems
    assert checks.check_all(docs) or check is checks.check_env_names  # the pre-flight sees it too


def test_kind_port_check_fails_on_a_missing_or_exposed_mapping() -> None:
    docs = render_overlay("kind")
    cluster = kind_cluster()
    mappings = cluster["nodes"][0]["extraPortMappings"]
    dropped = mappings.pop(0)
    assert any(
        f"does not map nodePort {dropped['containerPort']}" in p
        for p in checks.check_kind_ports(docs, cluster)
    )
    cluster = kind_cluster()
    cluster["nodes"][0]["extraPortMappings"][0]["listenAddress"] = "0.0.0.0"
    assert any("use 127.0.0.1" in p for p in checks.check_kind_ports(docs, cluster))
    cluster = kind_cluster()
    cluster["nodes"][0]["extraPortMappings"][0]["hostPort"] = 8080
    assert any("keep them equal" in p for p in checks.check_kind_ports(docs, cluster))
    cluster = kind_cluster()
    cluster["nodes"][0]["extraPortMappings"].append(
        {"containerPort": 31999, "hostPort": 31999, "listenAddress": "127.0.0.1"}
    )
    assert any("31999, which no Service uses" in p for p in checks.check_kind_ports(docs, cluster))  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ns": "sagaquake", "qty": 1}, "label_selector '' must name"),
        (
            {"label_selector": "app.kubernetes.io/name=payment-service", "ns": "sagaquake"},
            "must name",
        ),
        (
            {
                "label_selector": "app.kubernetes.io/name=payment-service,app.kubernetes.io/part-of=sagaquake"
            },
            "ns 'default' must be 'sagaquake'",
        ),
    ],
)
def test_experiment_check_refuses_an_unsafe_pod_kill(
    arguments: dict[str, Any], message: str
) -> None:
    experiment = {
        "title": "t",
        "description": "d",
        "method": [
            {
                "type": "action",
                "name": "kill-payment",
                "provider": {"type": "python", "module": "chaosk8s.pod.actions",
                             "func": "terminate_pods", "arguments": arguments},
            }
        ],
    }  # fmt: skip
    problems = checks.check_experiments({"scenarios/chaos/x.yaml": experiment})
    assert any(message in p for p in problems), problems


def test_experiment_check_refuses_chaosk8s_calls_the_role_does_not_cover() -> None:
    experiment = {
        "method": [
            {"name": "shell", "provider": {"type": "python", "module": "chaosk8s.pod.actions",
                                           "func": "exec_in_pods", "arguments": {}}}
        ],
        "rollbacks": [
            {"name": "ok", "provider": {"type": "python", "module": "chaosk8s.pod.actions",
                                        "func": "terminate_pods", "arguments": {
                "label_selector": "app.kubernetes.io/name=redis,app.kubernetes.io/part-of=sagaquake",
                "ns": "sagaquake"}}}
        ],
    }  # fmt: skip
    problems = checks.check_experiments({"x.yaml": experiment})
    assert problems == [
        "x.yaml: activity 'shell' calls chaosk8s.pod.actions.exec_in_pods, which the chaos Role "
        "was not written for"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512mb", 512 * 1024**2),
        ("1gb", 1024**3),
        ("100m", 100 * 10**6),
        ("4096", 4096),
        ("2k", 2000),
    ],
)
def test_redis_sizes_parse_as_redis_reads_them(value: str, expected: int) -> None:
    assert checks.redis_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1536Mi", 1536 * 1024**2),
        ("1Gi", 1024**3),
        ("512M", 512 * 10**6),
        ("1000", 1000),
        ("1.5Gi", 3 * 1024**3 // 2),
    ],
)
def test_kubernetes_quantities_parse(value: str, expected: int) -> None:
    assert checks.memory_bytes(value) == expected
