"""Stand-ins for the APIs the ambiguous faults use (k8s_fakes.py has the rest): NetworkPolicies,
Chaos Mesh's NetworkChaos through CustomObjectsApi, SelfSubjectAccessReview, and a shell that
runs the pause and resume commands in a fake pod. Like k8s_fakes, they record every call and
refuse what the chaos Role does not cover; they model no network, only what the API answers.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from k8s_fakes import NS, ApiError, FakeCluster, FakePod, _matches, _Recorder
from kubernetes import client as k8s

from harness.platforms.kubernetes.checks import EXEC_PERMISSIONS, Permission, role_permissions
from harness.platforms.kubernetes.manifests import k8s_dir, render_overlay

__all__ = [
    "FakeAuthorizationV1Api",
    "FakeCustomObjectsApi",
    "FakeNetworkingV1Api",
    "chaos_role",
    "run_shell",
]

_STATES = "grep -H '^State:' /proc/[0-9]*/status"
_GREP_TCP = re.compile(r"grep -h '(:[0-9A-F]{4} )' /proc/net/tcp /proc/net/tcp6 2>/dev/null")
_LS_FDS = "ls -l /proc/[0-9]*/fd 2>/dev/null"


def chaos_role(overlay: str = "kind", exec_rbac: bool = False) -> set[Permission]:
    """What the chaos identity may do with the real manifests (and the opt-in exec Role)."""
    import yaml

    docs = render_overlay(overlay)
    if exec_rbac:
        docs += list(yaml.safe_load_all((k8s_dir() / "base" / "chaos-rbac-exec.yaml").read_text()))
    granted: set[Permission] = set()
    for doc in docs:
        if doc["kind"] == "Role":
            granted |= role_permissions(doc)
    assert not exec_rbac or granted >= EXEC_PERMISSIONS
    return granted


def run_shell(cluster: FakeCluster, pod: FakePod, command: list[str]) -> str:
    """`sh -c '<statements>'` in `pod`, for the statements pause and resume use: signals to
    every process but PID 1 and the shell, a short sleep, and the processes' states. With
    `share_pid` the pod's PID 1 is its pause process and the app is pid 7; without, the app is
    PID 1 and ignores SIGSTOP sent from inside its container. And those held work uses: an echo,
    a grep of the pod's `proc_tcp` lines, and an `ls -l` of its fds (`proc_fds`)."""
    if len(command) != 3 or command[:2] != ["sh", "-c"]:
        raise AssertionError(f"the fake shell only runs `sh -c <script>`, got {command!r}")
    out = []
    for statement in (s.strip() for s in command[2].split(";")):
        if statement == "kill -STOP -1":
            pod.stopped = cluster.share_pid  # as PID 1 the app ignores it
        elif statement == "kill -CONT -1":
            pod.stopped = False
        elif re.fullmatch(r"sleep [0-9.]+", statement) or statement == "true":
            pass
        elif re.fullmatch(r"echo '[^']*'", statement):
            out.append(statement[6:-1])
        elif found := _GREP_TCP.fullmatch(statement):
            out += [line for line in pod.proc_tcp.splitlines() if found[1] in line]
        elif statement == _LS_FDS:
            out += pod.proc_fds.splitlines()
        elif statement == _STATES:
            app = "T (stopped)" if pod.stopped else "S (sleeping)"
            table = {1: "S (sleeping)", 7: app} if cluster.share_pid else {1: app}
            table[23] = "R (running)"  # the shell itself
            out += [f"/proc/{pid}/status:State:\t{state}" for pid, state in table.items()]
        else:
            raise AssertionError(f"the fake shell cannot run {statement!r}")
    return "".join(line + "\n" for line in out)


class FakeNetworkingV1Api(_Recorder):
    def create_namespaced_network_policy(self, namespace: str, body: Any, **_: Any) -> None:
        self._record("create_namespaced_network_policy")
        name = body["metadata"]["name"]
        if name in self.cluster.policies:
            raise ApiError(409, "Conflict")
        self.cluster.policies[name] = copy.deepcopy(body)

    def delete_namespaced_network_policy(self, name: str, namespace: str, **_: Any) -> None:
        self._record("delete_namespaced_network_policy")
        if self.cluster.policies.pop(name, None) is None:
            raise ApiError(404, "Not Found")

    def list_namespaced_network_policy(
        self, namespace: str, label_selector: str | None = None, **_: Any
    ) -> Any:
        self._record("list_namespaced_network_policy")
        return k8s.V1NetworkPolicyList(
            items=[
                k8s.V1NetworkPolicy(
                    metadata=k8s.V1ObjectMeta(
                        name=name, namespace=NS, labels=dict(body["metadata"].get("labels") or {})
                    )
                )
                for name, body in sorted(self.cluster.policies.items())
                if _matches(body["metadata"].get("labels") or {}, label_selector)
            ]
        )


class FakeCustomObjectsApi(_Recorder):
    """NetworkChaos objects, as Chaos Mesh's controller would move them: injected after
    `inject_delay`, gone `recover_delay` after a deletion (its finalizer)."""

    def _served(self, method: str, group: str, plural: str) -> None:
        self._record(f"{method}:{group}/{plural}")
        if f"{plural}.{group}" not in self.cluster.crds:
            raise ApiError(404, "Not Found")

    def _view(self, entry: dict[str, Any]) -> dict[str, Any]:
        done = (
            self.cluster.injects
            and self.cluster.now >= entry["created"] + self.cluster.inject_delay
        )
        status = {"conditions": [{"type": "AllInjected", "status": "True" if done else "False"}]}
        view = {**copy.deepcopy(entry["body"]), "status": status}
        if entry.get("deleted") is not None:  # its finalizer holds it until the rules are out
            view["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return view

    def _live(self) -> dict[str, dict[str, Any]]:
        self.cluster.reconcile()
        return self.cluster.chaos

    def list_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str,
        label_selector: str | None = None, limit: int | None = None, **_: Any,
    ) -> dict[str, Any]:  # fmt: skip
        self._served("list_namespaced_custom_object", group, plural)
        items = [
            self._view(entry)
            for _, entry in sorted(self._live().items())
            if _matches(entry["body"]["metadata"].get("labels") or {}, label_selector)
        ]
        return {"apiVersion": f"{group}/{version}", "items": items[:limit] if limit else items}

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: Any, **_: Any
    ) -> dict[str, Any]:
        self._served("create_namespaced_custom_object", group, plural)
        name = body["metadata"]["name"]
        if name in self._live():
            raise ApiError(409, "Conflict")
        self.cluster.chaos[name] = {"body": copy.deepcopy(body), "created": self.cluster.now}
        return copy.deepcopy(body)

    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **_: Any
    ) -> dict[str, Any]:
        self._served("delete_namespaced_custom_object", group, plural)
        entry = self._live().get(name)
        if entry is None:
            raise ApiError(404, "Not Found")
        entry.setdefault("deleted", self.cluster.now)
        return {"kind": "Status", "status": "Success"}


class FakeAuthorizationV1Api(_Recorder):
    def create_self_subject_access_review(self, body: Any, **_: Any) -> Any:
        """Allowed when the chaos Role of the fake cluster grants it (or no Role is set)."""
        self._record("create_self_subject_access_review")
        attributes = body["spec"]["resourceAttributes"]
        resource = attributes["resource"]
        if attributes.get("subresource"):
            resource += "/" + attributes["subresource"]
        asked = (attributes.get("group") or "", resource, attributes["verb"])
        assert attributes.get("namespace") == NS, attributes
        self.cluster.reviews.append(asked)
        rbac = self.cluster.chaos_rbac
        allowed = self.who != "chaos" or rbac is None or asked in rbac
        spec = k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                namespace=attributes["namespace"],
                group=asked[0],
                resource=attributes["resource"],
                subresource=attributes.get("subresource"),
                verb=asked[2],
            )
        )
        return k8s.V1SelfSubjectAccessReview(
            spec=spec, status=k8s.V1SubjectAccessReviewStatus(allowed=allowed)
        )
