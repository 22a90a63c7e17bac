"""The Kubernetes platform: the stack on kind or minikube, driven through the Kubernetes API.

- `up` renders k8s/overlays/<overlay> (manifests.py, no kubectl), checks it (checks.py),
  applies every object with server-side apply (field manager `sagaquake`) and waits for every
  Deployment and StatefulSet to roll out, then for the NodePorts to answer here.
- `endpoints` are NodePorts on the node's address as seen from the harness: 127.0.0.1 on kind
  (k8s/kind/cluster.yaml maps each one), the node's IP on minikube. The harness runs outside
  the cluster and needs them to survive pod kills, which a `kubectl port-forward` (pinned to one
  pod) does not.
- Faults act as the ServiceAccount `sagaquake-chaos` (impersonation), so the chaos Role is
  exercised for real: kill = delete pods by label (grace 0 for KILL) and wait for new pod uids;
  stop/start = scale to 0 and back to the remembered count. The ambiguous faults (pause,
  partition, reply loss) are in faults.py; `up` and `down` sweep up what a crashed run left.
- held work (for a kill mid-request): an HTTP pod's unread requests from an exec that reads its
  /proc/net/tcp* (held_work.py; pods/exec, as pause), the projection's pending entries by
  XPENDING; `kill_replicas` deletes exactly the pods named.
- `redis` speaks to Redis over its NodePort (no pods/exec needed).

Configuration (environment): SAGAQUAKE_K8S_CONTEXT (default: the current context),
SAGAQUAKE_K8S_OVERLAY (kind|minikube; default from the context's name), SAGAQUAKE_K8S_IMAGE
(default sagaquake:dev), SAGAQUAKE_K8S_NODE_HOST (default: the API server's host),
SAGAQUAKE_K8S_IMPERSONATE (default: the chaos ServiceAccount; `none` to act as yourself),
SAGAQUAKE_K8S_POD_EXEC (default off; `1` makes `up` also apply k8s/base/chaos-rbac-exec.yaml,
which lets the chaos identity exec into pods, as pause and held work need), SAGAQUAKE_K8S_DIR
(default: the repository's k8s/).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from harness.errors import ConfigError, HarnessError, PlatformError, StackNotRunningError
from harness.platforms.base import (
    HTTP_SERVICES,
    SERVICES,
    Endpoints,
    KillEvidence,
    NetFault,
    PauseEvidence,
    ReplicaStatus,
)
from harness.platforms.kubernetes.api import (
    REQUEST_TIMEOUT_S,
    Clients,
    api_error,
    connect,
    copy_logs,
    impersonation_from_env,
    status_of,
    tcp_reachable,
)
from harness.platforms.kubernetes.checks import check_all
from harness.platforms.kubernetes.fault_specs import execable
from harness.platforms.kubernetes.faults import KubernetesFaults
from harness.platforms.kubernetes.held_work import (
    consumer_name,
    held_sockets,
    held_sockets_command,
    http_port,
    pending_entries,
)
from harness.platforms.kubernetes.manifests import (
    DEFAULT_IMAGE,
    NAME_LABEL,
    NAMESPACE,
    PART_OF,
    PART_OF_LABEL,
    Workload,
    k8s_dir,
    render_overlay,
    workloads,
)
from harness.platforms.kubernetes.pods import (
    FATAL_REASONS,
    PodInfo,
    choose_victims,
    grace_for_signal,
    match_replacements,
    node_host,
    overlay_for_context,
    pod_info,
    replicas_to_start,
    rollout_done,
    settled,
)
from harness.runs import RunFolder
from harness.settings import KubernetesSettings

__all__ = ["EXEC_RBAC", "WORKLOADS", "KubernetesPlatform", "pod_exec_from_env"]

# service → (workload kind, name); tests/unit/k8s checks it against the manifests.
WORKLOADS: dict[str, tuple[str, str]] = {
    s: ("StatefulSet" if s == "redis" else "Deployment", s) for s in SERVICES
}
SINGLE_WRITERS = ("redis", "temporal")  # one data volume, one process
_POLL_S = 0.5
_APPLY_ORDER = ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
                "PersistentVolumeClaim", "Service", "StatefulSet", "Deployment")  # fmt: skip
_SELECTOR = f"{PART_OF_LABEL}={PART_OF}"
EXEC_RBAC = "base/chaos-rbac-exec.yaml"  # under k8s/: the opt-in Role that lets chaos exec


def pod_exec_from_env() -> bool:
    """SAGAQUAKE_K8S_POD_EXEC: whether `up` grants the chaos identity pods/exec (default no)."""
    return bool(KubernetesSettings.field_from_env("k8s_pod_exec"))


class KubernetesPlatform:
    """Platform protocol over the Kubernetes API. `KubernetesPlatform(run_dir)` works on the
    cluster of the current kubeconfig context; `clients=` replaces the API (tests)."""

    name = "k8s"

    def __init__(
        self,
        run_dir: Path,
        *,
        context: str | None = None,
        overlay: str | None = None,
        image: str | None = None,
        node_host: str | None = None,
        impersonate: str | bool | None = True,
        pod_exec: bool | None = None,
        clients: Clients | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        reachable: Callable[[str, int], bool] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.logs_dir = RunFolder(self.run_dir).logs_dir  # where `collect_logs` is usually pointed
        self.namespace = NAMESPACE
        settings = KubernetesSettings.from_env()
        self._context = context or settings.k8s_context
        self._overlay = overlay or settings.k8s_overlay
        self.image = image or settings.k8s_image or DEFAULT_IMAGE
        self._node_host = node_host or settings.k8s_node_host
        self._impersonate = (
            impersonation_from_env() if impersonate is True else (impersonate or None)
        )
        self._clients = clients
        self._rng = rng or random.Random()
        self._clock, self._sleep = clock, sleep
        self._reachable = reachable or tcp_reachable
        self._endpoints: Endpoints | None = None
        self._http_ports: dict[str, int] = {}
        self.pod_exec = pod_exec_from_env() if pod_exec is None else pod_exec
        self._faults = KubernetesFaults(
            lambda: self.clients,
            self.namespace,
            lambda service, chaos: self._pods(service, chaos=chaos),
            self._workload_objects,
            impersonate=self._impersonate,
            rng=self._rng,
            clock=clock,
            sleep=sleep,
        )

    @classmethod
    def attach(cls, run_dir: Path | None = None, **kwargs: Any) -> KubernetesPlatform:
        """The stack in the current context's cluster (StackNotRunningError when there is none)."""
        from harness.settings import state_dir

        platform = cls(run_dir or state_dir() / "k8s", **kwargs)
        if not platform.is_up():
            raise StackNotRunningError(
                f"no sagaquake stack in namespace {NAMESPACE!r} of the kubernetes context "
                f"{platform.clients.context!r}: start one with `make kind-up` or `sagaquake up --platform k8s`"
            )
        return platform

    # -- plumbing --------------------------------------------------------------------------

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = connect(self._context, self._impersonate)
        return self._clients

    @property
    def overlay(self) -> str:
        if self._overlay:  # no cluster needed to render a named overlay
            return overlay_for_context(None, self._overlay)
        return overlay_for_context(self.clients.context, None)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)
        except HarnessError:
            raise
        except Exception as exc:
            raise api_error(exc, what) from None

    def _state_file(self) -> Path:
        return RunFolder(self.run_dir).platform_dir / "k8s-state.json"

    def _state(self) -> dict[str, Any]:
        path = self._state_file()
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        path = self._state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(path)

    def _remember(self, key: str, service: str, replicas: int | None) -> None:
        state = self._state()
        section = state.setdefault(key, {})
        if replicas is None:
            section.pop(service, None)
        else:
            section[service] = replicas
        self._save_state(state)

    def manifests(self) -> list[dict[str, Any]]:
        """The overlay, plus the opt-in exec Role when `pod_exec`."""
        docs = render_overlay(self.overlay, self.image)
        if self.pod_exec:
            path = k8s_dir() / EXEC_RBAC
            try:
                docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
            except OSError as exc:
                raise ConfigError(
                    f"SAGAQUAKE_K8S_POD_EXEC is on but {str(path)!r} cannot be read ({exc}); "
                    "set SAGAQUAKE_K8S_DIR to the repository's k8s folder"
                ) from None
        return docs

    def _workload(self, service: str) -> tuple[str, str]:
        if service not in WORKLOADS:
            raise ConfigError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
        return WORKLOADS[service]

    def _pods(self, service: str | None = None, *, chaos: bool = False) -> list[PodInfo]:
        return [pod_info(p) for p in self._v1pods(service, chaos=chaos)]

    def _v1pods(self, service: str | None = None, *, chaos: bool = False) -> list[Any]:
        selector = _SELECTOR if service is None else f"{NAME_LABEL}={service},{_SELECTOR}"
        core = self.clients.chaos_core if chaos else self.clients.core
        found = self._call(
            "list pods", core.list_namespaced_pod, self.namespace, label_selector=selector
        )
        return list(found.items)

    def _scale_api(self, kind: str, verb: str) -> Callable[..., Any]:
        suffix = "stateful_set" if kind == "StatefulSet" else "deployment"
        return getattr(self.clients.chaos_apps, f"{verb}_namespaced_{suffix}_scale")

    def _read_replicas(self, service: str) -> int:
        kind, name = self._workload(service)
        scale = self._call(
            f"read the scale of {service!r}", self._scale_api(kind, "read"), name, self.namespace
        )
        return int(scale.spec.replicas or 0)

    def _set_replicas(self, service: str, replicas: int) -> None:
        kind, name = self._workload(service)
        self._call(
            f"scale {service!r} to {replicas}",
            self._scale_api(kind, "patch"),
            name,
            self.namespace,
            {"spec": {"replicas": replicas}},
        )

    def _wait_settled(self, service: str, replicas: int, wait_s: float, chaos: bool = True) -> None:
        deadline = self._clock() + wait_s
        while True:
            pods = self._pods(service, chaos=chaos)
            if settled(pods, service, replicas):
                return
            fatal = [p for p in pods if p.reason in FATAL_REASONS]
            if fatal or self._clock() >= deadline:
                states = ", ".join(f"{p.name} ({p.state})" for p in pods) or "no pods"
                raise PlatformError(
                    f"{service!r} did not settle at {replicas} ready replicas within {wait_s:.0f} s: {states}"
                    + (_image_hint(self.image) if fatal else "")
                )
            self._sleep(_POLL_S)

    # -- lifecycle -------------------------------------------------------------------------

    def up(self, timeout_s: float = 120.0) -> None:
        docs = self.manifests()
        problems = check_all(docs, self.image)
        if problems:
            raise PlatformError(
                f"the {self.overlay} overlay is inconsistent:\n  " + "\n  ".join(problems)
            )
        self._wait_namespace_usable()
        existed = self._namespace_exists()
        state = self._state()
        state.update(
            context=self.clients.context,
            overlay=self.overlay,
            image=self.image,
            desired={w.service: w.replicas for w in workloads(docs).values()},
            stopped={},
        )
        self._save_state(state)
        order = {kind: i for i, kind in enumerate(_APPLY_ORDER)}
        for doc in sorted(docs, key=lambda d: order.get(d["kind"], len(order))):
            try:
                self.clients.apply(doc)
            except Exception as exc:
                raise api_error(exc, f"apply {doc['kind']} {doc['metadata']['name']!r}") from None
        if existed:  # a crashed run's partition or frozen pod would fail the waits below
            self._faults.sweep()
        self._endpoints = None
        deadline = self._clock() + timeout_s
        self._wait_rollout(docs, timeout_s)
        self._wait_reachable(max(deadline - self._clock(), 10.0))

    def _workload_objects(self) -> list[dict[str, Any]]:
        from kubernetes.client import ApiClient

        serialize = ApiClient().sanitize_for_serialization
        found = []
        for kind, lister in (
            ("Deployment", self.clients.apps.list_namespaced_deployment),
            ("StatefulSet", self.clients.apps.list_namespaced_stateful_set),
        ):
            result = self._call(f"list {kind}s", lister, self.namespace, label_selector=_SELECTOR)
            for item in result.items:
                found.append({**serialize(item), "kind": kind})
        return found

    def _wait_rollout(
        self, docs: list[dict[str, Any]], timeout_s: float, services: tuple[str, ...] | None = None
    ) -> None:
        wanted = {
            d["metadata"]["name"]
            for d in docs
            if d["kind"] in ("Deployment", "StatefulSet")
            and (services is None or d["metadata"]["name"] in services)
        }
        deadline = self._clock() + timeout_s
        while True:
            current = {w["metadata"]["name"]: w for w in self._workload_objects()}
            waiting = {}
            for name in sorted(wanted):
                if name not in current:
                    waiting[name] = "not created"
                    continue
                done, why = rollout_done(current[name])
                if not done:
                    waiting[name] = why
            if not waiting:
                return
            pods = self._pods()
            fatal = [p for p in pods if p.reason in FATAL_REASONS]
            if fatal or self._clock() >= deadline:
                raise PlatformError(self._not_ready_message(waiting, pods, timeout_s, bool(fatal)))
            self._sleep(_POLL_S * 2)

    def _not_ready_message(
        self, waiting: dict[str, str], pods: list[PodInfo], timeout_s: float, fatal: bool
    ) -> str:
        lines = [f"{name}: {why}" for name, why in waiting.items()]
        bad = [p for p in pods if p.service in waiting or p.reason in FATAL_REASONS]
        bad = [p for p in bad if not p.ready] or bad
        head = "cannot start" if fatal else f"not ready after {timeout_s:.0f} s"
        message = f"{head} in namespace {self.namespace!r}:\n  " + "\n  ".join(lines)
        if bad:
            worst = max(bad, key=lambda p: (p.reason in FATAL_REASONS, p.restarts))
            pod_states = ", ".join(f"{p.name} ({p.state}, {p.restarts} restarts)" for p in bad)
            message += f"\npods: {pod_states}\nlast lines of {worst.name}:\n{self._tail(worst)}"
        return message + (_image_hint(self.image) if fatal else "")

    def _tail(self, pod: PodInfo, lines: int = 20) -> str:
        for previous in (True, False) if pod.restarts else (False,):
            try:
                text = self.clients.core.read_namespaced_pod_log(
                    pod.name,
                    self.namespace,
                    tail_lines=lines,
                    previous=previous,
                    _request_timeout=REQUEST_TIMEOUT_S,
                )
            except Exception:
                continue
            if text:
                return str(text).rstrip()
        return "(no log)"

    def _wait_reachable(self, timeout_s: float) -> None:
        endpoints = self.endpoints()
        targets = {
            "order-service": endpoints.order_api,
            "redis": endpoints.redis_url,
            "temporal": "tcp://" + endpoints.temporal_address,
        }
        deadline = self._clock() + timeout_s
        for service, url in targets.items():
            host, port = _host_port(url)
            while not self._reachable(host, port):
                if self._clock() >= deadline:
                    raise PlatformError(
                        f"{service} is ready in the cluster but {url} does not answer from here: "
                        "was the kind cluster created with k8s/kind/cluster.yaml (its port mappings)? "
                        "On other clusters set SAGAQUAKE_K8S_NODE_HOST to an address of the node"
                    )
                self._sleep(_POLL_S)

    def down(self) -> None:
        """Delete the namespace (every object and volume of the stack) and wait until it is gone.
        Fault objects and frozen pods go first, so Chaos Mesh takes its rules out and every pod
        stops on its SIGTERM rather than after its grace period."""
        if self._namespace_exists():
            self._faults.sweep()
        core = self.clients.core
        try:
            core.delete_namespace(self.namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except Exception as exc:
            if status_of(exc) != 404:
                raise api_error(exc, f"delete namespace {self.namespace!r}") from None
        deadline = self._clock() + 180
        while self._namespace_exists():
            if self._clock() >= deadline:
                raise PlatformError(
                    f"namespace {self.namespace!r} is still terminating after 180 s"
                )
            self._sleep(1.0)
        self._endpoints = None

    def _wait_namespace_usable(self, timeout_s: float = 180.0) -> None:
        """A namespace still terminating after `down` refuses new objects: wait until it is gone."""
        deadline = self._clock() + timeout_s
        while True:
            try:
                ns = self.clients.core.read_namespace(
                    self.namespace, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                if status_of(exc) == 404:
                    return
                raise api_error(exc, f"read namespace {self.namespace!r}") from None
            if getattr(ns.status, "phase", None) != "Terminating":
                return
            if self._clock() >= deadline:
                raise PlatformError(
                    f"namespace {self.namespace!r} is still terminating after {timeout_s:.0f} s"
                )
            self._sleep(1.0)

    def _namespace_exists(self) -> bool:
        try:
            self.clients.core.read_namespace(self.namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except Exception as exc:
            if status_of(exc) == 404:
                return False
            raise api_error(exc, f"read namespace {self.namespace!r}") from None
        return True

    def is_up(self) -> bool:
        try:
            if not self._namespace_exists():
                return False
            return bool(self._workload_objects())
        except HarnessError:
            return False

    # -- observing -------------------------------------------------------------------------

    def status(self) -> list[ReplicaStatus]:
        now = time.time()
        order = {s: i for i, s in enumerate(SERVICES)}
        pods = [p for p in self._pods() if p.service in order]
        return [p.status(now) for p in sorted(pods, key=lambda p: (order[p.service], p.name))]

    def endpoints(self) -> Endpoints:
        if self._endpoints is not None:
            return self._endpoints
        found = self._call(
            "list services",
            self.clients.core.list_namespaced_service,
            self.namespace,
            label_selector=_SELECTOR,
        )
        node_ports = {
            (svc.metadata.name, port.name): port.node_port
            for svc in found.items
            for port in svc.spec.ports or []
            if port.node_port
        }

        def at(service: str, port: str) -> int:
            if (service, port) not in node_ports:
                raise PlatformError(
                    f"Service {service!r} has no node port {port!r} in namespace {self.namespace!r}: "
                    "apply k8s/overlays/kind or k8s/overlays/minikube (`sagaquake up --platform k8s`)"
                )
            return int(node_ports[(service, port)])

        host = node_host(self.clients.server, self._node_host)
        self._endpoints = Endpoints(
            order_api=f"http://{host}:{at('order-service', 'http')}",
            payment_api=f"http://{host}:{at('payment-service', 'http')}",
            inventory_api=f"http://{host}:{at('inventory-service', 'http')}",
            notification_api=f"http://{host}:{at('notification-service', 'http')}",
            redis_url=f"redis://{host}:{at('redis', 'redis')}/0",
            temporal_address=f"{host}:{at('temporal', 'grpc')}",
            temporal_ui=f"http://{host}:{at('temporal', 'ui')}",
        )
        return self._endpoints

    def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout_s: float = 60.0) -> None:
        for service in services:
            self._workload(service)
        stopped = [
            w["metadata"]["name"]
            for w in self._workload_objects()
            if w["metadata"]["name"] in services and not (w.get("spec") or {}).get("replicas")
        ]
        if stopped:
            raise PlatformError(f"{', '.join(stopped)} scaled to 0 (stopped?): start them first")
        docs = [{"kind": WORKLOADS[s][0], "metadata": {"name": WORKLOADS[s][1]}} for s in services]
        self._wait_rollout(docs, timeout_s, services)

    def collect_logs(self, dest: Path) -> list[Path]:
        """Every container's log (and the previous one after a restart), plus the namespace's
        events. Pods deleted by a kill are gone with their logs."""
        return copy_logs(self.clients.core, self.namespace, dest)

    # -- breaking --------------------------------------------------------------------------

    def kill(
        self, service: str, count: int = 1, signal: str = "KILL", wait_s: float = 30.0
    ) -> list[KillEvidence]:
        """Delete `count` random pods of `service` (by label) and wait until each is gone and a
        new incarnation (a new pod uid) is ready."""
        self._workload(service)
        grace_for_signal(signal)  # an unsupported signal is refused before anything is chosen
        before = self._pods(service, chaos=True)
        victims = choose_victims(before, service, count, self._rng)
        return self._kill_pods(service, victims, before, signal, wait_s)

    def kill_replicas(
        self,
        names: list[str],
        signal: str = "KILL",
        wait_s: float = 30.0,
        on_signalled: Callable[[], object] | None = None,
    ) -> list[KillEvidence]:
        """Delete exactly the named pods (grace 0 for KILL) and wait for their replacements, as
        `kill` does for its random choice: a kill mid-request names the pod holding the work.
        Pods of several services are killed one service after the other."""
        grace_for_signal(signal)
        wanted = list(dict.fromkeys(names))
        live = {p.name: p for p in self._pods(chaos=True) if p.live and p.service in WORKLOADS}
        missing = [n for n in wanted if n not in live]
        if missing:
            raise PlatformError(
                f"no running replica named {missing[0]!r} to kill; running: "
                f"{', '.join(sorted(live)) or 'none'} (see `sagaquake status`)"
            )
        evidence: dict[str, KillEvidence] = {}
        for service in dict.fromkeys(live[n].service for n in wanted):
            victims = [live[n] for n in wanted if live[n].service == service]
            before = self._pods(service, chaos=True)
            for item in self._kill_pods(service, victims, before, signal, wait_s, on_signalled):
                evidence[item.name] = item
        return [evidence[n] for n in wanted]

    def _kill_pods(
        self,
        service: str,
        victims: list[PodInfo],
        before: list[PodInfo],
        signal: str,
        wait_s: float,
        on_signalled: Callable[[], object] | None = None,
    ) -> list[KillEvidence]:
        """Delete `victims` (pods of `service`; `before`: its pods beforehand) as the chaos
        identity, run `on_signalled`, and wait until each is gone and a new incarnation is
        ready, up to `wait_s`."""
        kind, _ = self._workload(service)
        grace = grace_for_signal(signal)
        started = self._clock()
        for victim in victims:
            kwargs = {} if grace is None else {"grace_period_seconds": grace}
            try:
                self.clients.chaos_core.delete_namespaced_pod(
                    victim.name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S, **kwargs
                )
            except Exception as exc:
                if status_of(exc) != 404:  # 404: it died on its own meanwhile
                    raise api_error(exc, f"delete pod {victim.name!r}") from None
        if on_signalled is not None:
            on_signalled()
        before_uids = {p.uid for p in before}
        deadline = started + wait_s
        found: dict[str, PodInfo] = {}
        now: list[PodInfo] = []
        while True:
            now = self._pods(service, chaos=True)
            found = match_replacements(victims, before_uids, now, same_name=kind == "StatefulSet")
            if len(found) == len(victims) or self._clock() >= deadline:
                break
            self._sleep(_POLL_S)
        waited = round(self._clock() - started, 3)
        present = {p.uid for p in now}
        evidence = []
        for victim in victims:
            new = found.get(victim.uid)
            evidence.append(
                KillEvidence(
                    name=victim.name,
                    old_uid=victim.uid,
                    new_uid=new.uid if new else None,
                    signal=signal.upper().removeprefix("SIG"),
                    restarts_before=victim.restarts,
                    restarts_after=new.restarts if new else victim.restarts,
                    extra={
                        "namespace": self.namespace,
                        "grace_period_s": grace,
                        "new_pod": new.name if new else None,
                        "old_pod_gone": victim.uid not in present,
                        "waited_s": waited,
                    },
                )
            )
        return evidence

    def stop(self, service: str) -> None:
        """Scale to 0, remembering the replica count for `start`; return once no pod is left."""
        current = self._read_replicas(service)
        if current > 0:
            self._remember("stopped", service, current)
        self._set_replicas(service, 0)
        self._wait_settled(service, 0, 90.0)

    def start(self, service: str, wait_s: float = 60.0) -> None:
        """Scale back to what `stop` remembered (else the last scale, else the manifests)."""
        self._workload(service)
        replicas = replicas_to_start(service, self._state(), self._manifest_replicas(service))
        self._set_replicas(service, replicas)
        self._remember("stopped", service, None)
        self._wait_settled(service, replicas, wait_s)

    def _manifest_replicas(self, service: str) -> int | None:
        try:
            workload: Workload | None = workloads(self.manifests()).get(service)
        except HarnessError:
            return None
        return workload.replicas if workload else None

    def restart(self, service: str, wait_s: float = 60.0) -> None:
        """Delete every pod of `service` with its grace period (SIGTERM) and wait for all to be back."""
        running = [p for p in self._pods(service, chaos=True) if p.live]
        if not running:
            raise PlatformError(f"{service!r} has no running pod to restart: start it first")
        evidence = self.kill(service, len(running), "TERM", wait_s)
        missing = [e.name for e in evidence if not e.landed]
        if missing:
            raise PlatformError(
                f"{', '.join(missing)} of {service!r} did not come back within {wait_s:.0f} s"
            )

    def scale(self, service: str, replicas: int, wait_s: float = 60.0) -> None:
        self._workload(service)
        if replicas < 0:
            raise PlatformError(f"replicas must be 0 or more, got {replicas}")
        if service in SINGLE_WRITERS and replicas > 1:
            raise PlatformError(
                f"{service!r} has one writer on one volume: scale it to 0 or 1, not {replicas}"
            )
        self._set_replicas(service, replicas)
        if replicas:
            self._remember("desired", service, replicas)
            self._remember("stopped", service, None)
        self._wait_settled(service, replicas, wait_s)

    def redis(self, *command: str) -> Any:
        client = redis.Redis.from_url(
            self.endpoints().redis_url, decode_responses=True, socket_timeout=10
        )
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    # -- held work (base.HeldWork; held_work.py) -------------------------------------------

    def held_work(self, service: str) -> dict[str, dict[str, Any]]:
        """Per running pod of `service`: for an HTTP service the requests the kernel holds for
        the app on its container port (from an exec, so it needs pods/exec as pause does); for
        the projection the entries delivered to its consumer and not acknowledged (XPENDING over
        Redis's NodePort); {} for the others."""
        self._workload(service)
        if service == "projection":
            return self._pending_by_pod()
        if service not in HTTP_SERVICES:
            return {}
        port = self._http_port(service)
        outputs, errors = self._faults.exec_each(
            service, held_sockets_command(port), "held_work needs to read the pods' sockets"
        )
        held = {name: held_sockets(out, port) for name, out in outputs.items()}
        for name, error in errors.items():  # seen holding nothing, and why
            held[name] = {**held_sockets("", port), "why": error}
        return dict(sorted(held.items()))

    def _http_port(self, service: str) -> int:
        if service not in self._http_ports:  # held_work is polled: render the manifests once
            self._http_ports[service] = http_port(self.manifests(), service)
        return self._http_ports[service]

    def _pending_by_pod(self) -> dict[str, dict[str, Any]]:
        pods = [p for p in self._v1pods("projection", chaos=True) if execable(pod_info(p))]
        if not pods:
            return {}
        client = redis.Redis.from_url(
            self.endpoints().redis_url, decode_responses=True, socket_timeout=5
        )
        try:
            return {p.metadata.name: pending_entries(client, consumer_name(p)) for p in pods}
        finally:
            client.close()

    # -- ambiguous faults (faults.py) ------------------------------------------------------

    def unsupported(self, fault: str) -> str | None:
        return self._faults.unsupported(fault)

    def pause(self, service: str, count: int | None = None) -> list[PauseEvidence]:
        """SIGSTOP to the app in `count` random pods of `service` (all when None), from an exec."""
        self._workload(service)
        return self._faults.pause(service, count)

    def resume(self, service: str | None = None) -> list[str]:
        if service is not None:
            self._workload(service)
        return self._faults.resume(service)

    def nudge(self, service: str, ms: float) -> float:
        """Resume, wait, pause: each an exec into the pods, so the replicas run for far longer
        than `ms` (the exec round trips); the measured time says how long."""
        started = time.perf_counter()
        self.resume(service)
        time.sleep(max(0.0, ms) / 1000)
        self.pause(service, None)
        return (time.perf_counter() - started) * 1000

    def partition(self, service: str) -> NetFault:
        """A NetworkPolicy denying all ingress to the pods of `service`."""
        self._workload(service)
        return self._faults.partition(service)

    def lose_replies(self, service: str) -> NetFault:
        """A Chaos Mesh NetworkChaos losing every packet the pods of `service` send."""
        self._workload(service)
        return self._faults.lose_replies(service)

    def heal(self, service: str | None = None) -> list[NetFault]:
        if service is not None:
            self._workload(service)
        return self._faults.heal(service)

    def sweep(self) -> dict[str, Any]:
        """As yourself: remove every fault object and resume every pod, whoever left them."""
        return self._faults.sweep()

    # -- deploys (Deploy): deploy.py -------------------------------------------------------

    def deploy(self, service: str, env: dict[str, str], wait_s: float = 120.0) -> list[Any]:
        """Patch the Deployment's container env and follow its rollout, pod by pod."""
        from harness.platforms.kubernetes import deploy as k8s_deploy

        return k8s_deploy.deploy(self, service, env, wait_s)

    def deployed_env(self, service: str) -> dict[str, str]:
        from harness.platforms.kubernetes import deploy as k8s_deploy

        return k8s_deploy.deployed_env(self, service)


def _image_hint(image: str) -> str:
    return (
        f"\nthe image {image!r} is not on the node: build and load it with `make kind-up` "
        f"(kind load docker-image {image}) or `make minikube-up`"
    )


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise PlatformError(f"endpoint {url!r} has no host and port")
    return parts.hostname, parts.port
