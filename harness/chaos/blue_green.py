"""Deploy faults, the Worker Deployment Versioning way: a blue/green deploy of a changed saga.

Temporal's newer answer to "deploy changed workflow code while sagas are in flight": each worker
declares a version of a Worker Deployment (`SAGAQUAKE_WORKER_DEPLOYMENT`, build id
`saga-v<N>`), a saga is PINNED to the version that started it and runs to its end on that
version's workers, and the deployment's *current version* decides where new sagas go. No patch
is needed, but the old version's workers must stay until its sagas have drained: a deploy is
blue/green, not a rolling restart in place. Each step here is the platform's `SideBySide`: new
workers started next to the old ones and proven polling, the current version switched, the old
version's pinned sagas waited for (Temporal's visibility, `TemporalWorkerDeploymentVersion`), the
old workers retired.

A stack starts unversioned. The first versioned deploy adopts versioning on the version the
workers run (a blue/green to the same code, which is safe whatever the patches say: sagas in
flight on unversioned workers move to the current version on their next workflow task); the
rollback leaves versioning the same way, so the stack is left as it was found.

Evidence per step (`adopted`, `deploy`): the replicas added and retired, who polled, the switch
(previous and new current version, how long the server took to accept it), how many sagas were
pinned to the old version at the switch and how long they took to drain; then, as for the
rolling deploy, the sagas in flight across the switches and which versions ran their workflow
tasks. With pinning no saga may run on two versions (`crossed_versions` = 0).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from harness.chaos.context import ChaosContext, chaos_context, flag, number, service_name
from harness.chaos.deploy import (
    DEPLOYMENT_ENV,
    VERSION_ENV,
    VERSIONS,
    not_landed,
    replica_evidence,
    saga_version,
)
from harness.chaos.faults import FaultNotLanded, FaultWindow, close_open_windows
from harness.chaos.saga_workers import (
    count_workflows,
    pollers,
    prove_polling,
    run_async,
    sagas_across,
    temporal_client,
    wait_in_flight,
)
from harness.errors import ConfigError
from harness.platforms.base import Deploy, Endpoints, SideBySide

__all__ = [
    "build_id",
    "roll_back_versioned_deploy",
    "versioned_deploy",
    "worker_deployment",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SWITCH_WAIT_S = 30.0  # for the server to see the new version's pollers


class _Platform(SideBySide, Deploy, Protocol):
    """What the blue/green deploy needs of a platform (for typing)."""


def build_id(version: int) -> str:
    """The build id of saga `version` (what `system_under_test.saga.worker.build_id` says)."""
    return f"saga-v{version}"


# -- the action ---------------------------------------------------------------------------------


def versioned_deploy(
    version: int = 2,
    deployment: str = "sagaquake-saga",
    service: str = "saga-worker",
    require_inflight: bool = True,
    wait_inflight_s: float = 30,
    wait_s: float = 120,
    drain_s: float = 120,
    settle_s: float = 60,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deploy saga `version` blue/green as a version of Worker Deployment `deployment`, while
    orders are in flight (waits up to `wait_inflight_s` for one unless `require_inflight` is
    false): new workers next to the old (each ready within `wait_s` and polling), the current
    version switched to theirs, the sagas pinned to the old version drained (up to `drain_s`,
    wall-clock), the old workers retired. Unversioned workers are first moved to versioning on
    the version they run. Then waits up to `settle_s` for the sagas in flight across the
    switches to finish and reads their histories."""
    ctx = chaos_context(configuration)
    target = saga_version(version)
    service = service_name(service)
    name = _deployment(deployment)
    platform = _side_by_side(ctx)
    wait = number(wait_s, "wait_s", minimum=0)
    drain = number(drain_s, "drain_s", minimum=0)
    settle = number(settle_s, "settle_s", minimum=0)
    if platform.side_by_side(service):
        raise FaultNotLanded(
            f"a side-by-side deploy of {service!r} is still in progress (an interrupted run); "
            "roll it back first (roll_back_versioned_deploy, this experiment's rollback)"
        )
    endpoints = ctx.platform.endpoints()
    deployed = platform.deployed_env(service)
    env = {VERSION_ENV: str(target), DEPLOYMENT_ENV: name}
    window = FaultWindow(
        ctx.run_dir, ctx.experiment, "versioned_deploy", service, version=target,
        deployment=name, build_id=build_id(target), env=env,
        before={
            "deployed_env": deployed,
            "current_version": _current_version(endpoints, name),
            "pollers": pollers(endpoints),
        },
    )  # fmt: skip
    with window:
        window.evidence["in_flight_before"] = wait_in_flight(
            endpoints,
            flag(require_inflight, "require_inflight"),
            number(wait_inflight_s, "wait_inflight_s", minimum=0),
        )
        running = saga_version(deployed.get(VERSION_ENV) or 1)
        versioned = deployed.get(DEPLOYMENT_ENV) == name
        if versioned and running == target:
            not_landed(window, f"{service!r} already runs saga version {target} as {name}")
        step = _Step(platform, endpoints, service, name, wait, drain)
        switches = []
        try:
            if not versioned:  # adopt versioning on the code the workers run now
                adopt = {VERSION_ENV: str(running), DEPLOYMENT_ENV: name}
                switches.append(step.run(window.evidence, "adopted", adopt, running, None))
            if running != target:
                old = build_id(running)
                switches.append(step.run(window.evidence, "deploy", env, target, old))
        except FaultNotLanded:
            window.record["landed"] = False
            raise
        window.land(
            switches=len(switches),
            deployed_env=platform.deployed_env(service),
            current_version=_current_version(endpoints, name),
        )
        window.evidence.update(sagas_across(endpoints, switches, settle))
    return window.record


def roll_back_versioned_deploy(
    version: int = 1,
    deployment: str = "sagaquake-saga",
    service: str = "saga-worker",
    wait_s: float = 180,
    drain_s: float = 300,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Leave versioning: `service` back on unversioned workers of saga `version`, blue/green
    (the versioned workers stay until the sagas pinned to them have drained). A side-by-side
    deploy an interrupted run left is finished first when Temporal already routes to its new
    side (after its old side drained) and abandoned when not. Closes the windows an
    interrupted action left open. Idempotent: an unversioned stack is left alone."""
    ctx = chaos_context(configuration)
    target = saga_version(version)
    service = service_name(service)
    name = _deployment(deployment)
    platform = _side_by_side(ctx)
    endpoints = ctx.platform.endpoints()
    step = _Step(
        platform,
        endpoints,
        service,
        name,
        number(wait_s, "wait_s", minimum=0),
        number(drain_s, "drain_s", minimum=0),
    )
    closed = close_open_windows(
        ctx.run_dir,
        service,
        "rollback roll_back_versioned_deploy",
        only_actions=("versioned_deploy",),
    )
    done: dict[str, Any] = {"version": target, "windows_closed": len(closed)}
    pending = platform.side_by_side(service)
    if pending:
        done["interrupted"] = step.end_interrupted(pending)
    deployed = platform.deployed_env(service)
    if deployed.get(DEPLOYMENT_ENV) == name:
        old = build_id(saga_version(deployed.get(VERSION_ENV) or 1))
        leave = {VERSION_ENV: str(target), DEPLOYMENT_ENV: ""}
        step.run(done, "unversioned", leave, target, old)
    return done


def worker_deployment(
    deployment: str = "sagaquake-saga",
    service: str = "saga-worker",
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The probe: the deployment's current version ("" = unversioned, None = no such
    deployment), the running sagas pinned to each saga version, and whether a side-by-side
    deploy is in progress."""
    ctx = chaos_context(configuration)
    name = _deployment(deployment)
    endpoints = ctx.platform.endpoints()
    pinned: dict[str, Any] = {}
    for v in VERSIONS:
        try:
            pinned[build_id(v)] = _pinned_running(endpoints, name, build_id(v))
        except Exception as exc:
            pinned[build_id(v)] = f"{type(exc).__name__}: {exc}"
    platform = ctx.platform
    return {
        "deployment": name,
        "current_version": _current_version(endpoints, name),
        "pinned_running": pinned,
        "side_by_side": bool(isinstance(platform, SideBySide) and platform.side_by_side(service)),
    }


# -- one blue/green step ------------------------------------------------------------------------


@dataclass
class _Step:
    """Blue/green steps of one service, each recorded in an evidence dict as it goes."""

    platform: _Platform
    endpoints: Endpoints
    service: str
    deployment: str
    wait_s: float
    drain_s: float

    def run(
        self,
        evidence: dict[str, Any],
        key: str,
        env: dict[str, str],
        version: int,
        old_build: str | None,
    ) -> float:
        """New workers running `env` beside the old, the current version switched to them,
        the old version's pinned sagas drained, the old workers retired: when the switch was.
        FaultNotLanded (the new side abandoned if nothing was switched to it yet) otherwise."""
        build = build_id(version) if env.get(DEPLOYMENT_ENV) else ""
        step: dict[str, Any] = {"version": version, "build_id": build, "env": env}
        evidence[key] = step
        old_env = self.platform.deployed_env(self.service)
        added = self.platform.add_replicas(self.service, env, self.wait_s)
        step["added"] = [replica_evidence(e, version) for e in added]
        late = [e.name for e in added if not e.landed]
        if late:
            self._abandon(
                step, old_env, f"{late[0]} did not come up ready within {self.wait_s:g} s"
            )
        polling = prove_polling(self.endpoints, added, version, min(self.wait_s, 30.0))
        step["polling"] = polling
        silent = [n for n, seen in polling.items() if not seen.get("identity")]
        if silent:
            self._abandon(step, old_env, f"Temporal saw no poller of {', '.join(silent)}")
        step["switch"] = _set_current(self.endpoints, self.deployment, build, _SWITCH_WAIT_S)
        if "error" in step["switch"]:
            self._abandon(step, old_env, f"switching to {build or 'unversioned'} failed")
        if old_build:
            step["drain"] = self._drain(old_build)
        retired = self.platform.retire_replicas(self.service, env, self.wait_s)
        step["retired"] = [replica_evidence(e, version) for e in retired]
        stuck = [e.name for e in retired if not e.landed]
        if stuck:
            raise FaultNotLanded(
                f"retiring the old workers of {self.service!r}: {stuck[0]} did not come back "
                f"ready running {env} within {self.wait_s:g} s"
            )
        return float(step["switch"]["at"])

    def end_interrupted(self, pending: dict[str, Any]) -> dict[str, Any]:
        """Finish a side-by-side deploy whose new side Temporal routes to (once the old side's
        pinned sagas drained), else abandon it."""
        env = dict(pending.get("env") or {})
        new_build = build_id(int(env.get(VERSION_ENV) or 1)) if env.get(DEPLOYMENT_ENV) else ""
        current = _current_version(self.endpoints, self.deployment)
        old_env = self.platform.deployed_env(self.service)
        out: dict[str, Any] = {"pending": pending, "current_version": current}
        if current is not None and current == new_build:
            if old_env.get(DEPLOYMENT_ENV):
                out["drain"] = self._drain(build_id(int(old_env.get(VERSION_ENV) or 1)))
            out["finished"] = [e.as_dict() for e in self.platform.retire_replicas(
                self.service, env, self.wait_s
            )]  # fmt: skip
        else:
            self.platform.retire_replicas(self.service, old_env, self.wait_s)
            out["abandoned"] = True
        return out

    def _abandon(self, step: dict[str, Any], old_env: dict[str, str], why: str) -> None:
        """Nothing was switched to the new side: it goes, and the deploy did not land."""
        self.platform.retire_replicas(self.service, old_env, self.wait_s)
        step["abandoned"] = True
        raise FaultNotLanded(
            f"blue/green deploy of {self.service!r} to {step['build_id'] or 'unversioned'} "
            f"abandoned: {why}"
        )

    def _drain(self, old_build: str) -> dict[str, Any]:
        """Wait until no running saga is pinned to `old_build`; FaultNotLanded after
        `drain_s` (its workers are left running, so those sagas can still finish)."""
        started = time.monotonic()
        first: int | None = None
        while True:
            left = _pinned_running(self.endpoints, self.deployment, old_build)
            first = left if first is None else first
            if not left:
                return {
                    "pinned_at_switch": first,
                    "drained_in_s": round(time.monotonic() - started, 3),
                }
            if time.monotonic() - started >= self.drain_s:
                raise FaultNotLanded(
                    f"{left} sagas pinned to {self.deployment}:{old_build} were still running "
                    f"{self.drain_s:g} s after the switch; its workers are left running for "
                    "them (the rollback retires them once they finish)"
                )
            time.sleep(1.0)


# -- Temporal's side ----------------------------------------------------------------------------


def _set_current(
    endpoints: Endpoints, deployment: str, build: str, wait_s: float
) -> dict[str, Any]:
    """Make `build` ("" = unversioned) the deployment's current version, retrying while the
    server has not seen the version's pollers yet (NOT_FOUND / FAILED_PRECONDITION)."""
    from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest

    async def switch() -> Any:
        client = await temporal_client(endpoints)
        return await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=endpoints.temporal_namespace,
                deployment_name=deployment,
                build_id=build,
                identity="sagaquake",
            )
        )

    started = time.monotonic()
    while True:
        try:
            answer = run_async(switch())
        except Exception as exc:
            if time.monotonic() - started >= wait_s:
                return {"error": f"{type(exc).__name__}: {exc}", "waited_s": round(wait_s, 3)}
            time.sleep(0.5)
            continue
        previous = answer.previous_deployment_version
        return {
            "at": round(time.time(), 3),
            "to": build or "unversioned",
            "previous": previous.build_id if previous.build_id else "unversioned",
            "took_s": round(time.monotonic() - started, 3),
        }


def _current_version(endpoints: Endpoints, deployment: str) -> str | None:
    """The deployment's current build id, "" when unversioned, None when Temporal has no such
    deployment (or cannot say)."""
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest

    async def describe() -> Any:
        client = await temporal_client(endpoints)
        return await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=endpoints.temporal_namespace, deployment_name=deployment
            )
        )

    try:
        info = run_async(describe()).worker_deployment_info
    except Exception:
        return None
    return str(info.routing_config.current_deployment_version.build_id)


def _pinned_running(endpoints: Endpoints, deployment: str, build: str) -> int:
    return int(
        run_async(
            count_workflows(
                endpoints,
                f"TemporalWorkerDeploymentVersion = '{deployment}:{build}' "
                "AND ExecutionStatus = 'Running'",
            )
        )
    )


# -- arguments ----------------------------------------------------------------------------------


def _side_by_side(ctx: ChaosContext) -> _Platform:
    platform = ctx.platform
    why = platform.unsupported("side_by_side")
    if why or not isinstance(platform, SideBySide) or not isinstance(platform, Deploy):
        raise ConfigError(
            f"the {platform.name} platform cannot run a blue/green deploy: "
            + (why or "it has no side-by-side deploy")
        )
    return platform


def _deployment(value: Any) -> str:
    name = str(value or "")
    if not _NAME.match(name):
        raise ConfigError(
            f"argument deployment={value!r} is not a Worker Deployment name: letters, digits, "
            "'_', '.', '-', starting with a letter or digit"
        )
    return name
