"""The Kubernetes platform's decisions, apart from the API calls: which pods to kill, what proves
a kill landed, when a workload counts as rolled out, where the harness reaches the node.

Everything here works on plain values (`PodInfo`, a workload's spec and status as dicts), so it
is tested on crafted inputs with no cluster and no fake.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError, PlatformError
from harness.platforms.base import ReplicaStatus
from harness.platforms.kubernetes.manifests import NAME_LABEL, OVERLAYS

__all__ = [
    "FATAL_REASONS",
    "PodInfo",
    "choose_victims",
    "grace_for_signal",
    "match_replacements",
    "node_host",
    "overlay_for_context",
    "pod_info",
    "replicas_to_start",
    "rollout_done",
    "settled",
]

# Waiting reasons that do not fix themselves: fail at once instead of waiting for the timeout.
FATAL_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


@dataclass(frozen=True)
class PodInfo:
    """What the platform needs to know about one pod."""

    name: str
    uid: str
    service: str
    phase: str
    ready: bool
    terminating: bool
    restarts: int
    created: float  # seconds since the epoch
    started: float | None
    reason: str | None  # a container's waiting or terminated reason (CrashLoopBackOff, OOMKilled…)

    @property
    def live(self) -> bool:
        """Counts as a replica: not on its way out."""
        return not self.terminating and self.phase not in ("Succeeded", "Failed")

    @property
    def state(self) -> str:
        if self.terminating:
            return "Terminating"
        return self.reason or self.phase

    def status(self, now: float | None = None) -> ReplicaStatus:
        now = time.time() if now is None else now
        return ReplicaStatus(
            service=self.service,
            name=self.name,
            pid=None,
            uid=self.uid,
            state=self.state,
            uptime_s=max(now - self.started, 0.0) if self.started else 0.0,
            restarts=self.restarts,
            ready=self.ready and not self.terminating,
        )


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


def pod_info(pod: Any) -> PodInfo:
    """A kubernetes.client.V1Pod, reduced."""
    meta, status = pod.metadata, pod.status
    conditions = (status.conditions if status else None) or []
    containers = (status.container_statuses if status else None) or []
    reason = None
    for c in containers:
        state = c.state
        if state and state.waiting and state.waiting.reason:
            reason = state.waiting.reason
            break
        if state and state.terminated and state.terminated.reason:
            reason = state.terminated.reason
            break
    return PodInfo(
        name=meta.name,
        uid=meta.uid,
        service=(meta.labels or {}).get(NAME_LABEL, ""),
        phase=(status.phase if status else None) or "Unknown",
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        terminating=meta.deletion_timestamp is not None,
        restarts=sum(c.restart_count or 0 for c in containers),
        created=_epoch(meta.creation_timestamp) or 0.0,
        started=_epoch(status.start_time) if status else None,
        reason=reason,
    )


def grace_for_signal(signal: str) -> int | None:
    """KILL deletes with grace 0 (SIGKILL at once); TERM uses the pod's own grace period."""
    wanted = signal.upper().removeprefix("SIG")
    if wanted == "KILL":
        return 0
    if wanted == "TERM":
        return None
    raise PlatformError(
        f"signal {signal!r} is not supported on kubernetes: use 'KILL' (delete with grace 0) "
        "or 'TERM' (delete with the pod's grace period)"
    )


def choose_victims(
    pods: list[PodInfo], service: str, count: int, rng: random.Random
) -> list[PodInfo]:
    """`count` live pods of `service` (all of them if fewer run, as on the local platform),
    chosen at random; never a pod of another service."""
    if count < 1:
        raise PlatformError(f"count must be at least 1, got {count}")
    candidates = sorted((p for p in pods if p.service == service and p.live), key=lambda p: p.name)
    if not candidates:
        raise PlatformError(f"no running pod of {service!r} to kill")
    return rng.sample(candidates, min(count, len(candidates)))


def match_replacements(
    victims: list[PodInfo], before: set[str], now: list[PodInfo], same_name: bool
) -> dict[str, PodInfo]:
    """Each victim's replacement (victim uid → new pod), once the victim is gone and a new
    incarnation is ready. A StatefulSet brings the same name back with a new uid; a Deployment
    brings a pod with a new name, so new pods go to victims in order of creation."""
    present = {p.uid for p in now}
    fresh = sorted(
        (p for p in now if p.uid not in before and p.ready and p.live),
        key=lambda p: (p.created, p.name),
    )
    found: dict[str, PodInfo] = {}
    if same_name:
        for victim in victims:
            match = next((p for p in fresh if p.name == victim.name), None)
            if match and victim.uid not in present:
                found[victim.uid] = match
        return found
    unclaimed = iter(fresh)
    for victim in sorted(victims, key=lambda p: p.name):
        if victim.uid in present:
            continue
        match = next(unclaimed, None)
        if match is None:
            break
        found[victim.uid] = match
    return found


def settled(pods: list[PodInfo], service: str, replicas: int) -> bool:
    """Exactly `replicas` pods of `service`, all ready, none on its way out."""
    mine = [p for p in pods if p.service == service]
    live = [p for p in mine if p.live]
    return len(mine) == replicas and len(live) == replicas and all(p.ready for p in live)


def rollout_done(workload: dict[str, Any]) -> tuple[bool, str]:
    """Like `kubectl rollout status`, for a Deployment or StatefulSet as a dict
    (`ApiClient().sanitize_for_serialization(obj)`): (done, what it waits for)."""
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    meta = workload.get("metadata") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return False, "the controller has not seen the new spec yet"
    updated = int(status.get("updatedReplicas", 0))
    ready = int(status.get("readyReplicas", 0))
    total = int(status.get("replicas", 0))
    if workload.get("kind") == "StatefulSet":
        if (
            status.get("updateRevision")
            and status.get("currentRevision") != status.get("updateRevision")
            and want
        ):
            return False, f"{updated} of {want} pods updated"
    elif updated < want:
        return False, f"{updated} of {want} pods updated"
    if total > want:
        return False, f"{total - want} old pods still terminating"
    if ready < want:
        return False, f"{ready} of {want} pods ready"
    return True, "rolled out"


def replicas_to_start(service: str, state: dict[str, Any], manifest_replicas: int | None) -> int:
    """How many replicas `start` brings back: what `stop` remembered, else the last count set by
    `scale`/`up`, else the manifests', else 1."""
    for key in ("stopped", "desired"):
        remembered = (state.get(key) or {}).get(service)
        if remembered:
            return int(remembered)
    return manifest_replicas or 1


def node_host(server_url: str, override: str | None) -> str:
    """Where NodePorts answer from the harness's machine: SAGAQUAKE_K8S_NODE_HOST, else the API
    server's host. kind serves both the API and the mapped NodePorts on 127.0.0.1; minikube's
    API server is the node itself (192.168.49.2 with the docker driver on Linux)."""
    if override:
        return override
    host = urlsplit(server_url).hostname
    if not host:
        raise ConfigError(
            f"cannot tell the node's address from the API server {server_url!r}: "
            "set SAGAQUAKE_K8S_NODE_HOST"
        )
    return "127.0.0.1" if host in ("localhost", "0.0.0.0") else host


def overlay_for_context(context: str | None, override: str | None) -> str:
    """SAGAQUAKE_K8S_OVERLAY, else kind for a `kind-*` context and minikube for `minikube`."""
    if override:
        if override not in OVERLAYS:
            raise ConfigError(
                f"SAGAQUAKE_K8S_OVERLAY={override!r} is not one of {', '.join(OVERLAYS)}"
            )
        return override
    if context and context.startswith("kind-"):
        return "kind"
    if context and "minikube" in context:
        return "minikube"
    raise ConfigError(
        f"cannot tell which overlay fits the kubernetes context {context!r}: "
        f"set SAGAQUAKE_K8S_OVERLAY to one of {', '.join(OVERLAYS)}"
    )
