"""Consistency checks of the rendered manifests: what schema validation cannot see.

Each check takes the rendered documents and returns a list of problems (empty when fine), each
naming the object and the value at fault. The platform runs `check_all` before it applies
anything; tests/unit/k8s runs every check on both overlays and on deliberately broken copies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from harness.platforms.base import SERVICES
from harness.platforms.kubernetes.manifests import (
    DEFAULT_IMAGE,
    NAME_LABEL,
    NAMESPACE,
    PART_OF,
    PART_OF_LABEL,
    pod_templates,
)

__all__ = [
    "ALWAYS_GRANTED",
    "CHAOSK8S_PERMISSIONS",
    "CHAOS_PERMISSIONS",
    "CHAOS_ROLE",
    "EXEC_PERMISSIONS",
    "EXEC_ROLE",
    "Permission",
    "check_all",
    "check_chaos_role",
    "check_env_names",
    "check_env_targets",
    "check_exec_role",
    "check_experiments",
    "check_images",
    "check_kind_ports",
    "check_labels",
    "check_pods",
    "check_redis_memory",
    "check_refs",
    "check_selectors",
    "memory_bytes",
    "redis_bytes",
    "role_permissions",
]

# (API group, resource[/subresource], verb)
Permission = tuple[str, str, str]

CHAOS_ROLE = "sagaquake-chaos"
# What the platform's chaos client calls (kill, stop, start, restart, scale, partition, reply
# loss, heal): tests/unit/k8s records the calls it really makes and compares them with this set
# and with the Role.
CHAOS_PERMISSIONS: frozenset[Permission] = frozenset(
    {
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
)
# Pause execs `kill -STOP` in the pods: an opt-in second Role (k8s/base/chaos-rbac-exec.yaml,
# not in the kustomization), so the default chaos identity cannot run commands in pods.
EXEC_ROLE = "sagaquake-chaos-exec"
EXEC_PERMISSIONS: frozenset[Permission] = frozenset(
    {("", "pods/exec", "create"), ("", "pods/exec", "get")}
)
# What every authenticated identity may do without a Role of ours (the built-in ClusterRole
# system:basic-user): ask what it may do. The platform asks before a pause or a network fault.
ALWAYS_GRANTED: frozenset[Permission] = frozenset(
    {("authorization.k8s.io", "selfsubjectaccessreviews", "create")}
)
# chaostoolkit-kubernetes functions an experiment may call, and what each needs (from its source;
# a test runs them against a recording fake to keep this honest).
CHAOSK8S_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "chaosk8s.pod.actions.terminate_pods": frozenset(
        {("", "pods", "list"), ("", "pods", "delete")}
    ),
}
# Python processes of ours must answer these (docs/api.md).
_READY_PATH, _ALIVE_PATH = "/readyz", "/healthz"
_REDIS_UNITS = {
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}
_K8S_UNITS = {
    "": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
}  # fmt: skip
_HOST_PORT = re.compile(r"^(?P<host>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9-]+)*):(?P<port>\d+)$")


def check_all(docs: list[dict[str, Any]], image: str = DEFAULT_IMAGE) -> list[str]:
    """Every check that needs only the documents (the platform's pre-flight)."""
    return [
        *check_labels(docs),
        *check_selectors(docs),
        *check_refs(docs),
        *check_env_targets(docs),
        *check_images(docs, image),
        *check_pods(docs),
        *check_redis_memory(docs),
        *check_chaos_role(docs, CHAOS_PERMISSIONS),
        *check_exec_role(docs),
    ]


# -- helpers --------------------------------------------------------------------------------


def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')} {doc.get('metadata', {}).get('name')!r}"


def _of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def _by_name(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _of_kind(docs, kind)}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _template_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"].get("metadata", {}).get("labels") or {})


def _selected(docs: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    """Workloads whose pods a Service selector picks."""
    return [
        w
        for w, _ in pod_templates(docs)
        if selector and all(_template_labels(w).get(k) == v for k, v in selector.items())
    ]


def _container_ports(spec: dict[str, Any]) -> dict[str | int, int]:
    """Named and numbered container ports of a pod → the port number."""
    ports: dict[str | int, int] = {}
    for c in _containers(spec):
        for p in c.get("ports") or []:
            ports[p["containerPort"]] = p["containerPort"]
            if p.get("name"):
                ports[p["name"]] = p["containerPort"]
    return ports


def _env(container: dict[str, Any], config_maps: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A container's environment: ConfigMaps from envFrom, then its own env (which wins)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref in config_maps:
            values.update({k: str(v) for k, v in (config_maps[ref].get("data") or {}).items()})
    for item in container.get("env") or []:
        if "value" in item:
            values[item["name"]] = str(item["value"])
    return values


def memory_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity (1536Mi, 1Gi, 512M, 1000) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?|k)?", str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(match[1]) * _K8S_UNITS[match[2] or ""])


def redis_bytes(value: str) -> int:
    """A Redis memory setting (512mb, 1gb, 100m, 4096) in bytes, as Redis reads it."""
    match = re.fullmatch(r"(\d+)([kmg]b?|b)?", value.strip().lower())
    if not match:
        raise ValueError(f"not a redis memory size: {value!r}")
    return int(match[1]) * _REDIS_UNITS[match[2] or "b"]


def _redis_conf(text: str) -> dict[str, str]:
    conf = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if parts and not parts[0].startswith("#"):
            conf[parts[0].lower()] = parts[1].strip() if len(parts) > 1 else ""
    return conf


# -- checks ---------------------------------------------------------------------------------


def check_labels(docs: list[dict[str, Any]]) -> list[str]:
    """Pods carry name and part-of labels; each service has exactly one workload; one namespace."""
    problems = []
    for doc in docs:
        ns = doc.get("metadata", {}).get("namespace")
        if doc.get("kind") != "Namespace" and ns != NAMESPACE:
            problems.append(f"{_name(doc)} is in namespace {ns!r}, not {NAMESPACE!r}")
    count: dict[str, int] = {}
    for workload, _ in pod_templates(docs):
        labels = _template_labels(workload)
        if labels.get(PART_OF_LABEL) != PART_OF:
            problems.append(f"{_name(workload)}: pods lack the label {PART_OF_LABEL}={PART_OF}")
        service = labels.get(NAME_LABEL)
        if not service:
            problems.append(f"{_name(workload)}: pods lack the label {NAME_LABEL}")
            continue
        count[service] = count.get(service, 0) + 1
    for service in SERVICES:
        if count.get(service, 0) != 1:
            problems.append(
                f"service {service!r} has {count.get(service, 0)} workloads labelled "
                f"{NAME_LABEL}={service}; expected exactly 1"
            )
    return problems


def check_selectors(docs: list[dict[str, Any]]) -> list[str]:
    """Each Service selects the pods of some workload, on a port those pods declare; each
    workload's selector matches its own pod template."""
    problems = []
    for workload, _ in pod_templates(docs):
        wanted = workload["spec"].get("selector", {}).get("matchLabels") or {}
        labels = _template_labels(workload)
        if not wanted or any(labels.get(k) != v for k, v in wanted.items()):
            problems.append(f"{_name(workload)}: selector {wanted!r} does not match its pods")
    for svc in _of_kind(docs, "Service"):
        selector = svc.get("spec", {}).get("selector") or {}
        targets = _selected(docs, selector)
        if not targets:
            problems.append(
                f"{_name(svc)}: selector {selector!r} matches no Deployment or StatefulSet"
            )
            continue
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            missing = [
                w for w in targets if target not in _container_ports(w["spec"]["template"]["spec"])
            ]
            for w in missing:
                problems.append(
                    f"{_name(svc)}: targetPort {target!r} is not a container port of {_name(w)}"
                )
    return problems


def check_refs(docs: list[dict[str, Any]]) -> list[str]:
    """ConfigMaps, claims and governing Services that pods name exist."""
    problems = []
    config_maps = _by_name(docs, "ConfigMap")
    claims = _by_name(docs, "PersistentVolumeClaim")
    services = _by_name(docs, "Service")
    for workload, spec in pod_templates(docs):
        for c in _containers(spec):
            for source in c.get("envFrom") or []:
                ref = (source.get("configMapRef") or {}).get("name")
                if ref and ref not in config_maps:
                    problems.append(
                        f"{_name(workload)}: envFrom names ConfigMap {ref!r}, which does not exist"
                    )
        templates = {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or []
        }
        for volume in spec.get("volumes") or []:
            ref = (volume.get("configMap") or {}).get("name")
            if ref and ref not in config_maps:
                problems.append(
                    f"{_name(workload)}: volume {volume['name']!r} names ConfigMap {ref!r}, which does not exist"
                )
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and claim not in claims:
                problems.append(
                    f"{_name(workload)}: volume {volume['name']!r} names claim {claim!r}, which does not exist"
                )
        volumes = {v["name"] for v in spec.get("volumes") or []} | templates
        for c in _containers(spec):
            for mount in c.get("volumeMounts") or []:
                if mount["name"] not in volumes:
                    problems.append(
                        f"{_name(workload)}: mounts volume {mount['name']!r}, which the pod does not have"
                    )
        if workload["kind"] == "StatefulSet":
            governing = workload["spec"].get("serviceName")
            if governing not in services:
                problems.append(f"{_name(workload)}: serviceName {governing!r} is no Service")
    return problems  # fmt: skip


def _service_port(services: dict[str, dict[str, Any]], host: str, port: int) -> str | None:
    """Why host:port is not a Service of ours (None when it is)."""
    name, _, rest = host.partition(".")
    if rest and rest not in (NAMESPACE, f"{NAMESPACE}.svc", f"{NAMESPACE}.svc.cluster.local"):
        return f"{host!r} is not in namespace {NAMESPACE!r}"
    if name not in services:
        return f"there is no Service {name!r}"
    ports = [p["port"] for p in services[name]["spec"].get("ports") or []]
    if port not in ports:
        return f"Service {name!r} has no port {port} (it has {ports})"
    return None


def check_env_targets(docs: list[dict[str, Any]]) -> list[str]:
    """Every URL or host:port in an env var (or a --master-host/--master-port pair) is a port of
    a Service that exists; every *_PORT a process listens on is a port its container declares."""
    problems = []
    services = _by_name(docs, "Service")
    config_maps = _by_name(docs, "ConfigMap")
    for workload, spec in pod_templates(docs):
        declared = _container_ports(spec)
        for c in _containers(spec):
            for key, value in _env(c, config_maps).items():
                where = f"{_name(workload)}: {key}={value!r}"
                if "://" in value:
                    parts = urlsplit(value)
                    port = parts.port or {"http": 80, "https": 443, "redis": 6379}.get(parts.scheme)
                    if parts.hostname is None or port is None:
                        problems.append(f"{where} has no host or port")
                        continue
                    why = _service_port(services, parts.hostname, port)
                elif match := _HOST_PORT.match(value):
                    why = _service_port(services, match["host"], int(match["port"]))
                elif key.endswith("_PORT") and value.isdigit():
                    why = None if int(value) in declared else "the container declares no such port"
                else:
                    continue
                if why:
                    problems.append(f"{where}: {why}")
            args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
            if "master-host" in flags:
                port = int(flags.get("master-port", "5557"))
                why = _service_port(services, flags["master-host"], port)
                if why:
                    problems.append(
                        f"{_name(workload)}: --master-host={flags['master-host']}: {why}"
                    )
    return problems


def check_env_names(docs: list[dict[str, Any]], known: set[str]) -> list[str]:
    """Every SAGAQUAKE_* variable a container gets is one some process reads (catches typos)."""
    problems = []
    config_maps = _by_name(docs, "ConfigMap")
    for workload, spec in pod_templates(docs):
        for c in _containers(spec):
            for key in _env(c, config_maps):
                if key.startswith("SAGAQUAKE_") and key not in known:
                    problems.append(f"{_name(workload)}: no process reads the variable {key!r}")
    return problems


def check_images(docs: list[dict[str, Any]], image: str = DEFAULT_IMAGE) -> list[str]:
    """Every container runs the image we build, and never pulls it (kind/minikube load it)."""
    problems = []
    for workload, spec in pod_templates(docs):
        for c in _containers(spec):
            if c.get("image") != image:
                problems.append(
                    f"{_name(workload)}: container {c['name']!r} runs {c.get('image')!r}, not {image!r}"
                )
            if c.get("imagePullPolicy") not in ("IfNotPresent", "Never"):
                problems.append(
                    f"{_name(workload)}: container {c['name']!r} has imagePullPolicy "
                    f"{c.get('imagePullPolicy')!r}; use IfNotPresent (the image is loaded, not pulled)"
                )
    return problems  # fmt: skip


def _probe_target(probe: dict[str, Any] | None) -> str | None:
    if not probe:
        return None
    if "httpGet" in probe:
        return str(probe["httpGet"].get("path"))
    return next((k for k in ("tcpSocket", "exec", "grpc") if k in probe), None)


def check_pods(docs: list[dict[str, Any]]) -> list[str]:
    """Each container of the stack has requests, limits and probes (our Python processes on
    /readyz and /healthz), runs as non-root, and the pods get no Service-link env vars. The
    stack's pods share their process namespace, so the app is not PID 1 and a pause (SIGSTOP
    from an exec in the pod) reaches it: PID 1 ignores signals sent from inside its container."""
    problems = []
    for workload, spec in pod_templates(docs):
        labels = _template_labels(workload)
        ours = labels.get(NAME_LABEL) in SERVICES
        if spec.get("enableServiceLinks") is not False:
            problems.append(
                f"{_name(workload)}: set enableServiceLinks: false (LOCUST_*/TEMPORAL_* link vars)"
            )
        if ours and spec.get("shareProcessNamespace") is not True:
            problems.append(
                f"{_name(workload)}: set shareProcessNamespace: true, or its app runs as PID 1 "
                "and ignores the SIGSTOP of a pause"
            )
        if not (spec.get("securityContext") or {}).get("runAsNonRoot"):
            problems.append(f"{_name(workload)}: pods must set securityContext.runAsNonRoot")
        for c in spec.get("containers") or []:
            where = f"{_name(workload)} container {c['name']!r}"
            resources = c.get("resources") or {}
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(part) or {}):
                    problems.append(f"{where}: needs cpu and memory {part}")
            if not ours:
                continue
            ready, alive = (
                _probe_target(c.get("readinessProbe")),
                _probe_target(c.get("livenessProbe")),
            )
            if not ready or not alive:
                problems.append(f"{where}: needs a readiness and a liveness probe")
            elif "system_under_test" in " ".join(map(str, c.get("command") or [])) and (
                ready != _READY_PATH or alive != _ALIVE_PATH
            ):
                problems.append(
                    f"{where}: readiness must GET {_READY_PATH} and liveness {_ALIVE_PATH}, "
                    f"got {ready!r} and {alive!r}"
                )
    return problems  # fmt: skip


def check_redis_memory(docs: list[dict[str, Any]], factor: float = 2.0) -> list[str]:
    """Redis never evicts, logs every write to an AOF on a volume, and its container may use
    `factor` times maxmemory before the kernel kills it."""
    config_map = _by_name(docs, "ConfigMap").get("redis-config")
    redis = _by_name(docs, "StatefulSet").get("redis")
    if not config_map or not redis:
        return ["redis needs the ConfigMap 'redis-config' and the StatefulSet 'redis'"]
    conf = _redis_conf(str((config_map.get("data") or {}).get("redis.conf", "")))
    problems = []
    for key, wanted in (("maxmemory-policy", "noeviction"), ("appendonly", "yes")):
        if conf.get(key) != wanted:
            problems.append(f"redis.conf: {key} is {conf.get(key)!r}, expected {wanted!r}")
    if "maxmemory" not in conf or redis_bytes(conf["maxmemory"]) == 0:
        return [
            *problems,
            "redis.conf: set maxmemory (0 or none means unlimited: the pod gets OOM-killed)",
        ]
    maxmemory = redis_bytes(conf["maxmemory"])
    container = redis["spec"]["template"]["spec"]["containers"][0]
    limit = (container.get("resources") or {}).get("limits", {}).get("memory")
    if limit is None or memory_bytes(limit) < factor * maxmemory:
        problems.append(
            f"redis: container memory limit {limit!r} must be at least {factor:g}x maxmemory "
            f"{conf['maxmemory']!r}, or the kernel kills the pod before Redis answers OOM errors"
        )
    claims = {t["metadata"]["name"] for t in redis["spec"].get("volumeClaimTemplates") or []}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    if mounts.get(conf.get("dir", "")) not in claims:
        problems.append(f"redis: its dir {conf.get('dir')!r} is not on a persistent volume claim")
    return problems  # fmt: skip


def role_permissions(role: dict[str, Any]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in role.get("rules") or []
        for group in rule.get("apiGroups") or []
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
    }


def check_chaos_role(docs: list[dict[str, Any]], required: Iterable[Permission]) -> list[str]:
    """The chaos Role grants exactly `required` (no more, no less, no wildcard), in our namespace,
    bound to the chaos ServiceAccount."""
    role = _by_name(docs, "Role").get(CHAOS_ROLE)
    if role is None:
        return [f"there is no Role {CHAOS_ROLE!r}"]
    problems = []
    granted, wanted = role_permissions(role), set(required)
    for group, resource, verb in sorted(granted - wanted):
        problems.append(
            f"Role {CHAOS_ROLE!r} grants {verb} on {group or 'core'}/{resource}, which chaos does not use"
        )
    for group, resource, verb in sorted(wanted - granted):
        problems.append(
            f"Role {CHAOS_ROLE!r} lacks {verb} on {group or 'core'}/{resource}, which chaos uses"
        )
    if _by_name(docs, "ClusterRole"):
        problems.append("chaos must not get a ClusterRole: a Role in the namespace is enough")
    bound = [
        b for b in _of_kind(docs, "RoleBinding")
        if b.get("roleRef", {}).get("name") == CHAOS_ROLE
        and any(s.get("kind") == "ServiceAccount" and s.get("name") == CHAOS_ROLE
                and s.get("namespace") == NAMESPACE for s in b.get("subjects") or [])
    ]  # fmt: skip
    if not bound:
        problems.append(
            f"no RoleBinding binds Role {CHAOS_ROLE!r} to ServiceAccount {CHAOS_ROLE!r}"
        )
    if CHAOS_ROLE not in _by_name(docs, "ServiceAccount"):
        problems.append(f"there is no ServiceAccount {CHAOS_ROLE!r}")
    return problems  # fmt: skip


def check_exec_role(docs: list[dict[str, Any]]) -> list[str]:
    """The opt-in exec Role, when present, grants exactly pods/exec create and get in our
    namespace, to the chaos ServiceAccount and no one else."""
    role = _by_name(docs, "Role").get(EXEC_ROLE)
    bindings = [
        b for b in _of_kind(docs, "RoleBinding") if b.get("roleRef", {}).get("name") == EXEC_ROLE
    ]
    if role is None:
        return [f"RoleBinding {b['metadata']['name']!r} binds the missing Role {EXEC_ROLE!r}"
                for b in bindings]  # fmt: skip
    problems = []
    granted = role_permissions(role)
    for group, resource, verb in sorted(granted - EXEC_PERMISSIONS):
        problems.append(
            f"Role {EXEC_ROLE!r} grants {verb} on {group or 'core'}/{resource}; it may grant "
            "only pods/exec create and get"
        )
    for group, resource, verb in sorted(EXEC_PERMISSIONS - granted):
        problems.append(f"Role {EXEC_ROLE!r} lacks {verb} on {group or 'core'}/{resource}")
    wanted = [{"kind": "ServiceAccount", "name": CHAOS_ROLE, "namespace": NAMESPACE}]
    if not bindings:
        problems.append(f"no RoleBinding binds Role {EXEC_ROLE!r} to ServiceAccount {CHAOS_ROLE!r}")
    for b in bindings:
        if b.get("subjects") != wanted:
            problems.append(
                f"RoleBinding {b['metadata']['name']!r} must bind Role {EXEC_ROLE!r} to the "
                f"ServiceAccount {CHAOS_ROLE!r} only, got {b.get('subjects')!r}"
            )
    return problems


def check_kind_ports(docs: list[dict[str, Any]], cluster: dict[str, Any]) -> list[str]:
    """The kind cluster maps every NodePort to the same port on the host's 127.0.0.1, and no other."""
    node_ports = {
        p["nodePort"]: _name(svc)
        for svc in _of_kind(docs, "Service")
        for p in svc["spec"].get("ports") or []
        if "nodePort" in p
    }
    problems = [
        f"{_name(svc)} is of type NodePort but does not fix its nodePort"
        for svc in _of_kind(docs, "Service")
        if svc["spec"].get("type") == "NodePort"
        and any("nodePort" not in p for p in svc["spec"].get("ports") or [])
    ]
    mappings = [
        m for node in cluster.get("nodes") or [] for m in node.get("extraPortMappings") or []
    ]
    mapped = {m.get("containerPort") for m in mappings}
    for port, owner in sorted(node_ports.items()):
        if port not in mapped:
            problems.append(f"kind cluster config does not map nodePort {port} of {owner}")
    for m in mappings:
        if m.get("containerPort") not in node_ports:
            problems.append(
                f"kind cluster config maps port {m.get('containerPort')}, which no Service uses"
            )
        if m.get("hostPort") != m.get("containerPort"):
            problems.append(
                f"kind cluster config maps {m.get('containerPort')} to host port {m.get('hostPort')}; keep them equal"
            )
        if m.get("listenAddress") != "127.0.0.1":
            problems.append(
                f"kind cluster config exposes {m.get('containerPort')} on {m.get('listenAddress')!r}; use 127.0.0.1"
            )
    return problems  # fmt: skip


def _activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(experiment.get("method") or []) + list(experiment.get("rollbacks") or [])
    found += list((experiment.get("steady-state-hypothesis") or {}).get("probes") or [])
    return [a for a in found if isinstance(a, dict)]


def check_experiments(experiments: dict[str, dict[str, Any]]) -> list[str]:
    """chaostoolkit-kubernetes calls in experiments: only functions the chaos Role covers, and
    pod kills always select our pods by label in our namespace (with no selector,
    terminate_pods may kill any pod of the namespace)."""
    problems = []
    for source, experiment in sorted(experiments.items()):
        for activity in _activities(experiment):
            provider = activity.get("provider") or {}
            module = str(provider.get("module", ""))
            if provider.get("type") != "python" or not module.startswith("chaosk8s"):
                continue
            func = f"{module}.{provider.get('func')}"
            where = f"{source}: activity {activity.get('name')!r}"
            if func not in CHAOSK8S_PERMISSIONS:
                problems.append(f"{where} calls {func}, which the chaos Role was not written for")
                continue
            missing = CHAOSK8S_PERMISSIONS[func] - CHAOS_PERMISSIONS
            if missing:
                problems.append(
                    f"{where} calls {func}, which needs {sorted(missing)} beyond the chaos Role"
                )
            args = provider.get("arguments") or {}
            selector = str(args.get("label_selector") or "")
            if f"{PART_OF_LABEL}={PART_OF}" not in selector or f"{NAME_LABEL}=" not in selector:
                problems.append(
                    f"{where}: label_selector {selector!r} must name {NAME_LABEL}=<service> and "
                    f"{PART_OF_LABEL}={PART_OF}"
                )
            ns = str(args.get("ns", "default"))
            if ns != NAMESPACE and not ns.startswith("${"):
                problems.append(f"{where}: ns {ns!r} must be {NAMESPACE!r}")
    return problems  # fmt: skip
