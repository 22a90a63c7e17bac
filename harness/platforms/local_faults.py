"""The ambiguous faults of the local platform: frozen processes and an nftables table per stack.

Pause is SIGSTOP/SIGCONT: the kernel still completes handshakes into a frozen server's listen
backlog, so callers connect and then hang. The network faults live in one nftables table named
after the stack (`inet sagaquake_<stack id>`), in the `output` hook, which every packet on
loopback crosses once:

- partition: every segment to or from the service's port is dropped; callers see connect and
  read time-outs, never a refusal;
- reply loss: segments *from* the service's port that carry data (PSH) are dropped, so the
  handshake and the request get through, the server does the work, and its answer never
  arrives (checked on this kind of machine: docs/chaos.md).

Every rule carries a counter and a comment naming its fault, so what it dropped is evidence and
`heal` finds it by name. Deleting the table removes everything at once; a table whose stack has
no live supervisord is a crashed run's, and `down` and the next `up` delete it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from typing import Any

import psutil

from harness.errors import PlatformError
from harness.platforms.base import NETWORK_FAULTS, NetFault
from harness.platforms.proc_net import socket_inodes, tcp_queues

__all__ = [
    "TABLE_PREFIX",
    "NftTable",
    "delete_table",
    "freeze",
    "frozen",
    "nft_unsupported",
    "run_slice",
    "socket_queues",
    "stale_tables",
    "thaw",
]

TABLE_PREFIX = "sagaquake_"
_FAMILY = "inet"
_CHAIN = "out"


# -- pause ------------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (a service that forks is frozen whole)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def freeze(pid: int, wait_s: float = 1.0) -> dict[str, Any]:
    """SIGSTOP `pid` and its children; return what the kernel then says of each (a signal is
    delivered asynchronously: wait up to `wait_s` for every one to show as stopped)."""
    procs = _tree(pid)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGSTOP)
    return _until_stopped(procs, wait_s)


def run_slice(pids: list[int], ms: float, wait_s: float = 1.0) -> float:
    """Let the frozen processes `pids` (their children too) run for `ms` milliseconds and stop
    them again; return the milliseconds between the first SIGCONT and the last SIGSTOP (how long
    they could run: the signals go straight to the pids, nothing is looked up in between)."""
    procs = [proc for pid in pids for proc in _tree(pid)]
    started = time.perf_counter()
    for proc in procs:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGCONT)
    if ms > 0:
        time.sleep(ms / 1000)
    for proc in procs:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGSTOP)
    ran = (time.perf_counter() - started) * 1000
    _until_stopped(procs, wait_s)
    return ran


def _until_stopped(procs: list[psutil.Process], wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        states = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                states[proc.pid] = proc.status()
        stopped = bool(states) and all(s == psutil.STATUS_STOPPED for s in states.values())
        if stopped or time.monotonic() >= deadline:
            return {"pids": sorted(states), "stopped": stopped}
        time.sleep(0.005)


def frozen(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `procs` the kernel reports stopped."""
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_STOPPED:
                found.append(proc)
    return found


def thaw(procs: list[psutil.Process]) -> list[int]:
    """SIGCONT every stopped process of `procs` (their children too); return their pids."""
    woken = []
    for proc in frozen([p for root in procs for p in _tree(root.pid)]):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGCONT)
            woken.append(proc.pid)
    return sorted(set(woken))


def socket_queues(pid: int, port: int) -> dict[str, int]:
    """What the kernel holds for `pid` (and its children) on local `port` that the process has
    not read: connections waiting in its accept queue, and request bytes waiting in
    established connections (from /proc/net/tcp*, by the sockets the processes own; the
    parsing is proc_net's, shared with the Kubernetes platform)."""
    links = []
    for proc in _tree(pid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                with contextlib.suppress(OSError):
                    links.append(os.readlink(f"/proc/{proc.pid}/fd/{fd}"))
    inodes = socket_inodes("\n".join(links))
    lines: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as found:
            lines += found.readlines()
    return tcp_queues(lines, port, inodes).counts()


# -- nftables ---------------------------------------------------------------------------------


def nft_unsupported() -> str | None:
    """Why nftables rules cannot be loaded here (one line: what to install or how to run), or None."""
    if shutil.which("nft") is None:
        return (
            "nft is not installed: install nftables (`sudo apt-get install nftables`; "
            "`make setup` does as root)"
        )
    if os.geteuid() != 0:
        return "loading nftables rules needs root (CAP_NET_ADMIN): run the experiment as root"
    done = _nft("list", "tables", check=False)
    if done.returncode != 0:
        return f"nft cannot list tables here: {done.stderr.strip() or done.returncode}"
    return None


def _nft(
    *args: str, script: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = ["nft", *args] if script is None else ["nft", "-f", "-"]
    done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=10)
    if check and done.returncode != 0:
        raise PlatformError(f"nft {' '.join(argv[1:])} failed: {done.stderr.strip()}")
    return done


def _tables() -> list[str]:
    done = _nft("list", "tables", check=False)
    names = []
    for line in done.stdout.splitlines():
        parts = line.split()  # "table inet sagaquake_abc"
        if len(parts) == 3 and parts[1] == _FAMILY and parts[2].startswith(TABLE_PREFIX):
            names.append(parts[2])
    return names


def stale_tables(live_stack_ids: set[str]) -> list[str]:
    """Our tables whose stack is not among `live_stack_ids`: left by a crashed run."""
    if shutil.which("nft") is None or os.geteuid() != 0:
        return []
    return [t for t in _tables() if t.removeprefix(TABLE_PREFIX) not in live_stack_ids]


def _comment(kind: str, service: str) -> str:
    return f"{kind}:{service}"


class NftTable:
    """The stack's own nftables table: created with its first rule, deleted with its last."""

    def __init__(self, stack_id: str) -> None:
        self.name = TABLE_PREFIX + stack_id

    @property
    def where(self) -> str:
        return f"{_FAMILY} {self.name} {_CHAIN}"

    def add(self, kind: str, service: str, ports: tuple[int, ...]) -> NetFault:
        """Load the rules of fault `kind` against `ports` (atomically, with the table and chain)."""
        if kind not in NETWORK_FAULTS:
            raise PlatformError(
                f"unknown network fault {kind!r}; one of: {', '.join(NETWORK_FAULTS)}"
            )
        note = _comment(kind, service)
        rules = []
        for port in ports:
            if kind == "partition":
                rules += [f"tcp dport {port}", f"tcp sport {port}"]
            else:  # the answer carries data: PSH; the handshake and the request do not match
                rules.append(f"tcp sport {port} tcp flags & psh == psh")
        script = "\n".join(
            [
                f"add table {_FAMILY} {self.name}",
                f"add chain {_FAMILY} {self.name} {_CHAIN} "
                "{ type filter hook output priority 0; policy accept; }",
                *(f'add rule {self.where} {r} counter drop comment "{note}"' for r in rules),
            ]
        )
        _nft(script=script)
        return NetFault(kind, service, ports, self.where)

    def faults(self) -> list[NetFault]:
        """The faults in place, each with the packets its rules dropped so far."""
        done = _nft("-j", "list", "table", _FAMILY, self.name, check=False)
        if done.returncode != 0:
            return []  # no table: no fault
        found: dict[str, dict[str, Any]] = {}
        for item in json.loads(done.stdout).get("nftables", []):
            rule = item.get("rule")
            if not rule or ":" not in rule.get("comment", ""):
                continue
            kind, service = rule["comment"].split(":", 1)
            entry = found.setdefault(
                rule["comment"], {"kind": kind, "service": service, "ports": set(), "packets": 0}
            )
            for expr in rule.get("expr", []):
                if "counter" in expr:
                    entry["packets"] += int(expr["counter"].get("packets", 0))
                match = expr.get("match", {})
                payload = match.get("left", {}).get("payload", {})
                if payload.get("field") in ("sport", "dport") and isinstance(
                    match.get("right"), int
                ):
                    entry["ports"].add(match["right"])
        return [
            NetFault(e["kind"], e["service"], tuple(sorted(e["ports"])), self.where, e["packets"])
            for e in found.values()
        ]

    def remove(self, service: str | None = None) -> list[NetFault]:
        """Delete the rules of `service` (the whole table when None, or when none remain);
        return the faults removed with their final counters. Idempotent."""
        faults = self.faults()
        gone = [f for f in faults if service in (None, f.service)]
        if len(gone) == len(faults):
            _nft("delete", "table", _FAMILY, self.name, check=False)
            return gone
        done = _nft("-a", "list", "chain", _FAMILY, self.name, _CHAIN)
        handles = [
            line.rsplit("# handle ", 1)[1].strip()
            for line in done.stdout.splitlines()
            if "# handle " in line
            and any(f'comment "{_comment(f.kind, f.service)}"' in line for f in gone)
        ]
        for handle in handles:
            _nft("delete", "rule", _FAMILY, self.name, _CHAIN, "handle", handle, check=False)
        return gone


def delete_table(name: str) -> None:
    """Delete one of our tables by name (a crashed run's); fine if it is gone."""
    if name.startswith(TABLE_PREFIX):
        _nft("delete", "table", _FAMILY, name, check=False)
