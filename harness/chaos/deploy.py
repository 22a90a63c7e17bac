"""Deploy faults: a changed saga rolled out to the workers while orders are in flight.

A rolling deploy is a fault of its own: every saga in flight across the switch is finished by a
worker running other code than the one that started it, and a change that is not guarded by
`workflow.patched` fails those sagas' workflow tasks with non-determinism, forever (they stay
Running and retry every ~10 s). Which version a worker runs is configuration
(`SAGAQUAKE_SAGA_VERSION`), so the deploy is the platform's `Deploy`: locally each supervised
worker is restarted with the new setting in turn; on Kubernetes the Deployment's environment is
patched and rolled.

Proof that it landed, per replica: a new incarnation (pid / pod) that is ready, and Temporal
seeing it poll the task queue under the new version's identity (`<pid>@<host> saga-v<N>`).
Evidence: which replica ran which version from when, how many sagas were in flight at each
switch, and, from Temporal's histories of those sagas once they finished, which versions
completed their workflow tasks (`ran_on`: `v1`, `v2`, `v1+v2`) and every workflow task that
failed on the way (with its cause and message: a non-determinism is named here first, and
the verifier's `no_nondeterminism` fails the run for it).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.chaos.context import ChaosContext, chaos_context, flag, number, service_name
from harness.chaos.faults import FaultNotLanded, FaultWindow, close_open_windows, read_faults
from harness.chaos.saga_workers import (
    pollers,
    prove_polling,
    sagas_across,
    wait_in_flight,
)
from harness.errors import ConfigError
from harness.platforms.base import Deploy, DeployEvidence

__all__ = [
    "DEPLOYMENT_ENV",
    "VERSION_ENV",
    "deploy_task_failures",
    "not_landed",
    "replica_evidence",
    "roll_back_deploy",
    "rolling_deploy",
    "saga_version",
    "saga_versions",
]

VERSION_ENV = "SAGAQUAKE_SAGA_VERSION"
# the fault windows of a deploy: this module's rolling one, harness.chaos.blue_green's
DEPLOY_ACTIONS = ("rolling_deploy", "versioned_deploy")
# Set, the workers are versioned (harness.chaos.blue_green): a rolling restart would strand them
DEPLOYMENT_ENV = "SAGAQUAKE_WORKER_DEPLOYMENT"
VERSIONS = (1, 2)  # the saga versions the system under test knows (docs/system.md)


def rolling_deploy(
    version: int = 2,
    service: str = "saga-worker",
    require_inflight: bool = True,
    wait_inflight_s: float = 30,
    wait_s: float = 120,
    settle_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replace the replicas of `service` one by one with replicas running saga `version`,
    while orders are in flight (waits up to `wait_inflight_s` for one; with none, the deploy
    would prove nothing and the action fails unless `require_inflight` is false). Each replica
    must come back ready within `wait_s` and poll Temporal as the new version. Then waits up to
    `settle_s` (wall-clock) for the sagas in flight across the switch to finish and reads their
    histories for the evidence."""
    ctx = chaos_context(configuration)
    target = saga_version(version)
    service = service_name(service)
    platform = _deployer(ctx, service)
    wait = number(wait_s, "wait_s", minimum=0)
    settle = number(settle_s, "settle_s", minimum=0)
    endpoints = ctx.platform.endpoints()
    env = {VERSION_ENV: str(target)}
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "rolling_deploy", service, version=target, env=env,
        before={"deployed_env": platform.deployed_env(service), "pollers": pollers(endpoints)},
    )  # fmt: skip
    with window:
        window.evidence["in_flight_before"] = wait_in_flight(
            endpoints,
            flag(require_inflight, "require_inflight"),
            number(wait_inflight_s, "wait_inflight_s", minimum=0),
        )
        replaced = platform.deploy(service, env, wait)
        if not replaced:
            not_landed(window, f"every replica of {service!r} already runs saga version {target}")
        window.evidence["replicas"] = [replica_evidence(e, target) for e in replaced]
        missing = [e for e in replaced if not e.landed]
        if missing:
            not_landed(
                window,
                f"{missing[0].name} of {service!r} did not come back ready as version {target} "
                f"within {wait:g} s ({missing[0].extra or 'gone'})",
            )
        polling = prove_polling(endpoints, replaced, target, min(wait, 30.0))
        window.evidence["polling"] = polling
        silent = [name for name, seen in polling.items() if not seen.get("identity")]
        if silent:
            not_landed(
                window,
                f"Temporal saw no poller of saga version {target} from {', '.join(silent)} "
                "after the deploy: the new replicas do not run the new version",
            )
        window.land(switches=len(replaced), deployed_env=platform.deployed_env(service))
        window.evidence.update(sagas_across(endpoints, [e.stopped_at for e in replaced], settle))
    return window.record


def roll_back_deploy(
    version: int = 1,
    service: str = "saga-worker",
    wait_s: float = 180,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Put `service` back on saga `version` (a rolling deploy of the replicas that do not run
    it, without waiting for load), and close the deploy windows an interrupted action left
    open. Idempotent: with every replica on `version` it replaces nothing."""
    ctx = chaos_context(configuration)
    target = saga_version(version)
    service = service_name(service)
    platform = _deployer(ctx, service)
    closed = close_open_windows(
        ctx.run_dir, service, "rollback roll_back_deploy", only_actions=("rolling_deploy",)
    )
    # the platform replaces only the replicas that do not run `version` yet
    replaced = platform.deploy(
        service, {VERSION_ENV: str(target)}, number(wait_s, "wait_s", minimum=0)
    )
    failed = [e.name for e in replaced if not e.landed]
    if failed:
        raise FaultNotLanded(
            f"rolling {service!r} back to saga version {target} failed: {', '.join(failed)} "
            "did not come back ready"
        )
    return {
        "version": target,
        "deployed": [replica_evidence(e, target) for e in replaced],
        "windows_closed": len(closed),
    }


def saga_versions(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probe: which saga versions poll Temporal's task queue now (pollers seen in the last
    minute, by version) and what the platform's last deploy set."""
    ctx = chaos_context(configuration)
    recent = [p for p in pollers(ctx.platform.endpoints()) if p.get("recent")]
    by_version = Counter(str(p.get("version")) for p in recent)
    deployed = ctx.platform.deployed_env("saga-worker") if isinstance(ctx.platform, Deploy) else {}
    return {
        "versions": sorted(by_version),
        "pollers_by_version": dict(by_version),
        "mixed": len(by_version) > 1,
        "deployed_env": deployed,
    }


def deploy_task_failures(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The probe: workflow tasks that failed in the sagas in flight across this experiment's
    deploys so far (the deploy windows' evidence), non-determinism counted apart. 0 before any
    deploy."""
    ctx = chaos_context(configuration)
    windows = [
        w
        for w in read_faults(ctx.run_dir)
        if w.get("action") in DEPLOY_ACTIONS and w.get("experiment") == ctx.experiment
    ]
    evidence = [w.get("evidence") or {} for w in windows]
    return {
        "deploys": len(windows),
        "sagas_across": sum(int(e.get("sagas_across") or 0) for e in evidence),
        "crossed_versions": sum(int(e.get("crossed_versions") or 0) for e in evidence),
        "workflow_task_failures": sum(int(e.get("workflow_task_failures") or 0) for e in evidence),
        "nondeterminism": sum(int(e.get("nondeterminism") or 0) for e in evidence),
        "examples": [x for e in evidence for x in e.get("failure_examples") or []][:5],
    }


# -- helpers ------------------------------------------------------------------------------------


def _deployer(ctx: ChaosContext, service: str) -> Deploy:
    if not isinstance(ctx.platform, Deploy):
        raise ConfigError(f"the {ctx.platform.name} platform cannot deploy a changed setting")
    deployment = ctx.platform.deployed_env(service).get(DEPLOYMENT_ENV)
    if deployment:
        raise ConfigError(
            f"the {service} replicas are versioned workers of Worker Deployment "
            f"{deployment!r}: restarting them in place as another version would leave their "
            "pinned sagas without workers; roll the versioned deploy back first "
            "(`sagaquake chaos versioned-deploy` ends with that rollback)"
        )
    return ctx.platform


def saga_version(value: Any) -> int:
    """An experiment's `version` argument, checked against the versions the saga has."""
    version = int(number(value, "version", minimum=1))
    if version not in VERSIONS:
        raise ConfigError(
            f"argument version={value!r} is not a saga version; one of: "
            + ", ".join(map(str, VERSIONS))
        )
    return version


def not_landed(window: FaultWindow, message: str) -> None:
    """Mark the window as not landed and say why (FaultNotLanded)."""
    window.record["landed"] = False
    raise FaultNotLanded(message)


def replica_evidence(e: DeployEvidence, version: int) -> dict[str, Any]:
    """One replica of a deploy as the fault window records it."""
    item: dict[str, Any] = {
        "name": e.name,
        "version": version,
        "old_uid": e.old_uid,
        "new_uid": e.new_uid,
        "stopped_at": round(e.stopped_at, 3),
        "ready_at": round(e.ready_at, 3) if e.ready_at else None,
        "landed": e.landed,
        **e.extra,
    }
    if e.old_uid.isdigit() or (e.new_uid or "").isdigit():  # local: the uid is the pid
        item["old_pid"] = int(e.old_uid) if e.old_uid.isdigit() else None
        item["new_pid"] = int(e.new_uid) if e.new_uid and e.new_uid.isdigit() else None
    return item
