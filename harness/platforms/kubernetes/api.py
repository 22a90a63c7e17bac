"""The Kubernetes API as the platform uses it: two identities (you, and the chaos
ServiceAccount by impersonation), server-side apply, exec in a pod, errors turned into
PlatformError, and the logs of every pod copied out. Kept apart so the platform's decisions can
be tested with fakes of `Clients` (tests/unit/k8s/k8s_fakes.py).
"""

from __future__ import annotations

import copy
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, PlatformError
from harness.platforms.kubernetes.checks import CHAOS_ROLE
from harness.platforms.kubernetes.manifests import NAMESPACE
from harness.settings import KubernetesSettings

__all__ = [
    "CHAOS_USER",
    "FIELD_MANAGER",
    "REQUEST_TIMEOUT_S",
    "Clients",
    "Exec",
    "ExecError",
    "api_error",
    "bearer_configuration",
    "connect",
    "copy_logs",
    "exec_runner",
    "impersonation_from_env",
    "service_account_of",
    "status_of",
    "tcp_reachable",
]

CHAOS_USER = f"system:serviceaccount:{NAMESPACE}:{CHAOS_ROLE}"
FIELD_MANAGER = "sagaquake"
REQUEST_TIMEOUT_S = 15
_TOKEN_S = 3600  # lifetime of the chaos ServiceAccount's token for exec (TokenRequest, >= 600)

# Run a command in a pod of the stack's namespace: (pod name, argv) → its stdout and stderr.
Exec = Callable[[str, list[str]], str]


@dataclass
class Clients:
    """The API objects the platform calls: `core`/`apps`/`networking`/`custom` as yourself
    (apply, observe, logs, sweeping up a crashed run's faults), `chaos_*` as the chaos identity
    (every fault; `chaos_auth` asks what that identity may do). `chaos_exec`/`admin_exec` run a
    command in a pod as either. `apply` does one server-side apply. Tests hand the platform
    fakes of these shapes."""

    core: Any
    apps: Any
    chaos_core: Any
    chaos_apps: Any
    apply: Callable[[dict[str, Any]], None]
    server: str
    context: str | None
    networking: Any = None
    custom: Any = None
    chaos_networking: Any = None
    chaos_custom: Any = None
    chaos_auth: Any = None
    chaos_exec: Exec | None = None
    admin_exec: Exec | None = None


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

    if impersonate and service_account_of(impersonate) is None:
        chaos_exec: Exec = _refuse_exec(impersonate)
    else:
        chaos_exec = exec_runner(admin, service_account_of(impersonate) if impersonate else None)
    return Clients(
        core=client.CoreV1Api(admin),
        apps=client.AppsV1Api(admin),
        chaos_core=client.CoreV1Api(chaos),
        chaos_apps=client.AppsV1Api(chaos),
        apply=apply,
        server=admin.configuration.host,
        context=name,
        networking=client.NetworkingV1Api(admin),
        custom=client.CustomObjectsApi(admin),
        chaos_networking=client.NetworkingV1Api(chaos),
        chaos_custom=client.CustomObjectsApi(chaos),
        chaos_auth=client.AuthorizationV1Api(chaos),
        chaos_exec=chaos_exec,
        admin_exec=exec_runner(admin, None),
    )


class ExecError(Exception):
    """An exec that failed, shaped like ApiException where the platform looks (status, reason):
    the websocket client reports every failure as status 0 with the handshake's status in its
    text ("Handshake status 403 Forbidden")."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"({status}) {reason}")
        self.status, self.reason = status, reason


def service_account_of(user: str) -> tuple[str, str] | None:
    """(namespace, name) of a ServiceAccount's user name system:serviceaccount:<ns>:<name>."""
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and all(parts[2:]):
        return parts[2], parts[3]
    return None


def bearer_configuration(base: Any, token: str) -> Any:
    """A copy of a client configuration that authenticates with `token` only: no client
    certificate (the API server would take the certificate's identity first), no other key."""
    cfg = copy.deepcopy(base)
    cfg.cert_file = cfg.key_file = None
    cfg.username = cfg.password = None
    cfg.refresh_api_key_hook = None
    cfg.api_key = {"BearerToken": token}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return cfg


def exec_runner(admin: Any, service_account: tuple[str, str] | None) -> Exec:
    """Exec in a pod of the stack as `service_account` (None: as the admin client itself).

    Not by impersonation: the client's websocket sends only the Authorization header
    (kubernetes/stream/ws_client.py, create_websocket), so an Impersonate-User header would be
    dropped and the exec would silently run as you. Instead the admin asks for a short-lived
    token of the ServiceAccount (TokenRequest) and the exec authenticates with it, so the API
    server checks the ServiceAccount's own Role."""
    from kubernetes import client

    cached: dict[str, Any] = {}

    def core() -> Any:
        if service_account is None:
            return client.CoreV1Api(admin)
        if cached.get("until", 0.0) <= time.monotonic():
            namespace, name = service_account
            body = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=_TOKEN_S)
            )
            try:
                answer = client.CoreV1Api(admin).create_namespaced_service_account_token(
                    name, namespace, body, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                raise api_error(exc, f"get a token of the ServiceAccount {name!r}") from None
            token = answer.status.token if answer.status else None
            if not token:
                raise PlatformError(f"the API gave no token for the ServiceAccount {name!r}")
            cfg = bearer_configuration(admin.configuration, token)
            cached.update(core=client.CoreV1Api(client.ApiClient(cfg)),
                          until=time.monotonic() + _TOKEN_S - 300)  # fmt: skip
        return cached["core"]

    def run(pod: str, command: list[str]) -> str:
        from kubernetes import stream

        api = core()
        try:
            out = stream.stream(
                api.connect_get_namespaced_pod_exec, pod, NAMESPACE, command=command,
                stderr=True, stdin=False, stdout=True, tty=False,
                _request_timeout=REQUEST_TIMEOUT_S,
            )  # fmt: skip
        except Exception as exc:
            reason = str(getattr(exc, "reason", None) or exc)
            found = re.search(r"Handshake status (\d{3})", reason)
            status = int(found[1]) if found else status_of(exc) or None
            raise ExecError(status, reason.split(" -+-+- ")[0]) from None
        return str(out)

    return run


def _refuse_exec(user: str) -> Exec:
    def run(pod: str, command: list[str]) -> str:
        raise PlatformError(
            f"cannot exec into pod {pod!r} as {user!r}: the kubernetes client drops impersonation "
            "on exec, so only a ServiceAccount (system:serviceaccount:<namespace>:<name>, by its "
            "token) or yourself can: set SAGAQUAKE_K8S_IMPERSONATE to one, or to none"
        )

    return run


def impersonation_from_env() -> str | None:
    value = KubernetesSettings.field_from_env("k8s_impersonate")
    if value is None:
        return CHAOS_USER
    return None if value.strip().lower() == "none" else value


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
