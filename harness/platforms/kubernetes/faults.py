"""The ambiguous faults on Kubernetes (base.py's optional Pause, Partition and ReplyLoss), as
the chaos identity; the objects and commands themselves are in fault_specs.py.

- pause: `kill -STOP -1` from an exec in each pod stops every process the container's user may
  signal but PID 1 and the shell. The stack's pods share their process namespace, so PID 1 is
  the pod's pause process and the app stops (as PID 1 it would ignore a SIGSTOP sent from inside
  its container). resume sends SIGCONT the same way. Exec needs pods/exec, which the chaos
  identity has only by opting in (k8s/base/chaos-rbac-exec.yaml); `unsupported` asks the API
  server (SelfSubjectAccessReview) before anything is tried. `exec_each` runs another command
  the same way, under the same check (the platform's held_work reads a pod's sockets with it).
- partition: a NetworkPolicy selecting the service's pods, with no ingress rule (deny all).
- reply loss: a Chaos Mesh NetworkChaos (loss 100 %, direction `to`) on the service's pods, only
  where Chaos Mesh is installed; a namespaced list answering 404 tells it is not.
Every object carries part-of=sagaquake and sagaquake.io/fault=<kind>, so heal (and up and down,
after a crashed run) finds them by label alone, whoever made them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError, PlatformError
from harness.platforms.base import (
    FAULT_PRIMITIVES,
    NETWORK_FAULTS,
    SERVICES,
    NetFault,
    PauseEvidence,
)
from harness.platforms.kubernetes.api import (
    REQUEST_TIMEOUT_S,
    Clients,
    api_error,
    service_account_of,
    status_of,
)
from harness.platforms.kubernetes.fault_specs import (
    CHAOS_MESH,
    LISTENING,
    PAUSE_COMMAND,
    RESUME_COMMAND,
    SERVICE_LABEL,
    execable,
    fault_selector,
    injected,
    name_and_labels,
    network_chaos,
    network_policy,
    process_states,
    stopped_pids,
)
from harness.platforms.kubernetes.pods import PodInfo

__all__ = ["KubernetesFaults"]

logger = logging.getLogger("sagaquake.k8s")

_EXEC = (("", "pods/exec", "create"), ("", "pods/exec", "get"))
_POLICIES = tuple(("networking.k8s.io", "networkpolicies", v) for v in ("create", "delete", "list"))
_CHAOS = tuple((CHAOS_MESH[0], CHAOS_MESH[2], v) for v in ("create", "delete"))
_REAPPLY = "re-apply the stack (`make kind-up` or `make minikube-up`)"
_CHAOS_MESH_HINT = (
    "install Chaos Mesh (helm install chaos-mesh chaos-mesh/chaos-mesh -n chaos-mesh "
    "--create-namespace; on kind add --set chaosDaemon.runtime=containerd "
    "--set chaosDaemon.socketPath=/run/containerd/containerd.sock), see docs/kubernetes.md"
)


class KubernetesFaults:
    """The fault primitives over `Clients`: faults act as the chaos identity; `sweep` (for up
    and down) removes what any run left, as yourself."""

    def __init__(
        self,
        clients: Callable[[], Clients],
        namespace: str,
        pods: Callable[[str | None, bool], list[PodInfo]],
        workloads: Callable[[], list[dict[str, Any]]],
        *,
        impersonate: str | None,
        rng: random.Random,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        wait_s: float = 30.0,
    ) -> None:
        self._clients, self.namespace = clients, namespace
        self._pods, self._workloads = pods, workloads
        self._impersonate = impersonate
        self._rng, self._clock, self._sleep = rng, clock, sleep
        self.wait_s = wait_s
        self._allowed: dict[tuple[str, str, str], bool] = {}

    # -- what the chaos identity may do --------------------------------------------------------

    def _may(self, group: str, resource: str, verb: str) -> bool:
        """A SelfSubjectAccessReview as the chaos identity (any identity may ask), cached."""
        key = (group, resource, verb)
        if key not in self._allowed:
            name, _, sub = resource.partition("/")
            attributes = {"namespace": self.namespace, "group": group, "resource": name,
                          "subresource": sub, "verb": verb}  # fmt: skip
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes}}  # fmt: skip
            try:
                review = self._clients().chaos_auth.create_self_subject_access_review(
                    body, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                raise api_error(exc, f"ask whether chaos may {verb} {resource}") from None
            self._allowed[key] = bool(review.status and review.status.allowed)
        return self._allowed[key]

    def _denied(self, permissions: tuple[tuple[str, str, str], ...]) -> list[str]:
        return [f"{r} {v}" for g, r, v in permissions if not self._may(g, r, v)]

    def _exec_problem(self, needs: str = "pause needs to send SIGSTOP") -> str | None:
        who = self._impersonate
        if who and service_account_of(who) is None:
            return (
                f"exec cannot act as {who!r} (the kubernetes client drops impersonation on exec): "
                "set SAGAQUAKE_K8S_IMPERSONATE to a ServiceAccount or to none"
            )
        denied = self._denied(_EXEC)
        if denied:
            return (
                f"the chaos identity {who or 'you'!r} may not exec into pods "
                f"({', '.join(denied)}), which {needs}: opt in with SAGAQUAKE_K8S_POD_EXEC=1 and "
                f"{_REAPPLY}, which applies k8s/base/chaos-rbac-exec.yaml; or set "
                "SAGAQUAKE_K8S_IMPERSONATE=none to act as yourself"
            )
        return None

    def unsupported(self, fault: str) -> str | None:
        if fault == "pause":
            problem = self._exec_problem()
            if problem:
                return problem
            apart = sorted(
                w["metadata"]["name"]
                for w in self._workloads()
                if w["metadata"]["name"] in SERVICES
                and not ((w.get("spec") or {}).get("template") or {})
                .get("spec", {})
                .get("shareProcessNamespace")
            )
            if apart:
                return (
                    f"the pods of {', '.join(apart)} run their app as PID 1, which ignores a "
                    f"SIGSTOP sent from inside its container: {_REAPPLY} so they share a "
                    "process namespace (shareProcessNamespace: true)"
                )
            return None
        if fault == "partition":
            denied = self._denied(_POLICIES)
            if denied:
                return f"the chaos Role lacks {', '.join(denied)}: {_REAPPLY}"
            return None
        if fault == "reply_loss":
            return self._chaos_mesh_problem()
        if fault == "side_by_side":
            return (
                "a blue/green deploy of versioned workers is the Temporal Worker Controller's job "
                "on Kubernetes (it runs one Deployment per version and retires drained ones); "
                "run this experiment on the local platform, or rolling-deploy here"
            )
        return f"unknown fault primitive {fault!r}; one of: {', '.join(FAULT_PRIMITIVES)}"

    def _chaos_mesh_problem(self) -> str | None:
        group, version, plural = CHAOS_MESH
        try:  # a namespaced list: no cluster-wide permission needed to tell the CRD is there
            self._clients().chaos_custom.list_namespaced_custom_object(
                group, version, self.namespace, plural, limit=1, _request_timeout=REQUEST_TIMEOUT_S
            )
        except Exception as exc:
            if status_of(exc) == 404:
                return (
                    f"Chaos Mesh is not installed (no CRD networkchaos.{group}): {_CHAOS_MESH_HINT}"
                )
            if status_of(exc) == 403:
                return f"the chaos Role lacks networkchaos list: {_REAPPLY}"
            raise api_error(exc, f"list NetworkChaos in namespace {self.namespace!r}") from None
        denied = self._denied(_CHAOS)
        return f"the chaos Role lacks {', '.join(denied)}: {_REAPPLY}" if denied else None

    # -- pause -------------------------------------------------------------------------------

    def _exec(self, pod: PodInfo, command: list[str], chaos: bool) -> str | None:
        """The command's output, or None when the pod is gone."""
        clients = self._clients()
        run = clients.chaos_exec if chaos else clients.admin_exec
        if run is None:
            raise PlatformError("these kubernetes clients cannot exec into pods")
        try:
            return run(pod.name, command)
        except HarnessError:
            raise
        except Exception as exc:
            if status_of(exc) == 404:
                return None
            raise api_error(exc, f"exec {command[-1]!r} in pod {pod.name!r}") from None

    def pause(self, service: str, count: int | None = None) -> list[PauseEvidence]:
        problem = self._exec_problem()
        if problem:
            raise PlatformError(f"cannot pause {service!r}: {problem}")
        if count is not None and count < 1:
            raise PlatformError(f"count must be at least 1, got {count}")
        running = sorted(
            (p for p in self._pods(service, True) if execable(p)), key=lambda p: p.name
        )
        if not running:
            raise PlatformError(f"no running pod of {service!r} to pause")
        if count is not None:
            running = sorted(
                self._rng.sample(running, min(count, len(running))), key=lambda p: p.name
            )
        evidence = []
        for pod in running:
            out = self._exec(pod, PAUSE_COMMAND, chaos=True)
            states = process_states(out or "")
            frozen = stopped_pids(states)
            extra: dict[str, Any] = {
                "namespace": self.namespace,
                "stopped_pids": frozen,
                "processes": {str(pid): state for pid, state in sorted(states.items())},
            }
            if out is None:
                extra["why"] = "the pod was gone"
            elif not frozen:
                extra["why"] = (
                    "no process stopped: the app is PID 1 of its container (no "
                    "shareProcessNamespace?) or runs as another user"
                    if states
                    else f"unexpected output: {out.strip()[-200:]!r}"
                )
            evidence.append(PauseEvidence(pod.name, pod.uid, bool(frozen), extra))
        return evidence

    def exec_each(
        self, service: str, command: list[str], needs: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """`command` in every running pod of `service` as the chaos identity: (output by pod
        name, error by pod name); pods gone meanwhile are left out. Refused as pause is without
        pods/exec (`needs` says what for); one pod failing (its container restarting) is
        reported, not raised, unless every pod failed."""
        problem = self._exec_problem(needs)
        if problem:
            raise PlatformError(f"cannot exec into the pods of {service!r}: {problem}")
        outputs, errors = {}, {}
        for pod in sorted(
            (p for p in self._pods(service, True) if execable(p)), key=lambda p: p.name
        ):
            try:
                out = self._exec(pod, command, chaos=True)
            except HarnessError as exc:
                errors[pod.name] = str(exc)
                continue
            if out is not None:
                outputs[pod.name] = out
        if errors and not outputs:
            raise PlatformError(
                f"could not exec into any pod of {service!r}: "
                + "; ".join(f"{name}: {error}" for name, error in sorted(errors.items()))
            )
        return outputs, errors

    def resume(self, service: str | None = None) -> list[str]:
        """SIGCONT in every running pod of `service` (of the stack), whoever stopped them; the
        names of the pods that had a stopped process. Without exec rights nothing of ours can
        be stopped, so it returns [] instead of failing a rollback."""
        if self._exec_problem():
            return []
        return self._resume(service, chaos=True)

    def _resume(self, service: str | None, chaos: bool) -> list[str]:
        names, errors = [], []
        for pod in sorted(self._pods(service, chaos), key=lambda p: p.name):
            if not execable(pod):
                continue
            try:
                out = self._exec(pod, RESUME_COMMAND, chaos)
            except HarnessError as exc:
                errors.append(str(exc))
                continue
            if out is not None and stopped_pids(process_states(out)):
                names.append(pod.name)
        if errors:
            raise PlatformError("could not resume every pod: " + "; ".join(errors))
        return names

    # -- partition and reply loss ---------------------------------------------------------------

    def _listening(self, service: str) -> None:
        if service not in LISTENING:
            raise PlatformError(
                f"{service!r} has no port of its own to cut off; cut it off from what it calls "
                f"instead ({', '.join(s for s in LISTENING if s != 'order-service')})"
            )

    def partition(self, service: str) -> NetFault:
        self._listening(service)
        body = network_policy(service, self.namespace)
        name = body["metadata"]["name"]
        existed = False
        try:
            self._clients().chaos_networking.create_namespaced_network_policy(
                self.namespace, body, _request_timeout=REQUEST_TIMEOUT_S
            )
        except Exception as exc:
            if status_of(exc) != 409:
                raise api_error(exc, f"create NetworkPolicy {name!r}") from None
            existed = True  # in place already: partitioning twice is one partition
        extra = {
            "namespace": self.namespace,
            "kind": "NetworkPolicy",
            "existed": existed,
            "enforced_by": "the cluster's network plugin (kindnet from kind 0.24, calico)",
        }
        return NetFault("partition", service, (), name, None, extra)

    def lose_replies(self, service: str) -> NetFault:
        """Create the NetworkChaos and wait until Chaos Mesh says it is injected in every pod;
        one that is not within `wait_s` is deleted again and reported."""
        self._listening(service)
        problem = self._chaos_mesh_problem()
        if problem:
            raise PlatformError(f"cannot lose the replies of {service!r}: {problem}")
        group, version, plural = CHAOS_MESH
        body = network_chaos(service, self.namespace)
        name = body["metadata"]["name"]
        custom = self._clients().chaos_custom
        started = self._clock()

        def create() -> None:
            try:
                custom.create_namespaced_custom_object(
                    group, version, self.namespace, plural, body, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                if status_of(exc) != 409:  # 409: in place already, or still being taken out
                    raise api_error(exc, f"create NetworkChaos {name!r}") from None

        create()
        while True:
            found = [
                i for i in self._chaos_objects(custom, service) if name_and_labels(i)[0] == name
            ]
            if not found:  # the one a heal was taking out is gone now: ours can go in
                create()
            elif injected(found[0]):
                break
            if self._clock() - started >= self.wait_s:
                status = (found[0].get("status") if found else None) or {}
                self._heal(service, chaos=True, kinds=("reply_loss",))
                raise PlatformError(
                    f"NetworkChaos {name!r} was not injected within {self.wait_s:.0f} s "
                    f"(conditions: {status.get('conditions')!r}); it was deleted again. Is "
                    "chaos-daemon running on every node, and does the node's kernel have "
                    "sch_netem?"
                )
            self._sleep(0.5)
        extra = {
            "namespace": self.namespace,
            "kind": "NetworkChaos",
            "waited_s": round(self._clock() - started, 3),
            "caveat": "netem drops every packet the pods send, SYN-ACKs too: requests on "
            "connections opened before the fault are performed and lose their replies; new "
            "connections time out as in a partition",
        }
        return NetFault("reply_loss", service, (), name, None, extra)

    def _chaos_objects(self, custom: Any, service: str | None) -> list[dict[str, Any]]:
        """Our NetworkChaos objects; [] where Chaos Mesh is absent (404) or the identity may
        not list them (403: then it could not have made any either)."""
        group, version, plural = CHAOS_MESH
        try:
            found = custom.list_namespaced_custom_object(
                group, version, self.namespace, plural,
                label_selector=fault_selector("reply_loss", service),
                _request_timeout=REQUEST_TIMEOUT_S,
            )  # fmt: skip
        except Exception as exc:
            if status_of(exc) in (403, 404):
                return []
            raise api_error(exc, f"list NetworkChaos in namespace {self.namespace!r}") from None
        return list((found or {}).get("items") or [])

    def heal(self, service: str | None = None) -> list[NetFault]:
        return self._heal(service, chaos=True)

    def _heal(
        self, service: str | None, chaos: bool, kinds: tuple[str, ...] = NETWORK_FAULTS
    ) -> list[NetFault]:
        """Delete our NetworkPolicies and NetworkChaos objects of `service` (all when None);
        wait until Chaos Mesh has taken its rules out (its finalizer), up to `wait_s`."""
        clients = self._clients()
        networking = clients.chaos_networking if chaos else clients.networking
        custom = clients.chaos_custom if chaos else clients.custom
        removed: list[NetFault] = []

        def gone(kind: str, name: str, labels: dict[str, str], extra: dict[str, Any]) -> None:
            removed.append(NetFault(kind, labels.get(SERVICE_LABEL, ""), (), name, None,
                                    {"namespace": self.namespace, **extra}))  # fmt: skip

        policies: list[Any] = []
        if "partition" in kinds:
            try:
                policies = networking.list_namespaced_network_policy(
                    self.namespace, label_selector=fault_selector("partition", service),
                    _request_timeout=REQUEST_TIMEOUT_S,
                ).items  # fmt: skip
            except Exception as exc:
                raise api_error(exc, f"list NetworkPolicies in {self.namespace!r}") from None
        for item in policies:
            name, labels = name_and_labels(item)
            try:
                networking.delete_namespaced_network_policy(
                    name, self.namespace, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                if status_of(exc) != 404:
                    raise api_error(exc, f"delete NetworkPolicy {name!r}") from None
            gone("partition", name, labels, {"kind": "NetworkPolicy"})
        deleted = {}
        for item in self._chaos_objects(custom, service) if "reply_loss" in kinds else []:
            name, labels = name_and_labels(item)
            group, version, plural = CHAOS_MESH
            try:
                custom.delete_namespaced_custom_object(
                    group, version, self.namespace, plural, name, _request_timeout=REQUEST_TIMEOUT_S
                )
            except Exception as exc:
                if status_of(exc) != 404:
                    raise api_error(exc, f"delete NetworkChaos {name!r}") from None
            deleted[name] = labels
        started = self._clock()
        left = set(deleted)
        while left and self._clock() - started < self.wait_s:
            self._sleep(0.5)
            left &= {name_and_labels(i)[0] for i in self._chaos_objects(custom, service)}
        for name, labels in sorted(deleted.items()):
            gone(
                "reply_loss", name, labels, {"kind": "NetworkChaos", "recovered": name not in left}
            )
        return removed

    def sweep(self) -> dict[str, Any]:
        """What any run left: heal everything and resume every pod, as yourself. For up and
        down, so it never raises: what fails is logged and returned."""
        found: dict[str, Any] = {"healed": [], "resumed": [], "errors": []}
        try:
            found["healed"] = [f.as_dict() for f in self._heal(None, chaos=False)]
        except HarnessError as exc:
            found["errors"].append(str(exc))
        try:
            found["resumed"] = self._resume(None, chaos=False)
        except HarnessError as exc:
            found["errors"].append(str(exc))
        for error in found["errors"]:
            logger.warning("sagaquake: leftover faults: %s", error)
        return found
