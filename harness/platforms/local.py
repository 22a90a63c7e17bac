"""The local platform: the whole stack as supervised processes on this machine (the embedded default).

supervisord (started in its own session, so the stack outlives the `sagaquake up` command) runs
one program per replica with autorestart, as a cluster restarts a pod; the platform drives it
over XML-RPC on a unix socket in the run folder. Nothing listens outside 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import uuid
import xmlrpc.client
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import redis
from supervisor.xmlrpc import SupervisorTransport

from harness import keys
from harness.errors import (
    HarnessError,
    PlatformError,
    StackAlreadyRunningError,
    StackNotRunningError,
)
from harness.platforms.base import (
    FAULT_PRIMITIVES,
    HTTP_SERVICES,
    NETWORK_FAULTS,
    SERVICES,
    DeployEvidence,
    Endpoints,
    KillEvidence,
    NetFault,
    PauseEvidence,
    ReplicaStatus,
)
from harness.platforms.local_config import (
    MAX_REPLICAS,
    PORT_FIELDS,
    find_binary,
    programs,
    read_deploys,
    render_supervisord_conf,
    replica_name,
    with_deploys,
    write_deploys,
)
from harness.platforms.local_faults import (
    NftTable,
    delete_table,
    freeze,
    nft_unsupported,
    run_slice,
    socket_queues,
    stale_tables,
    thaw,
)
from harness.platforms.preflight import check_ports_free
from harness.platforms.readiness import http_ready, redis_ready, temporal_ready
from harness.platforms.stackstate import (
    MARKER,
    StackState,
    kill_processes,
    live_stack_ids,
    marked_processes,
    orphans,
)
from harness.runs import RunFolder
from harness.settings import LocalOptions, LocalPorts

__all__ = ["LocalPlatform", "clean_stale_stack", "local_unsupported"]

_SPAWNED = re.compile(r"spawned: '([^']+)' with pid (\d+)")


def clean_stale_stack() -> str | None:
    """Stop what a crashed harness left behind (processes, frozen ones included, and the
    nftables tables of stacks that no longer run); say what was cleaned (None when nothing was)."""
    tables = stale_tables(live_stack_ids())
    for table in tables:
        delete_table(table)
    state = StackState.load()
    if state and state.supervisord_alive():
        return f"removed {len(tables)} nftables table(s) of crashed runs" if tables else None
    leftovers = orphans()
    if state:
        StackState.clear()
        Path(state.socket).unlink(missing_ok=True)
    if not leftovers and not state and not tables:
        return None
    kill_processes(leftovers)
    where = f" of run {state.run_dir}" if state else ""
    faults = f" and {len(tables)} nftables table(s)" if tables else ""
    return f"cleaned up a stale stack{where}: stopped {len(leftovers)} leftover process(es){faults}"


def local_unsupported(fault: str) -> str | None:
    """Why the fault primitive `fault` cannot run on the local platform here, or None."""
    if fault in ("pause", "side_by_side"):
        return None  # signals to our own children; more supervised programs
    if fault in NETWORK_FAULTS:
        return nft_unsupported()
    return f"unknown fault primitive {fault!r}; one of: {', '.join(FAULT_PRIMITIVES)}"


class LocalPlatform:
    """Platform protocol over supervisord. Build one with `LocalPlatform(run_dir)` to bring a new
    stack up, or `LocalPlatform.attach()` to act on the running one."""

    name = "local"

    def __init__(
        self,
        run_dir: Path,
        ports: LocalPorts | None = None,
        options: LocalOptions | None = None,
        replicas: dict[str, int] | None = None,
        stack_id: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.platform_dir = RunFolder(self.run_dir).platform_dir
        self.logs_dir = RunFolder(self.run_dir).logs_dir
        self.ports = ports or LocalPorts.from_env()
        self.options = options or LocalOptions.from_env()
        self.replicas = replicas or {
            "order-service": self.options.order_replicas,
            "payment-service": self.options.payment_replicas,
            "saga-worker": self.options.worker_replicas,
        }
        self.stack_id = stack_id or uuid.uuid4().hex[:12]
        self._supervisord_pid: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def attach(cls) -> LocalPlatform:
        """The stack `sagaquake up` started, from .sagaquake/stack.json."""
        state = StackState.load()
        if state is None or not state.supervisord_alive():
            raise StackNotRunningError("no local stack is running: start one with `sagaquake up`")
        platform = cls(
            Path(state.run_dir),
            LocalPorts.model_validate(state.ports),
            LocalOptions(**state.options),
            replicas=state.replicas,
            stack_id=state.stack_id,
        )
        platform._supervisord_pid = state.supervisord_pid
        return platform

    @property
    def _socket(self) -> Path:
        """In the temp dir, not the run folder: a unix socket path may not exceed 107 bytes."""
        return Path(tempfile.gettempdir()) / f"sagaquake-{self.stack_id}.sock"

    @property
    def _conf(self) -> Path:
        return self.platform_dir / "supervisord.conf"

    def _programs(self) -> list[Any]:
        progs = programs(self.ports, self.options, self.platform_dir, self.replicas)
        return with_deploys(progs, self.platform_dir)  # what `deploy` set stays set

    def _write_conf(self) -> None:
        conf = render_supervisord_conf(
            self._programs(), self.platform_dir, self.logs_dir, self.stack_id, self._socket
        )
        self._conf.write_text(conf)

    def _save_state(self) -> None:
        assert self._supervisord_pid is not None
        StackState(
            stack_id=self.stack_id,
            run_dir=str(self.run_dir),
            supervisord_pid=self._supervisord_pid,
            socket=str(self._socket),
            ports=self.ports.model_dump(),
            options=self.options.model_dump(),
            replicas=dict(self.replicas),
        ).save()

    def up(self, timeout_s: float = 120.0) -> None:
        existing = StackState.load()
        if existing and existing.supervisord_alive():
            raise StackAlreadyRunningError(
                f"a stack is already running (run folder {existing.run_dir}); "
                "see it with `sagaquake status` or stop it with `sagaquake down`"
            )
        clean_stale_stack()
        progs = (
            self._programs()
        )  # finds the binaries first: a missing one fails before anything starts
        check_ports_free(
            {
                **self.ports.named(),
                **{p.name + "_health": p.health_port for p in progs if p.health_port},
            }
        )
        for folder in (self.platform_dir / "redis", self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        out = (self.platform_dir / "supervisord.out").open("ab")
        proc = subprocess.Popen(
            [find_binary("supervisord"), "-c", str(self._conf)],
            cwd=self.platform_dir,
            env={**os.environ, MARKER: self.stack_id},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal goes to the harness, not the stack
        )
        out.close()
        self._supervisord_pid = proc.pid
        self._save_state()
        try:
            self._wait_for_supervisord(proc)
            self.wait_ready(SERVICES, timeout_s)
        except BaseException:
            self.down()
            raise

    def _wait_for_supervisord(self, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = _tail(self.platform_dir / "supervisord.out")
                raise PlatformError(f"supervisord exited with code {proc.returncode}:\n{tail}")
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                if self._rpc().supervisor.getState()["statename"] == "RUNNING":
                    return
            time.sleep(0.1)
        raise PlatformError(
            f"supervisord did not answer on {self._socket} within {timeout_s:.0f} s"
        )

    def is_up(self) -> bool:
        state = StackState.load()
        return bool(state and state.stack_id == self.stack_id and state.supervisord_alive())

    def down(self) -> None:
        """Undo every fault (frozen processes, the nftables table), stop every process, then
        sweep anything still carrying this stack's marker."""
        self.resume()
        self.heal()
        pid = self._supervisord_pid
        if pid and psutil.pid_exists(pid):
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                rpc = self._rpc()
                rpc.supervisor.stopAllProcesses(True)
                rpc.supervisor.shutdown()
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=30)
        kill_processes(marked_processes(self.stack_id))
        self._socket.unlink(missing_ok=True)
        state = StackState.load()
        if state and state.stack_id == self.stack_id:
            StackState.clear()

    # -- observing -------------------------------------------------------------------------

    def _rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self._socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def _service_of(self, program: str) -> str:
        return program.rsplit("_", 1)[0] if re.search(r"_\d\d$", program) else program

    def _spawn_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        log = self.platform_dir / "supervisord.log"
        if log.exists():
            for name, _ in _SPAWNED.findall(log.read_text(errors="replace")):
                counts[name] = counts.get(name, 0) + 1
        return counts

    def _replica_ready(self, info: dict[str, Any]) -> bool:
        if info["statename"] != "RUNNING":
            return False
        name, endpoints = info["name"], self.endpoints()
        if name == "redis":
            return redis_ready(endpoints.redis_url)
        if name == "temporal":
            return temporal_ready(f"http://127.0.0.1:{self.ports.temporal_http}")
        port = next((p.health_port for p in self._programs() if p.name == name), None)
        return port is not None and http_ready(f"http://127.0.0.1:{port}/readyz")

    def status(self) -> list[ReplicaStatus]:
        infos = self._rpc().supervisor.getAllProcessInfo()
        spawns = self._spawn_counts()
        with ThreadPoolExecutor(max_workers=8) as pool:
            ready = list(pool.map(self._replica_ready, infos))
        result = []
        for info, is_ready in zip(infos, ready, strict=True):
            running = info["statename"] == "RUNNING"
            result.append(
                ReplicaStatus(
                    service=self._service_of(info["name"]),
                    name=info["name"],
                    pid=info["pid"] or None,
                    uid=str(info["pid"]) if info["pid"] else "",
                    state=info["statename"],
                    uptime_s=float(info["now"] - info["start"]) if running else 0.0,
                    restarts=max(spawns.get(info["name"], 1) - 1, 0),
                    ready=is_ready,
                )
            )
        order = {s: i for i, s in enumerate(SERVICES)}
        return sorted(result, key=lambda r: (order.get(r.service, 99), r.name))

    def endpoints(self) -> Endpoints:
        p = self.ports
        return Endpoints(
            order_api=f"http://127.0.0.1:{p.order}",
            payment_api=f"http://127.0.0.1:{p.payment}",
            inventory_api=f"http://127.0.0.1:{p.inventory}",
            notification_api=f"http://127.0.0.1:{p.notification}",
            redis_url=f"redis://127.0.0.1:{p.redis}/0",
            temporal_address=f"127.0.0.1:{p.temporal}",
            temporal_ui=f"http://127.0.0.1:{p.temporal_ui}",
        )

    def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            replicas = [r for r in self.status() if r.service in services]
            fatal = [r for r in replicas if r.state == "FATAL"]
            if fatal:
                raise PlatformError(self._not_ready_message(fatal, "keeps crashing"))
            missing = [s for s in services if not any(r.service == s for r in replicas)]
            waiting = [r for r in replicas if not r.ready]
            if not waiting and not missing:
                return
            if time.monotonic() > deadline:
                if missing and not waiting:
                    raise PlatformError(f"no replica of {', '.join(missing)} is running")
                raise PlatformError(
                    self._not_ready_message(waiting, f"is not ready after {timeout_s:.0f} s")
                )
            time.sleep(0.25)

    def _not_ready_message(self, replicas: list[ReplicaStatus], what: str) -> str:
        first = replicas[0]
        names = ", ".join(f"{r.name} ({r.state.lower()})" for r in replicas)
        log = self.logs_dir / f"{first.name}.log"
        return f"{names} {what}; last lines of {log}:\n{_tail(log)}"

    # -- breaking --------------------------------------------------------------------------

    def _replicas_of(self, service: str) -> list[ReplicaStatus]:
        if service not in SERVICES:
            raise PlatformError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
        return [r for r in self.status() if r.service == service]

    def kill(
        self, service: str, count: int = 1, signal: str = "KILL", wait_s: float = 30.0
    ) -> list[KillEvidence]:
        running = [r for r in self._replicas_of(service) if r.state == "RUNNING" and r.pid]
        if not running:
            raise PlatformError(f"no running replica of {service!r} to kill")
        chosen = random.sample(running, min(count, len(running)))
        return self._kill(service, chosen, signal, wait_s)

    def kill_replicas(
        self,
        names: list[str],
        signal: str = "KILL",
        wait_s: float = 30.0,
        on_signalled: Callable[[], object] | None = None,
    ) -> list[KillEvidence]:
        replicas = {r.name: r for r in self.status()}
        missing = [n for n in names if n not in replicas or not replicas[n].pid]
        if missing:
            raise PlatformError(f"no running replica named {missing[0]!r} to kill")
        chosen = [replicas[n] for n in names]
        return self._kill(chosen[0].service, chosen, signal, wait_s, on_signalled)

    def _kill(
        self,
        service: str,
        chosen: list[ReplicaStatus],
        signal: str,
        wait_s: float,
        on_signalled: Callable[[], object] | None = None,
    ) -> list[KillEvidence]:
        for replica in chosen:
            self._rpc().supervisor.signalProcess(replica.name, signal)
        if on_signalled is not None:
            on_signalled()
        deadline = time.monotonic() + wait_s
        evidence: dict[str, KillEvidence] = {}
        while len(evidence) < len(chosen) and time.monotonic() < deadline:
            now = {r.name: r for r in self._replicas_of(service)}
            for replica in chosen:
                current = now.get(replica.name)
                if (
                    replica.name not in evidence
                    and current
                    and current.uid != replica.uid
                    and current.ready
                ):
                    evidence[replica.name] = KillEvidence(
                        replica.name,
                        replica.uid,
                        current.uid,
                        signal,
                        replica.restarts,
                        current.restarts,
                    )
            time.sleep(0.2)
        final = {r.name: r for r in self._replicas_of(service)}
        for replica in chosen:  # not back within the wait: report what we saw, not landed
            if replica.name not in evidence:
                current = final.get(replica.name)
                new_uid = (
                    current.uid if current and current.uid and current.uid != replica.uid else None
                )
                restarts = current.restarts if current else replica.restarts
                evidence[replica.name] = KillEvidence(
                    replica.name, replica.uid, new_uid, signal, replica.restarts, restarts,
                    extra={"came_back_ready": False, "state": current.state if current else "GONE"},
                )  # fmt: skip
        return [evidence[r.name] for r in chosen]

    def stop(self, service: str) -> None:
        for replica in self._replicas_of(service):
            with contextlib.suppress(xmlrpc.client.Fault):  # already stopped
                self._rpc().supervisor.stopProcess(replica.name, True)

    def start(self, service: str, wait_s: float = 60.0) -> None:
        for replica in self._replicas_of(service):
            with contextlib.suppress(xmlrpc.client.Fault):  # already started
                self._rpc().supervisor.startProcess(replica.name, False)
        self.wait_ready((service,), wait_s)

    def restart(self, service: str, wait_s: float = 60.0) -> None:
        self.stop(service)
        self.start(service, wait_s)

    def scale(self, service: str, replicas: int, wait_s: float = 60.0) -> None:
        if service in ("redis", "temporal") or service not in SERVICES:
            raise PlatformError(f"{service!r} cannot be scaled on the local platform")
        if not 0 <= replicas <= MAX_REPLICAS:
            raise PlatformError(f"replicas must be between 0 and {MAX_REPLICAS}, got {replicas}")
        before = self.replicas.get(service, 1)
        self.replicas[service] = replicas
        self._forget_replicas(replica_name(service, n) for n in range(replicas, before))
        self._write_conf()
        rpc = self._rpc()
        rpc.supervisor.reloadConfig()
        for n in range(replicas, before):  # scale down: highest replicas go first
            name = replica_name(service, n)
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.supervisor.stopProcess(name, True)
            rpc.supervisor.removeProcessGroup(name)
        for n in range(before, replicas):
            rpc.supervisor.addProcessGroup(replica_name(service, n))
        self._save_state()
        if replicas:
            self.wait_ready((service,), wait_s)

    # -- deploys (Deploy) --------------------------------------------------------------------

    def deploy(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """A rolling deploy, as a Deployment rolls its pods: the service's environment gets
        `env` (what replicas started later run, too), then each replica that does not run it
        yet is stopped (SIGTERM, as a pod is), its program replaced by one with the new
        environment (the config file rewritten, `reloadConfig`, its process group removed and
        added), and waited for until it runs as a new pid and is ready; then the next. A
        replica that already runs `env` is left alone (deploying twice replaces nothing). Stops
        at the first replica that does not come back ready within `wait_s` (its evidence says
        so); deploying again finishes the job."""
        if service in ("redis", "temporal") or service not in SERVICES:
            raise PlatformError(f"{service!r} cannot be deployed on the local platform")
        env = {str(k): str(v) for k, v in env.items()}
        names = [r.name for r in self._replicas_of(service)]
        if not names:
            raise PlatformError(f"no replica of {service!r} to deploy to")
        return self._roll(service, names, env, wait_s)

    def _roll(
        self, service: str, names: list[str], env: dict[str, str], wait_s: float
    ) -> list[DeployEvidence]:
        """`env` becomes the service's; each of `names` that does not run it yet is replaced in
        turn (a replica never replaced runs what the service had)."""
        deploys = read_deploys(self.platform_dir)
        previous = deploys["services"].get(service, {})
        target = {**previous, **env}
        deploys["services"][service] = target
        write_deploys(self.platform_dir, deploys)
        done: list[DeployEvidence] = []
        for name in names:
            running = deploys["replicas"].get(name, previous)
            if all(running.get(k) == v for k, v in env.items()):
                continue
            evidence = self._replace_replica(service, name, target, wait_s)
            done.append(evidence)
            if not evidence.landed:
                break
        return done

    def deployed_env(self, service: str) -> dict[str, str]:
        return dict(read_deploys(self.platform_dir)["services"].get(service, {}))

    def _replace_replica(
        self, service: str, name: str, env: dict[str, str], wait_s: float
    ) -> DeployEvidence:
        before = next((r for r in self._replicas_of(service) if r.name == name), None)
        old_uid = before.uid if before else ""
        deploys = read_deploys(self.platform_dir)
        deploys["replicas"][name] = dict(env)  # what this replica runs from now on
        write_deploys(self.platform_dir, deploys)
        self._write_conf()
        rpc = self._rpc()
        rpc.supervisor.reloadConfig()
        t0 = time.time()
        with contextlib.suppress(xmlrpc.client.Fault):  # already stopped
            rpc.supervisor.stopProcess(name, True)
        stopped_at = time.time()
        rpc.supervisor.removeProcessGroup(name)
        rpc.supervisor.addProcessGroup(name)  # autostart: the replacement starts now
        return self._await_replica(
            service, name, old_uid, env, stopped_at, wait_s, stop_took_s=round(stopped_at - t0, 3)
        )

    def _await_replica(
        self,
        service: str,
        name: str,
        old_uid: str,
        env: dict[str, str],
        since: float,
        wait_s: float,
        **extra: Any,
    ) -> DeployEvidence:
        """The evidence of replica `name` coming back as a new, ready incarnation within
        `wait_s`, or of it not doing so."""
        deadline = time.monotonic() + wait_s
        current: ReplicaStatus | None = None
        while time.monotonic() < deadline:
            current = next((r for r in self._replicas_of(service) if r.name == name), None)
            if current and current.uid and current.uid != old_uid and current.ready:
                return DeployEvidence(
                    name, old_uid, current.uid, dict(env), since, time.time(),
                    extra={**extra, "pid": current.pid},
                )  # fmt: skip
            time.sleep(0.2)
        new_uid = current.uid if current and current.uid and current.uid != old_uid else None
        return DeployEvidence(
            name, old_uid, new_uid, dict(env), since, None,
            extra={**extra, "came_back_ready": False, "state": current.state if current else "GONE"},
        )  # fmt: skip

    # -- blue/green deploys (SideBySide) ----------------------------------------------------

    def add_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """As many new programs as `service` has, numbered after them, each with `env` added
        to its environment (`platform/deploy.json`, as `deploy` records a replaced replica, and
        the deploy in progress under `side_by_side`), added to supervisord and waited for until
        ready; the old ones keep running."""
        if service in ("redis", "temporal") or service not in SERVICES:
            raise PlatformError(f"{service!r} cannot be deployed on the local platform")
        if self.side_by_side(service):
            raise PlatformError(
                f"a side-by-side deploy of {service!r} is in progress; retire one side first"
            )
        before = self.replicas.get(service, 1)
        if not before or 2 * before > MAX_REPLICAS:
            raise PlatformError(
                f"{service!r} has {before} replicas; a side-by-side deploy needs 1 to "
                f"{MAX_REPLICAS // 2} (it runs twice as many for a while)"
            )
        env = {str(k): str(v) for k, v in env.items()}
        deploys = read_deploys(self.platform_dir)
        new_env = {**deploys["services"].get(service, {}), **env}
        added = [replica_name(service, n) for n in range(before, 2 * before)]
        for name in added:
            deploys["replicas"][name] = new_env
        deploys["side_by_side"][service] = {"size": before, "env": env}
        write_deploys(self.platform_dir, deploys)
        self.replicas[service] = 2 * before
        self._write_conf()
        rpc = self._rpc()
        rpc.supervisor.reloadConfig()
        started_at = time.time()
        for name in added:
            rpc.supervisor.addProcessGroup(name)  # autostart
        self._save_state()
        return [
            self._await_replica(service, name, "", new_env, started_at, wait_s) for name in added
        ]

    def retire_replicas(
        self, service: str, env: dict[str, str], wait_s: float = 120.0
    ) -> list[DeployEvidence]:
        """Replicas are numbered from 0, so when the new side runs `env`, the old one (the low
        numbers) cannot simply go: each old replica, idle by now, is replaced in place by one
        running `env` (as `deploy` does), then the added ones are scaled away (SIGTERM: each
        finishes the workflow tasks it holds; its sagas go on on the others, which run the
        same code). When the old side runs `env` (the deploy is abandoned), the added ones just
        go. Returns the replicas replaced in place."""
        pending = self.side_by_side(service)
        if not pending:
            return []
        size = int(pending["size"])
        keep = [replica_name(service, n) for n in range(size)]
        replaced = self._roll(service, keep, env, wait_s)
        if all(e.landed for e in replaced):
            self.scale(service, size, wait_s)
            deploys = read_deploys(self.platform_dir)
            deploys["side_by_side"].pop(service, None)
            write_deploys(self.platform_dir, deploys)
        return replaced

    def side_by_side(self, service: str) -> dict[str, Any] | None:
        """The side-by-side deploy of `service` in progress (`{"size": replicas before it,
        "env": what the added replicas run}`), or None."""
        return read_deploys(self.platform_dir)["side_by_side"].get(service)

    def _forget_replicas(self, names: Iterable[str]) -> None:
        deploys = read_deploys(self.platform_dir)
        for name in names:
            deploys["replicas"].pop(name, None)
        write_deploys(self.platform_dir, deploys)

    def redis(self, *command: str) -> Any:
        client = redis.Redis.from_url(
            self.endpoints().redis_url, decode_responses=True, socket_timeout=10
        )
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def collect_logs(self, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for log in sorted(self.logs_dir.glob("*.log")):
            target = dest / log.name
            if target.resolve() != log.resolve():
                shutil.copyfile(log, target)
            copied.append(target)
        return copied

    # -- ambiguous faults (Pause, Partition, ReplyLoss) ------------------------------------

    def unsupported(self, fault: str) -> str | None:
        return local_unsupported(fault)

    def _pids_of(self, service: str) -> dict[str, int]:
        """Running replicas of `service` and their pids, straight from supervisord (cheap
        enough to flap a pause every few hundred milliseconds)."""
        if service not in SERVICES:
            raise PlatformError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
        return {
            info["name"]: info["pid"]
            for info in self._rpc().supervisor.getAllProcessInfo()
            if self._service_of(info["name"]) == service
            and info["statename"] == "RUNNING"
            and info["pid"]
        }

    def pause(self, service: str, count: int | None = None) -> list[PauseEvidence]:
        running = self._pids_of(service)
        if not running:
            raise PlatformError(f"no running replica of {service!r} to pause")
        names = sorted(running)
        if count is not None:
            names = sorted(random.sample(names, min(count, len(names))))
        found = []
        for name in names:
            seen = freeze(running[name])
            found.append(PauseEvidence(name, str(running[name]), seen["stopped"], seen))
        return found

    def resume(self, service: str | None = None) -> list[str]:
        if service is None:  # every frozen process of this stack, found by its marker
            procs = marked_processes(self.stack_id)
            names = {}
            with contextlib.suppress(OSError, xmlrpc.client.Error):  # supervisord may be gone
                names = {i["pid"]: i["name"] for i in self._rpc().supervisor.getAllProcessInfo()}
        else:
            pids = self._pids_of(service)
            procs = []
            for pid in pids.values():
                # supervisord may still list a replica killed a moment ago (a kill mid-request
                # resumes its service at once): gone is nothing to resume
                with contextlib.suppress(psutil.NoSuchProcess):
                    procs.append(psutil.Process(pid))
            names = {pid: name for name, pid in pids.items()}
        return [names.get(pid, str(pid)) for pid in thaw(procs)]

    def nudge(self, service: str, ms: float) -> float:
        """SIGCONT and SIGSTOP straight to the processes (their pids asked of supervisord once,
        before): nothing but the sleep between the two signals."""
        return run_slice(list(self._pids_of(service).values()), ms)

    def held_work(self, service: str) -> dict[str, dict[str, Any]]:
        pids = self._pids_of(service)
        if service == "projection":
            return {name: self._pending_entries(name) for name in pids}
        if service in HTTP_SERVICES:
            port = self._ports_of(service)[0]
            return {name: {**socket_queues(pid, port), "port": port} for name, pid in pids.items()}
        return {}

    def _pending_entries(self, consumer: str) -> dict[str, Any]:
        """Entries delivered to the projection replica `consumer` and not acknowledged."""
        client = redis.Redis.from_url(
            self.endpoints().redis_url, decode_responses=True, socket_timeout=5
        )
        try:
            pending = client.xpending_range(
                keys.EVENTS, keys.PROJECTION_GROUP, "-", "+", 5, consumername=consumer
            )
        except redis.RedisError as exc:
            return {"pending_entries": 0, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            client.close()
        return {"pending_entries": len(pending), "entries": [p["message_id"] for p in pending]}

    def _ports_of(self, service: str) -> tuple[int, ...]:
        field = PORT_FIELDS.get(service)
        if field is None:
            raise PlatformError(
                f"{service!r} has no port of its own to cut off; cut it off from what it calls "
                "instead (redis, temporal, payment-service, inventory-service, notification-service)"
            )
        return (getattr(self.ports, field),)

    def _net_fault(self, kind: str, service: str) -> NetFault:
        why = nft_unsupported()
        if why:
            raise PlatformError(why)
        return NftTable(self.stack_id).add(kind, service, self._ports_of(service))

    def partition(self, service: str) -> NetFault:
        return self._net_fault("partition", service)

    def lose_replies(self, service: str) -> NetFault:
        return self._net_fault("reply_loss", service)

    def net_faults(self) -> list[NetFault]:
        """The network faults in place now, with what each dropped so far."""
        return NftTable(self.stack_id).faults() if nft_unsupported() is None else []

    def heal(self, service: str | None = None) -> list[NetFault]:
        if nft_unsupported() is not None:
            return []
        return NftTable(self.stack_id).remove(service)

    def sweep(self) -> dict[str, Any]:
        """Undo every fault of this stack (`sagaquake heal`), as the Kubernetes platform's sweep
        does: what was healed, what was resumed, and what could not be (it never raises)."""
        found: dict[str, Any] = {"healed": [], "resumed": [], "errors": []}
        try:
            found["healed"] = [f.as_dict() for f in self.heal()]
        except HarnessError as exc:
            found["errors"].append(str(exc))
        try:
            found["resumed"] = self.resume()
        except HarnessError as exc:
            found["errors"].append(str(exc))
        return found


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"
    except OSError:
        return f"(no log at {path})"
