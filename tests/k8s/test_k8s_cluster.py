"""The Kubernetes platform against a real kind or minikube cluster (skipped without one; the
nightly workflow runs them): up, kill a pod and see a new uid, stop/start, Redis admin.
Faults run as the chaos ServiceAccount, so these also prove the Role is enough."""

from __future__ import annotations

import httpx
import pytest

from harness.platforms.base import SERVICES
from harness.platforms.kubernetes.platform import KubernetesPlatform

# Generous: the first test may wait for the whole stack to roll out on a fresh cluster.
pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(900)]


def test_up_brings_every_service_up_and_reachable(platform: KubernetesPlatform) -> None:
    replicas = platform.status()
    assert {r.service for r in replicas} == set(SERVICES)
    assert all(r.ready for r in replicas), [r for r in replicas if not r.ready]
    assert sum(r.service == "payment-service" for r in replicas) >= 2
    endpoints = platform.endpoints()
    for url in (
        endpoints.order_api,
        endpoints.payment_api,
        endpoints.inventory_api,
        endpoints.notification_api,
    ):
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200, url
    assert platform.redis("PING") is True
    assert platform.is_up()


def test_kill_a_payment_pod_brings_a_new_uid(platform: KubernetesPlatform) -> None:
    before = {r.uid for r in platform.status() if r.service == "payment-service"}
    [evidence] = platform.kill("payment-service", 1, "KILL", wait_s=90)
    assert evidence.landed, evidence
    assert evidence.old_uid in before and evidence.new_uid not in before
    after = {r.uid for r in platform.status() if r.service == "payment-service"}
    assert evidence.old_uid not in after and evidence.new_uid in after
    platform.wait_ready(("payment-service",), 60)


def test_kill_redis_brings_redis_0_back_with_its_data(platform: KubernetesPlatform) -> None:
    platform.redis("SET", "sagaquake:k8s-test", "kept")
    [evidence] = platform.kill("redis", 1, "KILL", wait_s=120)
    assert evidence.landed and evidence.extra["new_pod"] == "redis-0"
    platform.wait_ready(("redis",), 60)
    assert platform.redis("GET", "sagaquake:k8s-test") == "kept"  # AOF on the volume


def test_stop_and_start_restore_the_replica_count(platform: KubernetesPlatform) -> None:
    before = sum(r.service == "payment-service" for r in platform.status())
    platform.stop("payment-service")
    assert not [r for r in platform.status() if r.service == "payment-service"]
    platform.start("payment-service", wait_s=120)
    replicas = [r for r in platform.status() if r.service == "payment-service"]
    assert len(replicas) == before and all(r.ready for r in replicas)


def test_redis_config_set_maxmemory_from_the_harness(platform: KubernetesPlatform) -> None:
    original = platform.redis("CONFIG", "GET", "maxmemory")
    value = original[1] if isinstance(original, list) else original["maxmemory"]
    try:
        assert platform.redis("CONFIG", "SET", "maxmemory", "300mb") == "OK"
        got = platform.redis("CONFIG", "GET", "maxmemory")
        assert str(314572800) in (got if isinstance(got, list) else list(got.values()))
    finally:
        platform.redis("CONFIG", "SET", "maxmemory", value)
