"""The Kubernetes API as the platform uses it: two identities (you, and the chaos
ServiceAccount by impersonation), server-side apply, errors turned into PlatformError, and the
logs of every pod copied out. Kept apart so the platform's decisions can be tested with fakes
of `Clients` (tests/unit/k8s/k8s_fakes.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, PlatformError
from harness.platforms.k8s_checks import CHAOS_ROLE
from harness.platforms.k8s_manifests import NAMESPACE

__all__ = [
    "CHAOS_USER",
    "FIELD_MANAGER",
    "REQUEST_TIMEOUT_S",
    "Clients",
    "api_error",
    "connect",
    "copy_logs",
    "impersonation_from_env",
    "status_of",
    "tcp_reachable",
]

CHAOS_USER = f"system:serviceaccount:{NAMESPACE}:{CHAOS_ROLE}"
FIELD_MANAGER = "sagaquake"
REQUEST_TIMEOUT_S = 15


@dataclass
class Clients:
    """The API objects the platform calls: `core`/`apps` as yourself (apply, observe, logs),
    `chaos_core`/`chaos_apps` as the chaos identity (every fault). `apply` does one server-side
    apply. Tests hand the platform fakes of these shapes."""

    core: Any
    apps: Any
    chaos_core: Any
    chaos_apps: Any
    apply: Callable[[dict[str, Any]], None]
    server: str
    context: str | None


def connect(context: str | None = None, impersonate: str | None = CHAOS_USER) -> Clients:
    """Clients for a kubeconfig context (None: the current one)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, active = config.list_kube_config_contexts()
        name = context or (active or {}).get("name")
        if context and context not in {c["name"] for c in contexts}:
            raise PlatformError(
                f"kubernetes context {context!r} does not exist; known: "
                f"{', '.join(sorted(c['name'] for c in contexts))}"
            )
        admin = config.new_client_from_config(context=name)
        chaos = config.new_client_from_config(context=name)
    except (ConfigException, OSError) as exc:
        raise PlatformError(
            f"no kubernetes cluster is configured ({exc}); create one with `make kind-up` or "
            "`make minikube-up`, or point KUBECONFIG at yours"
        ) from None
    if impersonate:
        chaos.set_default_header("Impersonate-User", impersonate)
    dynamic: list[Any] = []

    def apply(doc: dict[str, Any]) -> None:
        from kubernetes.dynamic import DynamicClient

        if not dynamic:
            dynamic.append(DynamicClient(admin))
        resource = dynamic[0].resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        dynamic[0].server_side_apply(
            resource,
            body=doc,
            namespace=doc["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=REQUEST_TIMEOUT_S,
        )

    return Clients(
        core=client.CoreV1Api(admin),
        apps=client.AppsV1Api(admin),
        chaos_core=client.CoreV1Api(chaos),
        chaos_apps=client.AppsV1Api(chaos),
        apply=apply,
        server=admin.configuration.host,
        context=name,
    )


def impersonation_from_env() -> str | None:
    value = os.environ.get("SAGAQUAKE_K8S_IMPERSONATE")
    if value is None:
        return CHAOS_USER
    return None if value.strip().lower() in ("", "none") else value


def api_error(exc: BaseException, what: str) -> HarnessError:
    status = getattr(exc, "status", None)
    if status == 403:
        return PlatformError(
            f"{what}: forbidden ({getattr(exc, 'reason', '')}); the chaos Role in "
            "k8s/base/chaos-rbac.yaml may lack it, or set SAGAQUAKE_K8S_IMPERSONATE=none to act as yourself"
        )
    if status is not None:
        return PlatformError(
            f"{what}: the API answered {status} {getattr(exc, 'reason', '')}".rstrip()
        )
    return PlatformError(f"{what}: cannot reach the cluster ({type(exc).__name__}: {exc})")


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def copy_logs(core: Any, namespace: str, dest: Path) -> list[Path]:
    """Every container's log (and the previous one after a restart) into `dest`, one file per
    pod, plus the namespace's events. Never raises: what cannot be read is said in the file."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        pods = core.list_namespaced_pod(namespace, _request_timeout=REQUEST_TIMEOUT_S).items
    except Exception as exc:
        path = dest / "k8s-logs-error.log"
        path.write_text(f"{api_error(exc, 'list pods')}\n")
        return [path]
    written = []
    for pod in pods:
        containers = [c.name for c in pod.spec.containers]
        statuses = (pod.status.container_statuses if pod.status else None) or []
        restarted = {c.name for c in statuses if c.restart_count}
        for container in containers:
            base = pod.metadata.name if len(containers) == 1 else f"{pod.metadata.name}_{container}"
            for previous in (False, True) if container in restarted else (False,):
                path = dest / f"{base}{'.previous' if previous else ''}.log"
                try:
                    text = core.read_namespaced_pod_log(
                        pod.metadata.name, namespace, container=container,
                        previous=previous, timestamps=True, _request_timeout=60,
                    )  # fmt: skip
                except Exception as exc:
                    text = f"(could not read the log: {api_error(exc, 'read log')})\n"
                path.write_text(str(text))
                written.append(path)
    written.append(_write_events(core, namespace, dest / "k8s-events.log"))
    return written


def _write_events(core: Any, namespace: str, path: Path) -> Path:
    try:
        events = core.list_namespaced_event(namespace, _request_timeout=REQUEST_TIMEOUT_S).items
        lines = sorted(
            f"{(e.last_timestamp or e.event_time or e.metadata.creation_timestamp)} {e.type} "
            f"{e.reason} {e.involved_object.kind}/{e.involved_object.name}: {e.message}"
            for e in events
        )
        path.write_text("\n".join(lines) + "\n")
    except Exception as exc:
        path.write_text(f"(could not list events: {api_error(exc, 'list events')})\n")
    return path


def tcp_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
