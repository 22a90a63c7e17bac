"""What a platform can do to the system: the small protocol `local` and `kubernetes` implement.

The chaos extension, the load runner and the verifier's live reader only ever talk to a
platform through this protocol, so one experiment file works on either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "FAULT_PRIMITIVES",
    "HTTP_SERVICES",
    "NETWORK_FAULTS",
    "SERVICES",
    "Deploy",
    "DeployEvidence",
    "Endpoints",
    "HeldWork",
    "KillEvidence",
    "NetFault",
    "Partition",
    "Pause",
    "PauseEvidence",
    "Platform",
    "ReplicaStatus",
    "ReplyLoss",
]

# Every part of the stack, by the name experiments and the CLI use for it.
SERVICES = (
    "redis",
    "temporal",
    "order-service",
    "payment-service",
    "inventory-service",
    "notification-service",
    "saga-worker",
    "projection",
)
# The services that answer HTTP (what held work reads from the sockets of; the others are
# reached over Redis or Temporal).
HTTP_SERVICES = ("order-service", "payment-service", "inventory-service", "notification-service")


@dataclass(frozen=True)
class Endpoints:
    """Where a client (load, probes, verifier) reaches the stack from the harness's machine."""

    order_api: str
    payment_api: str
    inventory_api: str
    notification_api: str
    redis_url: str
    temporal_address: str
    temporal_ui: str
    temporal_namespace: str = "default"
    task_queue: str = "order-saga"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica (a supervised process, or a pod) of a service."""

    service: str
    name: str
    pid: int | None  # the process id locally; None on Kubernetes
    uid: str  # what identifies this incarnation: the pid as text locally, the pod uid on Kubernetes
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, FATAL, EXITED (local); pod phase or container reason such as CrashLoopBackOff, Terminating (k8s)
    uptime_s: float
    restarts: int
    ready: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KillEvidence:
    """Proof that a kill landed: the replica came back as a new incarnation."""

    name: str
    old_uid: str
    new_uid: str | None  # None if it had not come back within the wait
    signal: str
    restarts_before: int
    restarts_after: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def landed(self) -> bool:
        return self.new_uid is not None and self.new_uid != self.old_uid

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "landed": self.landed}


@dataclass(frozen=True)
class PauseEvidence:
    """Proof that a replica was frozen: the kernel says its processes are stopped (or the
    exec into the pod succeeded), so connections are accepted and nothing answers."""

    name: str
    uid: str
    paused: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The network faults, by the name a NetFault carries; with "pause" and "side_by_side" (the
# `SideBySide` deploy), the optional primitives a platform may not support (`Platform.unsupported`).
NETWORK_FAULTS = ("partition", "reply_loss")
FAULT_PRIMITIVES = ("pause", *NETWORK_FAULTS, "side_by_side")


@dataclass(frozen=True)
class NetFault:
    """A network fault in place: what it drops, where it lives (to remove it), and, once read
    back, how many packets it dropped."""

    kind: str  # one of NETWORK_FAULTS
    service: str
    ports: tuple[int, ...]  # the service's ports whose traffic is cut (local), or () on Kubernetes
    where: str  # the nftables table and chain, or the NetworkPolicy / NetworkChaos name
    dropped_packets: int | None = None  # None where the platform cannot count
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ports": list(self.ports)}


@runtime_checkable
class Pause(Protocol):
    """Optional (Jepsen's `Pause`): freeze a service's replicas and let them go again."""

    def pause(self, service: str, count: int | None = None) -> list[PauseEvidence]:
        """Freeze `count` randomly chosen replicas of `service` (all when None)."""

    def resume(self, service: str | None = None) -> list[str]:
        """Let every frozen replica of `service` (of any service when None) go again; return
        their names. Idempotent, and it also finds what a crashed harness left frozen."""

    def nudge(self, service: str, ms: float) -> float:
        """Let the frozen replicas of `service` run for about `ms` milliseconds and freeze them
        again where they are (a kill then lands inside the work they were given); return the
        milliseconds they were let run, as measured (an upper bound)."""


@runtime_checkable
class Partition(Protocol):
    """Optional (Jepsen's `Partition`): callers' packets to a service are dropped, so they see
    connect and read time-outs, not refusals."""

    def partition(self, service: str) -> NetFault:
        """Cut every caller off from `service` until `heal`."""

    def heal(self, service: str | None = None) -> list[NetFault]:
        """Remove the network faults of `service` (all when None), with their final counters.
        Idempotent, and it also finds what a crashed harness left in place."""


@runtime_checkable
class ReplyLoss(Protocol):
    """Optional: the service receives and performs requests, but its replies never reach the
    caller (the ambiguous window: it did it, the caller never heard)."""

    def lose_replies(self, service: str) -> NetFault:
        """Drop every reply `service` sends until `heal`."""

    def heal(self, service: str | None = None) -> list[NetFault]:
        """As `Partition.heal`."""


@runtime_checkable
class HeldWork(Protocol):
    """Optional: see the work a replica holds unfinished, and kill chosen replicas, so that a
    kill can be proven to land mid-request."""

    def held_work(self, service: str) -> dict[str, dict[str, Any]]:
        """Per running replica of `service`, the work it holds and has not finished: requests
        in its sockets it has not read (HTTP services), entries delivered to it and not
        acknowledged (the projection); {} for a service where this cannot be seen."""

    def kill_replicas(
        self,
        names: list[str],
        signal: str = "KILL",
        wait_s: float = 30.0,
        on_signalled: Callable[[], object] | None = None,
    ) -> list[KillEvidence]:
        """Kill the named replicas and wait for their replacements, as `Platform.kill` does;
        `on_signalled` runs once the signal is sent, before the wait (a kill mid-request lets
        the replicas it froze go there, not once the victim is back)."""


@runtime_checkable
class Platform(Protocol):
    """Bring the system up and down, observe it, and break it on command."""

    name: str
    run_dir: Path

    def up(self, timeout_s: float = 120.0) -> None:
        """Start every service and return once each is ready (raise PlatformError otherwise)."""

    def down(self) -> None:
        """Stop everything this platform started; idempotent."""

    def is_up(self) -> bool:
        """Whether the stack of this platform is running."""

    def status(self) -> list[ReplicaStatus]:
        """Every replica of every service."""

    def endpoints(self) -> Endpoints:
        """Addresses reachable from the harness."""

    def kill(
        self, service: str, count: int = 1, signal: str = "KILL", wait_s: float = 30.0
    ) -> list[KillEvidence]:
        """Kill `count` randomly chosen replicas of `service` and wait for their replacements."""

    def stop(self, service: str) -> None:
        """Take every replica of `service` down until `start` (an outage)."""

    def start(self, service: str, wait_s: float = 60.0) -> None:
        """Bring `service` back after `stop`, at its previous replica count, and wait until ready."""

    def restart(self, service: str, wait_s: float = 60.0) -> None:
        """Stop and start every replica of `service`; return once it is ready again."""

    def scale(self, service: str, replicas: int, wait_s: float = 60.0) -> None:
        """Run `replicas` replicas of `service`."""

    def redis(self, *command: str) -> Any:
        """Run a Redis command (CONFIG SET maxmemory …) against the stack's Redis."""

    def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout_s: float = 60.0) -> None:
        """Return once every named service is ready; raise PlatformError with its last log lines."""

    def collect_logs(self, dest: Path) -> list[Path]:
        """Copy every process log into `dest` and return the files."""

    def unsupported(self, fault: str) -> str | None:
        """Why the fault primitive `fault` ("pause", "partition", "reply_loss") cannot run on
        this platform here, in one line that says what to install or grant; None when it can.
        Experiments ask before anything starts, so nothing is left half-applied."""


@dataclass(frozen=True)
class DeployEvidence:
    """One replica replaced by a deploy: which incarnation ran before, which runs now with the
    new environment, and when (epoch seconds)."""

    name: str  # the replica (local program) or the new pod
    old_uid: str  # the incarnation replaced (a pid locally, a pod uid on Kubernetes)
    new_uid: str | None  # None if no ready replacement came within the wait
    env: dict[str, str]  # what the deploy set in its environment
    stopped_at: float
    ready_at: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def landed(self) -> bool:
        return self.new_uid is not None and self.new_uid != self.old_uid

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "landed": self.landed}


@runtime_checkable
class Deploy(Protocol):
    """Optional: roll a changed environment out to a service, one replica at a time, as a
    Deployment rolls its pods (a new version of the code is a new setting, e.g.
    SAGAQUAKE_SAGA_VERSION, not a new copy of it)."""

    def deploy(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """Replace every replica of `service` with one whose environment has `env` added, one
        at a time, each ready before the next goes; return what was replaced, in order. The
        setting stays for replicas started later (restarts, scaling)."""

    def deployed_env(self, service: str) -> dict[str, str]:
        """What the deploys so far added to `service`'s environment ({} when none)."""


@runtime_checkable
class SideBySide(Protocol):
    """Optional: a blue/green deploy. New replicas run next to the old ones until nothing needs
    the old ones any more (with Worker Deployment Versioning, until the sagas PINNED to the old
    version have finished), then the old ones go and the service is back to its size."""

    def add_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """Start as many new replicas of `service` as it has, each with `env` added to its
        environment, next to the running ones; wait until each is ready (its evidence says
        when, or that it was not within `wait_s`). `old_uid` is empty: nothing was replaced."""

    def retire_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """End the side-by-side deploy: `service` back at the size it had before
        `add_replicas`, every replica running `env` (the added side's to finish the deploy, the
        old side's to abandon it), which stays the service's setting as after `Deploy.deploy`.
        Returns the replicas replaced on the way (none when nothing was in progress)."""

    def side_by_side(self, service: str) -> dict[str, Any] | None:
        """The side-by-side deploy of `service` in progress (`{"size": replicas before it,
        "env": what the added replicas run}`), or None."""
