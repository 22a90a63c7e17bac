"""Real-cluster tests: they run only against a reachable kind or minikube cluster.

They apply the stack, so they never touch a cluster by accident: the context must be a kind
(`kind-*`) or minikube one, or named explicitly in SAGAQUAKE_K8S_CONTEXT. The nightly workflow
runs them after `make kind-up`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.platforms.kubernetes.platform import KubernetesPlatform

_REACH_TIMEOUT_S = 3


def _why_no_cluster() -> str | None:
    """None when a suitable cluster answers; else why the tests skip."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:  # pragma: no cover - the kubernetes client is a dependency
        return f"the kubernetes client is not installed ({exc})"
    explicit = os.environ.get("SAGAQUAKE_K8S_CONTEXT")
    try:
        _, active = config.list_kube_config_contexts()
    except (ConfigException, OSError) as exc:
        return f"no kubeconfig ({exc}); run `make kind-up` first"
    context = explicit or (active or {}).get("name")
    if not explicit and not (context and (context.startswith("kind-") or "minikube" in context)):
        return (
            f"the current context {context!r} is neither kind nor minikube; set "
            "SAGAQUAKE_K8S_CONTEXT to run the k8s tests against it (they apply the stack)"
        )
    try:
        cfg = client.Configuration()
        config.load_kube_config(context=context, client_configuration=cfg, persist_config=False)
        cfg.retries = 0  # one short try: a stopped cluster must not slow down every test run
        client.VersionApi(client.ApiClient(cfg)).get_code(_request_timeout=_REACH_TIMEOUT_S)
    except Exception as exc:
        return f"the cluster of context {context!r} does not answer ({type(exc).__name__}: {exc})"
    return None


_REASON = _why_no_cluster()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _REASON is None:
        return
    skip = pytest.mark.skip(reason=f"no Kubernetes cluster for the k8s tests: {_REASON}")
    for item in items:
        if item.get_closest_marker("k8s") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesPlatform]:
    """The stack, up (idempotent: `make kind-up` may have applied it already). Logs of every pod
    go to the test's folder afterwards."""
    run_dir = Path(tmp_path_factory.mktemp("k8s-run"))
    stack = KubernetesPlatform(run_dir)
    stack.up(timeout_s=float(os.environ.get("SAGAQUAKE_K8S_UP_TIMEOUT", "600")))
    yield stack
    logs = Path(os.environ.get("SAGAQUAKE_K8S_TEST_LOGS", run_dir / "logs"))
    stack.collect_logs(logs)
