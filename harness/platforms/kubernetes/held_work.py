"""The work a pod holds unfinished (base.HeldWork on Kubernetes), as plain values: the command
an exec runs in a pod of an HTTP service and how to read what it prints, the container port it
looks at, and the projection's consumer name and pending entries. Tested on crafted text and
pods (tests/unit/k8s/test_k8s_held_work.py); the exec itself goes the way pause's does.

An HTTP pod's requests are in its network namespace's /proc/net/tcp*: connections the kernel
accepted for it and requests it has not read (proc_net.py reads them, as on the local platform).
Which sockets are the app's comes from its processes' fds: the pods share their process namespace,
so an exec sees the app's /proc/<pid>/fd as the same user. The pod's pause process (PID 1) holds
no socket and is skipped.
"""

from __future__ import annotations

import re
from typing import Any

import redis

from harness import keys
from harness.errors import ConfigError
from harness.platforms.kubernetes.manifests import NAME_LABEL, pod_templates
from harness.platforms.proc_net import TcpQueues, socket_inodes, tcp_queues

__all__ = [
    "CONSUMER_ENV",
    "HTTP_PORT_NAME",
    "consumer_name",
    "held_sockets",
    "held_sockets_command",
    "http_port",
    "pending_entries",
]

HTTP_PORT_NAME = "http"  # the container port every HTTP service of k8s/base names so
CONSUMER_ENV = "SAGAQUAKE_CONSUMER_NAME"  # what system_under_test/projection names its consumer by
_TCP, _FD = "== tcp", "== fd"  # section marks in the command's output
_FD_DIR = re.compile(r"^/proc/(\d+)/fd:$")
_PENDING_SAMPLE = 100  # entry ids kept as evidence


def held_sockets_command(port: int) -> list[str]:
    """`sh -c`: the socket lines of the pod's network namespace that mention `port` (grep keeps
    the output small; the parser keeps those whose *local* port it is), then the fd links of
    every process the exec's user may read. Only sh, grep and ls, which any slim image has."""
    script = (
        f"echo '{_TCP}'; grep -h ':{port:04X} ' /proc/net/tcp /proc/net/tcp6 2>/dev/null; "
        f"echo '{_FD}'; ls -l /proc/[0-9]*/fd 2>/dev/null; true"
    )
    return ["sh", "-c", script]


def held_sockets(output: str, port: int) -> dict[str, Any]:
    """What `held_sockets_command(port)` printed, as the local platform's held work of a replica:
    accept_queue, unread_bytes, connections_with_unread, the port; then the number of the app's
    sockets seen and `peers`, the callers' addresses of what waits (the kubelet's probes come
    from the node's address, callers from their pods' or, through a NodePort, the node's too);
    `why` when it saw nothing it could trust (no listening socket of the app)."""
    if _TCP not in output or _FD not in output:
        found = {**TcpQueues().counts(), "port": port, "sockets": 0, "peers": {}}
        return {**found, "why": f"unexpected output: {output.strip()[-200:]!r}"}
    tcp: list[str] = []
    links: list[str] = []
    section, pid = "", 0
    for line in output.splitlines():
        if line in (_TCP, _FD):
            section = line
        elif section == _TCP:
            tcp.append(line)
        elif section == _FD:
            heading = _FD_DIR.match(line.strip())
            if heading:
                pid = int(heading[1])
            elif pid != 1:  # the pod's pause process: not the app
                links.append(line)
    inodes = socket_inodes("\n".join(links))
    queues = tcp_queues(tcp, port, inodes)
    held: dict[str, Any] = {
        **queues.counts(),
        "port": port,
        "sockets": len(inodes),
        "peers": dict(queues.peers),
    }
    if not queues.listening:
        held["why"] = (
            f"no socket of the app listens on port {port} in this pod: is {port} its container "
            "port, and may the exec's user read the app's /proc/<pid>/fd?"
        )
    return held


def http_port(docs: list[dict[str, Any]], service: str) -> int:
    """The container port named `http` of the pods of `service` in the rendered manifests."""
    for workload, spec in pod_templates(docs):
        labels = (workload["spec"]["template"].get("metadata") or {}).get("labels") or {}
        if labels.get(NAME_LABEL) != service:
            continue
        for container in spec.get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name") == HTTP_PORT_NAME and port.get("containerPort"):
                    return int(port["containerPort"])
    raise ConfigError(
        f"the pods of {service!r} declare no container port named {HTTP_PORT_NAME!r} in the "
        "manifests: name the port the app listens on `http` in its k8s/base file"
    )


def consumer_name(pod: Any) -> str:
    """The projection's consumer name in a kubernetes.client.V1Pod: its container's
    SAGAQUAKE_CONSUMER_NAME (fixed in k8s/base/projection.yaml, so a replacement pod reads its
    predecessor's pending entries first), else the pod's hostname, as the projection does."""
    meta, spec = pod.metadata, pod.spec
    for container in (spec.containers if spec else None) or []:
        for var in container.env or []:
            if var.name != CONSUMER_ENV:
                continue
            if var.value:
                return str(var.value)
            ref = var.value_from.field_ref if var.value_from else None
            if ref is not None and ref.field_path == "metadata.name":
                return str(meta.name)
    hostname = (spec.hostname if spec else None) or meta.name
    return str(hostname)[:63].rstrip("-.")  # the kubelet's cut of a long pod name


def pending_entries(client: Any, consumer: str) -> dict[str, Any]:
    """Entries of orders:events delivered to `consumer` of the projection's group and not
    acknowledged, the first 100 (redis-py's xpending_range: execute_command's XPENDING parser
    breaks on the range form). An error is returned, not raised: Redis may be the one down."""
    try:
        pending = client.xpending_range(
            keys.EVENTS, keys.PROJECTION_GROUP, "-", "+", _PENDING_SAMPLE, consumername=consumer
        )
    except redis.RedisError as exc:
        return {"pending_entries": 0, "consumer": consumer, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "pending_entries": len(pending),
        "entries": [p["message_id"] for p in pending],
        "consumer": consumer,
    }
