"""A CoreV1Api/AppsV1Api-shaped stand-in, for unit tests of the platform's *decisions* only.

It is the seam `harness.platforms.kubernetes.Clients` offers, not a model of a server: a few
controllers' worth of behaviour (replace a deleted pod, follow the replica count, turn a pod
ready after a delay) on a fake clock, returning real kubernetes.client model objects. It records
every call by client ("admin" or "chaos") and method name, from which `permissions` derives the
RBAC each call needs; with `chaos_rbac` set, a chaos call the Role does not cover is refused
with 403, as the API server would. The fault APIs (network policies, Chaos Mesh, access reviews,
exec) are in k8s_fault_fakes.py. Real-cluster behaviour is tested in tests/k8s.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from harness.platforms.kubernetes.api import Clients
from harness.platforms.kubernetes.checks import ALWAYS_GRANTED, Permission

NS = "sagaquake"
_RESOURCES = {
    "pod": ("", "pods"),
    "deployment": ("apps", "deployments"),
    "stateful_set": ("apps", "statefulsets"),
    "service": ("", "services"),
    "event": ("", "events"),
    "network_policy": ("networking.k8s.io", "networkpolicies"),
}
_VERBS = {"read": "get", "list": "list", "delete": "delete", "patch": "patch", "create": "create"}
_SPECIAL: dict[str, frozenset[Permission]] = {
    # a websocket exec is authorized as create (and get, before Kubernetes 1.31's websocket checks)
    "connect_get_namespaced_pod_exec": frozenset(
        {("", "pods/exec", "create"), ("", "pods/exec", "get")}
    ),
    "create_self_subject_access_review": ALWAYS_GRANTED,
}


def permission(method: str) -> Permission:
    """The RBAC a kubernetes-client method needs: patch_namespaced_stateful_set_scale →
    ("apps", "statefulsets/scale", "patch"); custom objects are recorded with their resource,
    list_namespaced_custom_object:chaos-mesh.org/networkchaos → ("chaos-mesh.org",
    "networkchaos", "list")."""
    method, _, custom = method.partition(":")
    verb, _, rest = method.partition("_namespaced_")
    if custom:
        group, _, plural = custom.partition("/")
        return group, plural, _VERBS[verb]
    sub = ""
    for suffix in ("_scale", "_log", "_status"):
        if rest.endswith(suffix):
            rest, sub = rest.removesuffix(suffix), "/" + suffix[1:]
    group, resource = _RESOURCES[rest]
    return group, resource + sub, _VERBS[verb]


def permissions(method: str) -> frozenset[Permission]:
    """Every permission a method needs (exec needs two)."""
    return _SPECIAL.get(method) or frozenset({permission(method)})


class ApiError(Exception):
    """Shaped like kubernetes.client.ApiException where the platform looks: status, reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"({status}) {reason}")
        self.status, self.reason = status, reason


@dataclass
class FakePod:
    name: str
    uid: str
    service: str
    created: float
    ready_at: float | None  # None: never turns ready
    deleting_at: float | None = None  # removed at this time (terminating until then)
    restarts: int = 0
    reason: str | None = None
    stopped: bool = False  # its app got a SIGSTOP (and no SIGCONT since)
    proc_tcp: str = ""  # its /proc/net/tcp and tcp6 lines, as held work's exec reads them
    proc_fds: str = ""  # `ls -l /proc/[0-9]*/fd` in it


@dataclass
class FakeCluster:
    """Services → (kind, replicas). Time moves only through `sleep`. `chaos_rbac`: what the
    chaos identity may do (None: anything). `share_pid`: the pods share their process namespace
    (else the app is PID 1 and ignores SIGSTOP). `crds`: custom resources the cluster serves;
    Chaos Mesh injects a NetworkChaos after `inject_delay` (never unless `injects`). `env`:
    service → the literal env of its pods' container (the projection's consumer name)."""

    spec: dict[str, tuple[str, int]]
    ready_delay: float = 2.0
    grace_s: float = 10.0
    now: float = 1_000_000.0
    never_ready: set[str] = field(default_factory=set)
    waiting_reason: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    pods: dict[str, FakePod] = field(default_factory=dict)
    namespace_phase: str | None = "Active"
    applied: list[dict[str, Any]] = field(default_factory=list)
    last_grace: int | None = -1  # grace_period_seconds of the last pod deletion (None: default)
    chaos_rbac: set[Permission] | None = None
    share_pid: bool = True
    crds: set[str] = field(default_factory=set)
    injects: bool = True
    inject_delay: float = 1.5
    recover_delay: float = 1.0
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    chaos: dict[str, dict[str, Any]] = field(default_factory=dict)  # NetworkChaos by name
    execs: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (who, pod, argv)
    reviews: list[Permission] = field(default_factory=list)  # access reviews asked
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.replicas = {s: n for s, (_, n) in self.spec.items()}
        self.reconcile()
        for pod in self.pods.values():  # the stack starts out running and ready
            pod.ready_at = None if pod.service in self.never_ready else self.now

    # -- time and controllers ----------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.reconcile()

    def _new_pod(self, service: str, name: str) -> None:
        n = next(self._ids)
        self.pods[f"uid-{n}"] = FakePod(
            name=name,
            uid=f"uid-{n}",
            service=service,
            created=self.now,
            ready_at=None if service in self.never_ready else self.now + self.ready_delay,
            reason=self.waiting_reason.get(service),
        )

    def reconcile(self) -> None:
        for name, entry in list(self.chaos.items()):  # Chaos Mesh's finalizer is done
            if (
                entry.get("deleted") is not None
                and entry["deleted"] + self.recover_delay <= self.now
            ):
                del self.chaos[name]
        for uid, pod in list(self.pods.items()):
            if pod.deleting_at is not None and pod.deleting_at <= self.now:
                del self.pods[uid]
        for service, (kind, _) in self.spec.items():
            live = [p for p in self.pods.values() if p.service == service and p.deleting_at is None]
            want = self.replicas[service]
            if kind == "StatefulSet":
                names = {p.name for p in self.pods.values() if p.service == service}
                for i in range(want):
                    if f"{service}-{i}" not in names:
                        self._new_pod(service, f"{service}-{i}")
                for pod in live:
                    if int(pod.name.rsplit("-", 1)[1]) >= want:
                        pod.deleting_at = self.now + self.grace_s
            else:
                for _ in range(want - len(live)):
                    self._new_pod(service, f"{service}-7f9c-{next(self._ids):05d}")
                for pod in sorted(live, key=lambda p: -p.created)[: max(len(live) - want, 0)]:
                    pod.deleting_at = self.now + self.grace_s

    def apply(self, doc: dict[str, Any]) -> None:
        """Server-side apply, as far as the controllers care: namespaces and replica counts."""
        self.applied.append(doc)
        if doc["kind"] == "Namespace":
            self.namespace_phase = "Active"
        if doc["kind"] in ("Deployment", "StatefulSet"):
            name, replicas = doc["metadata"]["name"], doc["spec"].get("replicas", 1)
            self.spec[name] = (doc["kind"], replicas)
            self.replicas[name] = replicas
            self.reconcile()

    def live(self, service: str) -> list[FakePod]:
        return [p for p in self.pods.values() if p.service == service and p.deleting_at is None]

    # -- model objects --------------------------------------------------------------------------

    def _v1pod(self, pod: FakePod) -> k8s.V1Pod:
        ready = pod.ready_at is not None and pod.ready_at <= self.now and pod.deleting_at is None
        waiting = k8s.V1ContainerStateWaiting(reason=pod.reason) if pod.reason else None
        return k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(
                name=pod.name,
                uid=pod.uid,
                namespace=NS,
                labels={
                    "app.kubernetes.io/name": pod.service,
                    "app.kubernetes.io/part-of": "sagaquake",
                },
                creation_timestamp=datetime.fromtimestamp(pod.created, UTC),
                deletion_timestamp=(
                    datetime.fromtimestamp(self.now, UTC) if pod.deleting_at is not None else None
                ),
            ),
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(
                        name=pod.service,
                        env=[
                            k8s.V1EnvVar(name=k, value=v)
                            for k, v in self.env.get(pod.service, {}).items()
                        ]
                        or None,
                    )
                ]
            ),
            status=k8s.V1PodStatus(
                phase="Running" if not pod.reason else "Pending",
                start_time=datetime.fromtimestamp(pod.created, UTC),
                conditions=[k8s.V1PodCondition(type="Ready", status="True" if ready else "False")],
                container_statuses=[
                    k8s.V1ContainerStatus(
                        name=pod.service,
                        image="sagaquake:dev",
                        image_id="",
                        ready=ready,
                        restart_count=pod.restarts,
                        state=k8s.V1ContainerState(waiting=waiting),
                    )
                ],
            ),
        )

    def workload(self, service: str) -> dict[str, Any]:
        kind, _ = self.spec[service]
        want = self.replicas[service]
        mine = [p for p in self.pods.values() if p.service == service]
        ready = [
            p
            for p in mine
            if p.ready_at is not None and p.ready_at <= self.now and p.deleting_at is None
        ]
        status = {"replicas": len(mine), "readyReplicas": len(ready), "updatedReplicas": len(mine),
                  "availableReplicas": len(ready), "observedGeneration": 1}  # fmt: skip
        template = {"spec": {"shareProcessNamespace": self.share_pid}}
        return {"kind": kind, "metadata": {"name": service, "generation": 1},
                "spec": {"replicas": want, "template": template}, "status": status}  # fmt: skip


class _Recorder:
    def __init__(self, cluster: FakeCluster, who: str) -> None:
        self.cluster, self.who = cluster, who

    def _record(self, method: str) -> None:
        """Record the call; refuse it (403) when the chaos identity's Role does not cover it."""
        self.cluster.calls.append((self.who, method))
        rbac = self.cluster.chaos_rbac
        if (
            self.who == "chaos"
            and rbac is not None
            and not permissions(method) <= rbac | ALWAYS_GRANTED
        ):
            raise ApiError(403, "Forbidden")


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    wanted = dict(part.split("=", 1) for part in selector.split(","))
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeCoreV1Api(_Recorder):
    def list_namespaced_pod(
        self, namespace: str, label_selector: str | None = None, **_: Any
    ) -> Any:
        self._record("list_namespaced_pod")
        labels = {"app.kubernetes.io/part-of": "sagaquake"}
        pods = self.cluster.pods.values()
        return k8s.V1PodList(
            items=[
                self.cluster._v1pod(p)
                for p in pods
                if _matches({**labels, "app.kubernetes.io/name": p.service}, label_selector)
            ]
        )

    def delete_namespaced_pod(
        self, name: str, namespace: str, grace_period_seconds: int | None = None,
        body: Any = None, **_: Any,
    ) -> None:  # fmt: skip
        self._record("delete_namespaced_pod")
        if body is not None and getattr(body, "grace_period_seconds", None) is not None:
            grace_period_seconds = body.grace_period_seconds
        pod = next((p for p in self.cluster.pods.values() if p.name == name), None)
        if pod is None:
            raise ApiError(404, "Not Found")
        grace = self.cluster.grace_s if grace_period_seconds is None else grace_period_seconds
        pod.deleting_at = self.cluster.now + grace
        self.cluster.last_grace = grace_period_seconds
        self.cluster.reconcile()

    def read_namespaced_pod_log(self, name: str, namespace: str, **_: Any) -> str:
        self._record("read_namespaced_pod_log")
        return f"{name}: listening\n{name}: redis: connection refused\n"

    def list_namespaced_service(
        self, namespace: str, label_selector: str | None = None, **_: Any
    ) -> Any:
        self._record("list_namespaced_service")

        def svc(name: str, *ports: tuple[str, int, int]) -> k8s.V1Service:
            return k8s.V1Service(
                metadata=k8s.V1ObjectMeta(name=name),
                spec=k8s.V1ServiceSpec(
                    type="NodePort",
                    ports=[k8s.V1ServicePort(name=n, port=p, node_port=np) for n, p, np in ports],
                ),
            )

        return k8s.V1ServiceList(
            items=[
                svc("order-service", ("http", 8080, 30080)),
                svc("payment-service", ("http", 8080, 30081)),
                svc("inventory-service", ("http", 8080, 30082)),
                svc("notification-service", ("http", 8080, 30083)),
                svc("redis", ("redis", 6379, 30379)),
                svc("redis-headless", ("redis", 6379, 0)),
                svc("temporal", ("grpc", 7233, 30733), ("ui", 8233, 30823)),
            ]
        )

    def read_namespace(self, name: str, **_: Any) -> Any:
        self._record("read_namespace")
        if self.cluster.namespace_phase is None:
            raise ApiError(404, "Not Found")
        return k8s.V1Namespace(status=k8s.V1NamespaceStatus(phase=self.cluster.namespace_phase))

    def delete_namespace(self, name: str, **_: Any) -> None:
        self._record("delete_namespace")
        if self.cluster.namespace_phase is None:
            raise ApiError(404, "Not Found")
        self.cluster.namespace_phase = None
        self.cluster.pods.clear()

    def list_namespaced_event(self, namespace: str, **_: Any) -> Any:
        self._record("list_namespaced_event")
        return k8s.CoreV1EventList(items=[])

    def connect_get_namespaced_pod_exec(
        self, name: str, namespace: str, command: list[str], **_: Any
    ) -> str:
        """The exec a `stream(...)` call makes, run by a shell that knows our commands."""
        from k8s_fault_fakes import run_shell

        self._record("connect_get_namespaced_pod_exec")
        self.cluster.execs.append((self.who, name, list(command)))
        pod = next(
            (p for p in self.cluster.pods.values() if p.name == name and p.deleting_at is None),
            None,
        )
        if pod is None:
            raise ApiError(404, "Not Found")
        return run_shell(self.cluster, pod, command)


class FakeAppsV1Api(_Recorder):
    def _scale(self, method: str, name: str) -> k8s.V1Scale:
        self._record(method)
        return k8s.V1Scale(spec=k8s.V1ScaleSpec(replicas=self.cluster.replicas[name]))

    def _patch(self, method: str, name: str, body: dict[str, Any]) -> None:
        self._record(method)
        self.cluster.replicas[name] = body["spec"]["replicas"]
        self.cluster.reconcile()

    def read_namespaced_deployment_scale(self, name: str, namespace: str, **_: Any) -> Any:
        return self._scale("read_namespaced_deployment_scale", name)

    def read_namespaced_stateful_set_scale(self, name: str, namespace: str, **_: Any) -> Any:
        return self._scale("read_namespaced_stateful_set_scale", name)

    def patch_namespaced_deployment_scale(
        self, name: str, namespace: str, body: Any, **_: Any
    ) -> None:
        self._patch("patch_namespaced_deployment_scale", name, body)

    def patch_namespaced_stateful_set_scale(
        self, name: str, namespace: str, body: Any, **_: Any
    ) -> None:
        self._patch("patch_namespaced_stateful_set_scale", name, body)

    def _list(self, method: str, kind: str) -> Any:
        """Workloads as the dicts `ApiClient.sanitize_for_serialization` makes of them."""
        self._record(method)
        names = [s for s, (k, _) in self.cluster.spec.items() if k == kind]
        items = [{k: v for k, v in self.cluster.workload(n).items() if k != "kind"} for n in names]
        return type("List", (), {"items": items})()

    def list_namespaced_deployment(self, namespace: str, **_: Any) -> Any:
        return self._list("list_namespaced_deployment", "Deployment")

    def list_namespaced_stateful_set(self, namespace: str, **_: Any) -> Any:
        return self._list("list_namespaced_stateful_set", "StatefulSet")


STACK: dict[str, tuple[str, int]] = {
    "redis": ("StatefulSet", 1),
    "temporal": ("Deployment", 1),
    "order-service": ("Deployment", 1),
    "payment-service": ("Deployment", 2),
    "inventory-service": ("Deployment", 1),
    "notification-service": ("Deployment", 1),
    "saga-worker": ("Deployment", 2),
    "projection": ("Deployment", 1),
}


def fake_clients(cluster: FakeCluster, server: str = "https://127.0.0.1:41234") -> Clients:
    from k8s_fault_fakes import FakeAuthorizationV1Api, FakeCustomObjectsApi, FakeNetworkingV1Api

    def exec_as(who: str) -> Any:
        core = FakeCoreV1Api(cluster, who)

        def run(pod: str, command: list[str]) -> str:  # as k8s_api.exec_runner calls it
            return core.connect_get_namespaced_pod_exec(
                pod, NS, command=command, stderr=True, stdin=False, stdout=True, tty=False
            )

        return run

    return Clients(
        core=FakeCoreV1Api(cluster, "admin"),
        apps=FakeAppsV1Api(cluster, "admin"),
        chaos_core=FakeCoreV1Api(cluster, "chaos"),
        chaos_apps=FakeAppsV1Api(cluster, "chaos"),
        apply=cluster.apply,
        server=server,
        context="kind-sagaquake",
        networking=FakeNetworkingV1Api(cluster, "admin"),
        custom=FakeCustomObjectsApi(cluster, "admin"),
        chaos_networking=FakeNetworkingV1Api(cluster, "chaos"),
        chaos_custom=FakeCustomObjectsApi(cluster, "chaos"),
        chaos_auth=FakeAuthorizationV1Api(cluster, "chaos"),
        chaos_exec=exec_as("chaos"),
        admin_exec=exec_as("admin"),
    )
