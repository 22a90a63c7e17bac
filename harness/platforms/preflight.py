"""Checks before anything starts, each failing with one line that says what is wrong and how to fix it."""

from __future__ import annotations

import contextlib

import psutil

from harness.errors import PortInUseError
from harness.settings import port_is_free

__all__ = ["check_ports_free", "port_owner"]


def port_owner(port: int) -> str | None:
    """Who listens on `port` on this machine, if the OS tells us."""
    with contextlib.suppress(psutil.Error, PermissionError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "another process"
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(conn.pid)
                    return f"pid {conn.pid} ({proc.name()})"
                return f"pid {conn.pid}"
    return None


def check_ports_free(ports: dict[str, int]) -> None:
    """Raise PortInUseError naming the first taken port, its use, and its owner."""
    for use, port in ports.items():
        if not port_is_free(port):
            owner = port_owner(port)
            by = f" by {owner}" if owner else ""
            env_name = "SAGAQUAKE_" + use.upper().split("_0")[0].replace("-", "_") + "_PORT"
            hint = env_name if not use.startswith("health") else "SAGAQUAKE_HEALTH_BASE_PORT"
            raise PortInUseError(
                f"port {port} ({use}) is already in use{by}; stop it or choose another port with {hint}"
            )
