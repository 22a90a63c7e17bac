"""Platforms: where the stack runs. `attach(kind)` returns the running stack of that kind."""

from __future__ import annotations

from harness.platforms.base import SERVICES, Endpoints, KillEvidence, Platform, ReplicaStatus

__all__ = [
    "PLATFORMS",
    "SERVICES",
    "Endpoints",
    "KillEvidence",
    "Platform",
    "ReplicaStatus",
    "attach",
]

PLATFORMS = ("local", "k8s")


def attach(kind: str = "local") -> Platform:
    """The running stack on platform `kind` (raises StackNotRunningError when there is none)."""
    from harness.errors import ConfigError

    if kind == "local":
        from harness.platforms.local import LocalPlatform

        return LocalPlatform.attach()
    if kind in ("k8s", "kubernetes"):
        from harness.platforms.kubernetes.platform import KubernetesPlatform

        return KubernetesPlatform.attach()
    raise ConfigError(f"unknown platform {kind!r}; use one of: {', '.join(PLATFORMS)}")
