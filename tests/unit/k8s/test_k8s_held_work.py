"""Held work and chosen kills on Kubernetes (base.HeldWork), so a kill can land mid-request: the
/proc parser both platforms share, on crafted text; what the exec prints in a pod and how it is
read (crafted, and the command run for real on this machine); the container port and the
projection's consumer from the manifests; and, at the `Clients` seam, that held_work execs as
the chaos identity only with pods/exec and that kill_replicas deletes exactly the pod named."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from k8s_fakes import STACK, ApiError, FakeCluster, FakePod, fake_clients, permissions
from k8s_fault_fakes import chaos_role
from kubernetes import client as k8s

from harness.chaos import context, midrequest
from harness.errors import ConfigError, PlatformError
from harness.platforms.base import HTTP_SERVICES, HeldWork
from harness.platforms.kubernetes import platform as kubernetes_module
from harness.platforms.kubernetes.checks import ALWAYS_GRANTED, CHAOS_PERMISSIONS
from harness.platforms.kubernetes.held_work import (
    consumer_name,
    held_sockets,
    held_sockets_command,
    http_port,
    pending_entries,
)
from harness.platforms.kubernetes.manifests import pod_templates, render_overlay
from harness.platforms.kubernetes.platform import KubernetesPlatform
from harness.platforms.proc_net import TcpQueues, socket_inodes, tcp_queues

pytestmark = pytest.mark.unit

_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
_TAIL = "1 0000000000000000 20 4 30 10 -1"


def tcp_line(n: int, local: str, remote: str, state: str, rx: int, inode: int) -> str:
    return (
        f"  {n:>2}: {local} {remote} {state} 00000000:{rx:08X} 00:00000000 00000000 "
        f"10001        0 {inode} {_TAIL}"
    )


# The pod 10.244.0.5 (0500F40A) with its app (pid 7) on 8080 (1F90): 2 connections it has not
# accepted (in its listener's backlog; their own sockets have no file yet: inode 0, so their
# bytes are not counted as unread), from a saga worker 10.244.0.7 and from the node 172.18.0.2
# (closed by then: CLOSE_WAIT), one in TIME_WAIT (long done), one accepted with 18 bytes unread,
# one over IPv6 with 5, an outgoing call of its own to another pod's 8080, another port's
# listener, and a listener PID 1 would own were it not the pod's pause process.
PROC_TCP = "\n".join(
    [
        _HEAD,
        tcp_line(0, "00000000:1F90", "00000000:0000", "0A", 2, 41001),
        tcp_line(1, "0500F40A:1F90", "0700F40A:C350", "01", 40, 0),
        tcp_line(6, "0500F40A:1F90", "020012AC:C353", "08", 40, 0),
        tcp_line(7, "0500F40A:1F90", "0900F40A:C354", "06", 0, 0),
        tcp_line(2, "0500F40A:1F90", "0700F40A:C351", "01", 18, 41002),
        tcp_line(3, "0500F40A:9C40", "0700F40A:1F90", "01", 32, 41003),
        tcp_line(4, "00000000:1F91", "00000000:0000", "0A", 3, 41004),
        tcp_line(5, "00000000:1F90", "00000000:0000", "0A", 9, 41009),
        _HEAD.replace("rem_address", "remote_address"),
        tcp_line(
            0,
            "0000000000000000FFFF00000500F40A:1F90",
            "0000000000000000FFFF00000700F40A:C352",
            "01",
            5,
            41005,
        ),
    ]
)
PROC_FDS = """/proc/1/fd:
total 0
lrwx------ 1 65535 65535 64 Jan  1 00:00 3 -> socket:[41009]
/proc/7/fd:
total 0
lr-x------ 1 10001 10001 64 Jan  1 00:00 0 -> /dev/null
lrwx------ 1 10001 10001 64 Jan  1 00:00 5 -> socket:[41001]
lrwx------ 1 10001 10001 64 Jan  1 00:00 6 -> socket:[41002]
lrwx------ 1 10001 10001 64 Jan  1 00:00 7 -> socket:[41003]
lrwx------ 1 10001 10001 64 Jan  1 00:00 8 -> socket:[41005]
lrwx------ 1 10001 10001 64 Jan  1 00:00 9 -> anon_inode:[eventpoll]
"""
HELD = {"accept_queue": 2, "unread_bytes": 23, "connections_with_unread": 2}
PEERS = {"10.244.0.7": 3, "172.18.0.2": 1}


def exec_output(tcp: str = PROC_TCP, fds: str = PROC_FDS, port: int = 8080) -> str:
    """What the command prints in a pod with these /proc contents (grep's filter included)."""
    mark = f":{port:04X} "
    kept = [line for line in tcp.splitlines() if mark in line]
    return "\n".join(["== tcp", *kept, "== fd", *fds.splitlines()]) + "\n"


# -- the shared parser (proc_net) ---------------------------------------------------------------


def test_tcp_queues_counts_the_owners_backlog_and_unread_bytes_on_its_port() -> None:
    inodes = {"41001", "41002", "41003", "41005"}
    queues = tcp_queues(PROC_TCP.splitlines(), 8080, inodes)
    assert queues == TcpQueues(
        accept_queue=2, unread_bytes=23, connections_with_unread=2, listening=1,
        peers=(("10.244.0.7", 3), ("172.18.0.2", 1)),
    )  # fmt: skip
    assert queues.counts() == HELD
    assert tcp_queues(PROC_TCP.splitlines(), 8081, inodes) == TcpQueues()  # not its socket
    # connections not accepted yet belong to no one: their callers are seen all the same
    backlog = (("10.244.0.7", 1), ("172.18.0.2", 1))
    assert tcp_queues(PROC_TCP.splitlines(), 8080, set()) == TcpQueues(peers=backlog)
    assert tcp_queues(["garbage", "  0: nonsense here", ""], 8080, inodes) == TcpQueues()


def test_socket_inodes_read_readlink_targets_and_ls_lines() -> None:
    assert socket_inodes("socket:[12]\npipe:[13]\n/dev/null\nsocket:[14]") == {"12", "14"}
    assert socket_inodes(PROC_FDS) == {"41001", "41002", "41003", "41005", "41009"}


# -- what the exec prints, and how it is read ------------------------------------------------------


def test_held_sockets_reads_the_exec_output_and_leaves_pid_1_out() -> None:
    held = held_sockets(exec_output(), 8080)
    assert held == {
        **HELD,
        "port": 8080,
        "sockets": 4,
        "peers": PEERS,
    }  # 41009 is PID 1's: not the app's


def test_held_sockets_says_why_when_it_sees_no_listener_of_the_app() -> None:
    held = held_sockets(exec_output(fds="/proc/7/fd:\ntotal 0\n"), 8080)
    assert (held["accept_queue"], held["sockets"]) == (0, 0)
    assert held["why"].startswith("no socket of the app listens on port 8080 in this pod")
    odd = held_sockets("sh: 1: ls: Permission denied\n", 8080)
    assert odd["accept_queue"] == 0 and odd["why"].startswith("unexpected output: 'sh: 1: ls:")


def test_the_command_greps_the_port_in_hex() -> None:
    command = held_sockets_command(8080)
    assert command[:2] == ["sh", "-c"]
    assert "grep -h ':1F90 ' /proc/net/tcp /proc/net/tcp6" in command[2]
    assert "ls -l /proc/[0-9]*/fd" in command[2]


def _until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_the_command_for_real_sees_a_connection_this_process_has_not_accepted() -> None:
    """Run as an exec would, on this machine: the listener is this test's own socket."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp")

    def held(port: int) -> dict[str, Any]:
        command = held_sockets_command(port)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        return held_sockets(done.stdout, port)

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        assert held(port)["accept_queue"] == 0 and "why" not in held(port)
        with socket.create_connection(("127.0.0.1", port)) as caller:
            request = b"POST /charges HTTP/1.1\r\n\r\n"
            caller.sendall(request)
            _until(lambda: held(port)["accept_queue"] == 1)
            assert held(port)["peers"] == {"127.0.0.1": 1}
            conn, _ = server.accept()
            with conn:
                _until(lambda: held(port)["unread_bytes"] == len(request))
                assert held(port)["connections_with_unread"] == 1


# -- what the manifests say ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["kind", "minikube"])
def test_every_http_service_names_its_container_port_http(overlay: str) -> None:
    docs = render_overlay(overlay)
    assert {s: http_port(docs, s) for s in HTTP_SERVICES} == dict.fromkeys(HTTP_SERVICES, 8080)
    with pytest.raises(ConfigError, match=r"the pods of 'projection' declare no container port "
                       r"named 'http' in the manifests: name the port"):  # fmt: skip
        http_port(docs, "projection")


def _pod(name: str, env: list[k8s.V1EnvVar] | None, hostname: str | None = None) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="projection", env=env)],
                           hostname=hostname),
    )  # fmt: skip


def test_the_projections_consumer_is_the_name_its_manifest_fixes() -> None:
    [spec] = [
        spec
        for workload, spec in pod_templates(render_overlay("kind"))
        if workload["metadata"]["name"] == "projection"
    ]
    env = [k8s.V1EnvVar(name=e["name"], value=e.get("value")) for e in spec["containers"][0]["env"]]
    assert consumer_name(_pod("projection-5d8f-xk2pq", env)) == "projection-0"


def test_the_consumer_falls_back_to_the_pods_hostname_as_the_projection_does() -> None:
    by_ref = k8s.V1EnvVar(
        name="SAGAQUAKE_CONSUMER_NAME",
        value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name")),
    )  # fmt: skip
    assert consumer_name(_pod("projection-abc", [by_ref])) == "projection-abc"
    assert consumer_name(_pod("projection-abc", None)) == "projection-abc"
    assert consumer_name(_pod("projection-abc", None, hostname="reader")) == "reader"


class StubRedis:
    """xpending_range as redis-py answers it, for one consumer's pending entries."""

    def __init__(self, pending: dict[str, list[str]], error: Exception | None = None) -> None:
        self.pending, self.error = pending, error
        self.asked: list[tuple[Any, ...]] = []
        self.closed = False

    def xpending_range(self, name: str, groupname: str, min: str, max: str, count: int,
                       consumername: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        self.asked.append((name, groupname, min, max, count, consumername))
        if self.error:
            raise self.error
        return [
            {"message_id": i, "consumer": consumername, "time_since_delivered": 5,
             "times_delivered": 1}
            for i in self.pending.get(consumername or "", [])
        ]  # fmt: skip

    def close(self) -> None:
        self.closed = True


def test_pending_entries_are_the_consumers_and_an_error_is_said_not_raised() -> None:
    stub = StubRedis({"projection-0": ["1-0", "2-0"]})
    assert pending_entries(stub, "projection-0") == {
        "pending_entries": 2, "entries": ["1-0", "2-0"], "consumer": "projection-0",
    }  # fmt: skip
    assert stub.asked == [("orders:events", "projection", "-", "+", 100, "projection-0")]
    down = StubRedis({}, redis.ConnectionError("refused"))
    assert pending_entries(down, "projection-0") == {
        "pending_entries": 0, "consumer": "projection-0", "error": "ConnectionError: refused",
    }  # fmt: skip


# -- the platform, at the Clients seam -------------------------------------------------------------


def make(
    tmp_path: Path, exec_rbac: bool = True, **kwargs: Any
) -> tuple[KubernetesPlatform, FakeCluster]:
    """A platform whose chaos identity has exactly the Role of k8s/base (plus the exec opt-in)."""
    cluster = FakeCluster(dict(STACK), chaos_rbac=chaos_role(exec_rbac=exec_rbac), **kwargs)
    platform = KubernetesPlatform(
        tmp_path, overlay="kind", clients=fake_clients(cluster), rng=random.Random(5),
        clock=cluster.clock, sleep=cluster.sleep, reachable=lambda host, port: True,
    )  # fmt: skip
    return platform, cluster


def chaos_used(cluster: FakeCluster) -> set[tuple[str, str, str]]:
    return {
        p for who, m in cluster.calls if who == "chaos" for p in permissions(m)
    } - ALWAYS_GRANTED


def busy(cluster: FakeCluster, service: str) -> FakePod:
    """One pod of `service` holding the crafted work; the others have nothing queued."""
    pods = sorted(cluster.live(service), key=lambda p: p.name)
    for pod in pods:  # its listener alone, nothing in its backlog
        pod.proc_tcp = "\n".join(
            [_HEAD, tcp_line(0, "00000000:1F90", "00000000:0000", "0A", 0, 41001)]
        )
        pod.proc_fds = "/proc/7/fd:\nlrwx------ 1 10001 10001 64 Jan  1 00:00 5 -> socket:[41001]\n"
    pods[-1].proc_tcp, pods[-1].proc_fds = PROC_TCP, PROC_FDS
    return pods[-1]


def test_the_platform_offers_held_work(tmp_path: Path) -> None:
    platform, _ = make(tmp_path)
    assert isinstance(platform, HeldWork)


def test_held_work_execs_into_every_running_pod_as_the_chaos_identity(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    holder = busy(cluster, "payment-service")
    held = platform.held_work("payment-service")
    assert held[holder.name] == {**HELD, "port": 8080, "sockets": 4, "peers": PEERS}
    [other] = set(held) - {holder.name}
    assert held[other] == {"accept_queue": 0, "unread_bytes": 0, "connections_with_unread": 0,
                           "port": 8080, "sockets": 1, "peers": {}}  # fmt: skip
    assert sorted((who, pod) for who, pod, _ in cluster.execs) == sorted(
        ("chaos", name) for name in held
    )
    assert {tuple(command) for _, _, command in cluster.execs} == {
        tuple(held_sockets_command(8080))
    }
    assert chaos_used(cluster) <= chaos_role(exec_rbac=True)
    assert not [m for who, m in cluster.calls if who == "admin" and "exec" in m]


def test_a_pod_whose_exec_fails_is_reported_and_the_others_read(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    holder = busy(cluster, "payment-service")
    run = platform.clients.chaos_exec
    assert run is not None
    broken: set[str] = set()

    def flaky(pod: str, command: list[str]) -> str:
        if pod in broken:
            raise ApiError(500, "container not running")
        return run(pod, command)

    platform.clients.chaos_exec = flaky
    [other] = [p.name for p in cluster.live("payment-service") if p.uid != holder.uid]
    broken.add(other)
    held = platform.held_work("payment-service")
    assert held[holder.name]["accept_queue"] == 2
    assert held[other]["accept_queue"] == 0 and "container not running" in held[other]["why"]
    broken.add(holder.name)
    with pytest.raises(PlatformError, match="could not exec into any pod of 'payment-service'"):
        platform.held_work("payment-service")


def test_held_work_is_refused_without_pods_exec_and_execs_nothing(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path, exec_rbac=False)
    with pytest.raises(PlatformError) as err:
        platform.held_work("order-service")
    message = str(err.value)
    assert message.startswith("cannot exec into the pods of 'order-service': the chaos identity")
    assert "may not exec into pods (pods/exec create, pods/exec get)" in message
    assert "which held_work needs to read the pods' sockets" in message
    assert "SAGAQUAKE_K8S_POD_EXEC=1" in message and "k8s/base/chaos-rbac-exec.yaml" in message
    assert cluster.execs == []


def test_held_work_of_a_service_without_a_port_of_its_own_is_empty(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    assert platform.held_work("saga-worker") == {} and platform.held_work("redis") == {}
    assert cluster.execs == []
    with pytest.raises(ConfigError, match="unknown service 'payments'"):
        platform.held_work("payments")


def test_held_work_of_the_projection_is_its_consumers_pending_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, cluster = make(
        tmp_path, env={"projection": {"SAGAQUAKE_CONSUMER_NAME": "projection-0"}}
    )
    stub = StubRedis({"projection-0": ["1700000000000-0"]})
    urls: list[str] = []

    def from_url(url: str, **_: Any) -> StubRedis:
        urls.append(url)
        return stub

    monkeypatch.setattr(kubernetes_module.redis.Redis, "from_url", from_url)
    [pod] = cluster.live("projection")
    assert platform.held_work("projection") == {
        pod.name: {"pending_entries": 1, "entries": ["1700000000000-0"], "consumer": "projection-0"}
    }
    assert urls == ["redis://127.0.0.1:30379/0"] and stub.closed  # over the NodePort
    assert cluster.execs == []  # no exec needed


def test_kill_replicas_deletes_exactly_the_named_pod_and_reports_its_replacement(
    tmp_path: Path,
) -> None:
    platform, cluster = make(tmp_path)
    victim, spared = sorted(cluster.live("payment-service"), key=lambda p: p.name)
    others = {p.uid for p in cluster.pods.values() if p.uid != victim.uid}
    cluster.calls.clear()
    calls_when_signalled: list[list[str]] = []
    [evidence] = platform.kill_replicas(
        [victim.name],
        on_signalled=lambda: calls_when_signalled.append([m for _, m in cluster.calls]),
    )
    # the hook runs once the pod is deleted, before the wait for its replacement
    [before_wait] = calls_when_signalled
    assert (
        before_wait[-1] == "delete_namespaced_pod"
        and "delete_namespaced_pod" not in before_wait[:-1]
    )
    assert len(cluster.calls) > len(before_wait)  # and the wait came after
    assert (evidence.name, evidence.old_uid, evidence.signal) == (victim.name, victim.uid, "KILL")
    assert evidence.landed and cluster.last_grace == 0 and evidence.extra["grace_period_s"] == 0
    [new] = [p for p in cluster.live("payment-service") if p.uid not in others]
    assert evidence.new_uid == new.uid and evidence.extra["new_pod"] == new.name
    assert evidence.extra["old_pod_gone"]
    assert {p.uid for p in cluster.pods.values()} == others | {new.uid}  # the other pod lives
    assert spared.uid in {p.uid for p in cluster.live("payment-service")}
    assert [m for who, m in cluster.calls if m == "delete_namespaced_pod"] == [
        "delete_namespaced_pod"
    ]
    assert chaos_used(cluster) <= set(CHAOS_PERMISSIONS)
    assert not [m for who, m in cluster.calls if who == "admin"]


def test_kill_replicas_of_the_statefulset_pod_comes_back_under_its_name(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    [old] = cluster.live("redis")
    [evidence] = platform.kill_replicas(["redis-0"], "TERM", wait_s=60)
    [new] = cluster.live("redis")
    assert evidence.landed and (evidence.old_uid, evidence.new_uid) == (old.uid, new.uid)
    assert evidence.extra["new_pod"] == "redis-0" and cluster.last_grace is None


def test_kill_replicas_refuses_a_name_that_does_not_run_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    platform, cluster = make(tmp_path)
    [real] = cluster.live("order-service")
    with pytest.raises(PlatformError, match=r"no running replica named 'payment-service-gone' "
                       r"to kill; running: .*order-service"):  # fmt: skip
        platform.kill_replicas([real.name, "payment-service-gone"])
    with pytest.raises(PlatformError, match="signal 'HUP' is not supported on kubernetes"):
        platform.kill_replicas([real.name], "HUP")
    assert "delete_namespaced_pod" not in {m for _, m in cluster.calls}
    assert platform.kill_replicas([]) == []


def test_kill_replicas_of_two_services_kills_both_and_keeps_the_order(tmp_path: Path) -> None:
    platform, cluster = make(tmp_path)
    [order] = cluster.live("order-service")
    [notify] = cluster.live("notification-service")
    evidence = platform.kill_replicas([notify.name, order.name, notify.name])
    assert [e.name for e in evidence] == [notify.name, order.name]
    assert all(e.landed for e in evidence)


def test_a_kill_mid_request_runs_on_kubernetes_and_kills_the_pod_holding_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chaos action itself (harness.chaos.midrequest) against the fake cluster: it freezes
    every pod, finds the one holding work, kills exactly that one and lets the other go."""
    platform, cluster = make(tmp_path)
    holder = busy(cluster, "payment-service")
    [other] = [p for p in cluster.live("payment-service") if p.uid != holder.uid]
    monkeypatch.setitem(context._PLATFORMS, "k8s", platform)
    config = {"sagaquake_platform": "k8s", "sagaquake_run_dir": str(tmp_path),
              "sagaquake_experiment": "kill-payment-mid-request", "sagaquake_compress": "1"}  # fmt: skip
    window = midrequest.kill_mid_request("payment-service", configuration=config)
    assert window["landed"] is True
    [kill] = window["evidence"]["kills"]
    assert (kill["name"], kill["old_uid"]) == (holder.name, holder.uid)
    assert kill["frozen"] == sorted([holder.name, other.name])
    assert kill["in_flight"] == {**HELD, "port": 8080, "sockets": 4, "peers": PEERS}
    assert holder.uid not in {p.uid for p in cluster.live("payment-service")}
    assert not other.stopped  # resumed
    assert other.uid in {p.uid for p in cluster.live("payment-service")}
