"""The `Deploy` protocol on Kubernetes: patch a Deployment's container environment and let the
Deployment roll its pods, watching which pod goes and which comes, when.

A rolling update of a Deployment is exactly the deploy the experiment wants: the manifests'
default strategy (maxSurge 25 %, maxUnavailable 25 %) rounds to one new pod at a time for two
replicas, each ready before an old one is deleted. The patch is a strategic merge of the
container's `env` (merged by name), sent as yourself, not as the chaos ServiceAccount: a deploy
is an operator's action, and the chaos Role may only scale. What was set is remembered in the
platform's state file (`deploys`), so `deployed_env` answers from another process.

Evidence per replaced pod (`DeployEvidence`): the old pod's uid and the new one's, when the old
pod was first seen going (its deletion, or gone), when the new one was first seen ready, and
`extra.pod`, the new pod's name, which is the host name in the worker's Temporal identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import PlatformError
from harness.platforms.base import DeployEvidence
from harness.platforms.kubernetes.pods import FATAL_REASONS, PodInfo, rollout_done

__all__ = ["container_env", "deploy", "deployed_env", "env_patch"]

_POLL_S = 0.5
_STATE_KEY = "deploys"


def env_patch(container: str, env: dict[str, str]) -> dict[str, Any]:
    """The strategic merge patch that sets `env` in `container` of a Deployment's pod template."""
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                        }
                    ]
                }
            }
        }
    }


def _container(deployment: Any, service: str) -> Any:
    containers = list(deployment.spec.template.spec.containers or [])
    found = next(
        (c for c in containers if c.name == service), containers[0] if containers else None
    )
    if found is None:
        raise PlatformError(f"deployment {service!r} has no container to deploy to")
    return found


def container_env(deployment: Any, service: str) -> dict[str, str]:
    """The literal `env` of the service's container in a Deployment (V1Deployment)."""
    return {
        e.name: e.value for e in (_container(deployment, service).env or []) if e.value is not None
    }


def deployed_env(platform: Any, service: str) -> dict[str, str]:
    """What deploys set on `service` (the platform's state file)."""
    return dict((platform._state().get(_STATE_KEY) or {}).get(service) or {})


def deploy(
    platform: Any, service: str, env: dict[str, str], wait_s: float = 120.0
) -> list[DeployEvidence]:
    """Patch the service's Deployment so its container runs with `env` added, and follow the
    rollout until every pod is a new one and ready (`wait_s` per replica). Nothing to do (and
    [] returned) when the container already has `env`. PlatformError for a StatefulSet (Redis,
    Temporal) or a rollout that does not finish in time."""
    kind, name = platform._workload(service)
    if kind != "Deployment":
        raise PlatformError(f"{service!r} is a {kind}: only a Deployment can be deployed to")
    env = {str(k): str(v) for k, v in env.items()}
    apps = platform.clients.apps
    ns = platform.namespace
    current = platform._call(f"read deployment {name!r}", apps.read_namespaced_deployment, name, ns)
    _remember(platform, service, env)
    if all(container_env(current, service).get(k) == v for k, v in env.items()):
        return []
    before = [p for p in platform._pods(service) if p.live]
    container = _container(current, service).name
    patch = env_patch(container, env)
    platform._call(
        f"patch the environment of deployment {name!r}",
        apps.patch_namespaced_deployment,
        name,
        ns,
        patch,
    )
    replicas = max(int(current.spec.replicas or 0), 1)
    return follow_rollout(
        lambda: platform._pods(service),
        lambda: _serialized(platform, name),
        before,
        env,
        wait_s * replicas,
        platform._clock,
        platform._sleep,
    )


def follow_rollout(
    pods: Callable[[], list[PodInfo]],
    workload: Callable[[], dict[str, Any]],
    before: list[PodInfo],
    env: dict[str, str],
    wait_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    now: Callable[[], float] | None = None,
) -> list[DeployEvidence]:
    """Poll the pods while the Deployment rolls: the time each old pod is first seen going and
    each new pod first seen ready; pair them in order (the n-th old pod to go with the n-th new
    pod to be ready) once the rollout is done."""
    import time

    wall = now or time.time
    old = {p.uid: p for p in before}
    gone_at: dict[str, float] = {}
    ready_at: dict[str, float] = {}
    new: dict[str, PodInfo] = {}
    deadline = clock() + wait_s
    while True:
        seen = pods()
        by_uid = {p.uid: p for p in seen}
        t = wall()
        for uid in old:
            current = by_uid.get(uid)
            if uid not in gone_at and (current is None or not current.live):
                gone_at[uid] = t
        for p in seen:
            if p.uid not in old and p.live:
                new[p.uid] = p
                if p.ready and p.uid not in ready_at:
                    ready_at[p.uid] = t
        done, why = rollout_done(workload())
        if done and len(gone_at) == len(old):
            break
        fatal = [p for p in seen if p.reason in FATAL_REASONS]
        if fatal or clock() >= deadline:
            states = ", ".join(f"{p.name} ({p.state})" for p in seen) or "no pods"
            raise PlatformError(
                f"the rollout did not finish within {wait_s:.0f} s ({why}): {states}"
            )
        sleep(_POLL_S)
    gone = sorted(gone_at, key=lambda uid: gone_at[uid])
    came = sorted(ready_at, key=lambda uid: ready_at[uid])
    out = []
    for i, uid in enumerate(gone):
        pod = new[came[i]] if i < len(came) else None
        out.append(
            DeployEvidence(
                name=pod.name if pod else old[uid].name,
                old_uid=uid,
                new_uid=pod.uid if pod else None,
                env=dict(env),
                stopped_at=gone_at[uid],
                ready_at=ready_at[pod.uid] if pod else None,
                extra={"pod": pod.name if pod else None, "old_pod": old[uid].name},
            )
        )
    return out


def _serialized(platform: Any, name: str) -> dict[str, Any]:
    from kubernetes.client import ApiClient

    found = platform._call(
        f"read deployment {name!r}",
        platform.clients.apps.read_namespaced_deployment,
        name,
        platform.namespace,
    )
    data = found if isinstance(found, dict) else ApiClient().sanitize_for_serialization(found)
    return {**data, "kind": "Deployment"}


def _remember(platform: Any, service: str, env: dict[str, str]) -> None:
    state = platform._state()
    section = state.setdefault(_STATE_KEY, {})
    section[service] = {**(section.get(service) or {}), **env}
    platform._save_state(state)
