"""What the Locust process is spared per order: the thread hop of gevent's resolver for hosts that
are addresses, and a cookie jar the order API never uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.runner import resolver_env

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "urls",
    [
        ["http://127.0.0.1:18080"],
        ["http://127.0.0.1:18080", "redis://127.0.0.1:16379/0"],
        ["http://[::1]:18080"],
        ["http://localhost:18080", "redis://localhost:6379/0"],
    ],
)
def test_addresses_need_no_resolver_thread(urls: list[str]) -> None:
    assert resolver_env(urls, environ={}) == {"GEVENT_RESOLVER": "block"}


@pytest.mark.parametrize(
    "urls",
    [
        ["http://order-service:8080"],
        ["http://127.0.0.1:18080", "redis://redis.sagaquake.svc:6379/0"],
    ],
)
def test_a_dns_name_keeps_the_default_resolver(urls: list[str]) -> None:
    """A blocking lookup of a name could stall every user of the process."""
    assert resolver_env(urls, environ={}) == {}


def test_a_resolver_set_by_the_user_is_left_alone() -> None:
    assert resolver_env(["http://127.0.0.1:18080"], environ={"GEVENT_RESOLVER": "ares"}) == {}


_USER_JAR = """
from locust.env import Environment
from harness.load.user import OrderUser
user = OrderUser(Environment(user_classes=[OrderUser]))
print(user.client.cookiejar, user.client.client.cookiejar)
"""


def test_the_order_user_has_no_cookie_jar(tmp_path: Path) -> None:
    """In a process of its own: importing Locust monkey-patches with gevent."""
    env = {
        "PYTHONPATH": str(ROOT),
        "SAGAQUAKE_PROFILE": "flat",
        "SAGAQUAKE_RUN_DIR": str(tmp_path),
        "SAGAQUAKE_ORDER_API": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-c", _USER_JAR], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "None"]
