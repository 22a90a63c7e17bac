"""What the ambiguous faults on Kubernetes are made of, as plain values: the NetworkPolicy of a
partition, the Chaos Mesh NetworkChaos of a reply loss, the labels heal finds them by, the
shell commands of pause and resume and how to read what they print. Tested on crafted values
and, for the commands, on real processes in a PID namespace (tests/unit/k8s/test_k8s_exec.py).
"""

from __future__ import annotations

import re
from typing import Any

from harness.platforms.base import SERVICES
from harness.platforms.kubernetes.manifests import NAME_LABEL, PART_OF, PART_OF_LABEL
from harness.platforms.kubernetes.pods import PodInfo

__all__ = [
    "CHAOS_MESH",
    "FAULT_LABEL",
    "LISTENING",
    "PAUSE_COMMAND",
    "RESUME_COMMAND",
    "SERVICE_LABEL",
    "execable",
    "fault_selector",
    "injected",
    "name_and_labels",
    "network_chaos",
    "network_policy",
    "process_states",
    "stopped_pids",
]

FAULT_LABEL = "sagaquake.io/fault"  # partition or reply_loss, as NetFault.kind
SERVICE_LABEL = "sagaquake.io/service"
CHAOS_MESH = ("chaos-mesh.org", "v1alpha1", "networkchaos")  # group, version, plural
# Services callers connect to; saga-worker and projection only call out.
LISTENING = ("redis", "temporal", "order-service", "payment-service", "inventory-service",
             "notification-service")  # fmt: skip
# `kill -1` signals every process the caller may signal but PID 1 and itself (dash's `kill` is
# a builtin, so no child of the shell is stopped either). The states are read a moment later,
# when the stopped processes have reached the stop; resume reads them before it lets them go.
_STATES = "grep -H '^State:' /proc/[0-9]*/status"
PAUSE_COMMAND = ["sh", "-c", f"kill -STOP -1; sleep 0.1; {_STATES}"]
RESUME_COMMAND = ["sh", "-c", f"{_STATES}; kill -CONT -1"]
_STATE_LINE = re.compile(r"^/proc/(\d+)/status:State:\s*([A-Za-z])", re.M)


def process_states(output: str) -> dict[int, str]:
    """pid → state letter, from `grep -H '^State:' /proc/*/status` run in a pod."""
    return {int(pid): state for pid, state in _STATE_LINE.findall(output)}


def stopped_pids(states: dict[int, str]) -> list[int]:
    """The stopped processes, PID 1 aside (the pause process, or an app that ignored SIGSTOP)."""
    return sorted(pid for pid, state in states.items() if state == "T" and pid != 1)


def execable(pod: PodInfo) -> bool:
    """A pod of the stack whose container runs now: an exec into anything else fails."""
    return pod.live and pod.phase == "Running" and pod.reason is None and pod.service in SERVICES


def _metadata(name: str, namespace: str, kind: str, service: str) -> dict[str, Any]:
    labels = {PART_OF_LABEL: PART_OF, FAULT_LABEL: kind, SERVICE_LABEL: service}
    return {"name": name, "namespace": namespace, "labels": labels}


def fault_selector(kind: str, service: str | None) -> str:
    """The label selector of our `kind` objects of `service` (of any service when None)."""
    found = f"{PART_OF_LABEL}={PART_OF},{FAULT_LABEL}={kind}"
    return found if service is None else f"{found},{SERVICE_LABEL}={service}"


def _pods_of(service: str) -> dict[str, str]:
    return {NAME_LABEL: service, PART_OF_LABEL: PART_OF}


def network_policy(service: str, namespace: str) -> dict[str, Any]:
    """Deny all ingress to the pods of `service`: policyTypes [Ingress] and no ingress rule."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"sagaquake-partition-{service}", namespace, "partition", service),
        "spec": {"podSelector": {"matchLabels": _pods_of(service)}, "policyTypes": ["Ingress"]},
    }


def network_chaos(service: str, namespace: str) -> dict[str, Any]:
    """Lose every packet the pods of `service` send (netem on their interface; direction `to`
    with no target is all of their egress) until deleted; what reaches them still arrives."""
    group, version, _ = CHAOS_MESH
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "NetworkChaos",
        "metadata": _metadata(f"sagaquake-reply-loss-{service}", namespace, "reply_loss", service),
        "spec": {
            "action": "loss",
            "mode": "all",
            "selector": {"namespaces": [namespace], "labelSelectors": _pods_of(service)},
            "direction": "to",
            "loss": {"loss": "100", "correlation": "0"},
        },
    }


def name_and_labels(item: Any) -> tuple[str, dict[str, str]]:
    """Of a listed object: a model (built-in kinds) or a dict (custom resources)."""
    if isinstance(item, dict):
        meta = item.get("metadata") or {}
        return str(meta.get("name")), dict(meta.get("labels") or {})
    return str(item.metadata.name), dict(item.metadata.labels or {})


def injected(item: dict[str, Any]) -> bool:
    """Chaos Mesh says the NetworkChaos is in place in every selected pod (and it is not on
    its way out: a deleted one keeps its old conditions until its finalizer is done)."""
    if (item.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (item.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "AllInjected" and c.get("status") == "True" for c in conditions)
