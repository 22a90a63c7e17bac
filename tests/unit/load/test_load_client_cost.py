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


_IMPATIENT_ON_A_BODY_THAT_IS_NO_JSON = """
import sys, time
import gevent.pywsgi
from locust.env import Environment
from harness.load.arrivals import Arrival
from harness.load.user import OrderUser, driver

def app(environ, start_response):
    start_response("202 Accepted", [("Content-Type", "text/plain")])
    return [b"accepted"]

server = gevent.pywsgi.WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None)
server.start()
d = driver()
d.begin(time.time(), "n", (0, 1))
user = OrderUser(Environment(user_classes=[OrderUser]))
user._arrival = Arrival(0, 0.0)
user.place_order()
print(len(d.waiting_customers))
"""


def test_an_impatient_customer_told_ok_without_a_json_body_has_nothing_to_look_at(
    tmp_path: Path,
) -> None:
    """A 2xx whose body is no JSON object is `ok` (the order was taken) but names no order: the
    customer who would look at it later waits for nothing, and the user does not fail."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flat = (ROOT / "scenarios" / "load" / "profiles" / "flat.yaml").read_text()
    profile = tmp_path / "impatient.yaml"
    profile.write_text(
        flat.split("\npatience:")[0] + "\npatience: {after_s: 60, cancel_share: 1}\n"
    )
    env = {
        "PYTHONPATH": str(ROOT),
        "SAGAQUAKE_PROFILE": str(profile),
        "SAGAQUAKE_RUN_DIR": str(tmp_path),
        "SAGAQUAKE_ORDER_API": f"http://127.0.0.1:{port}",
    }
    done = subprocess.run(
        [sys.executable, "-c", _IMPATIENT_ON_A_BODY_THAT_IS_NO_JSON, str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1"]
    (ledger,) = (tmp_path / "history" / "ledger").glob("client-*.jsonl")
    assert '"outcome":"ok"' in ledger.read_text().replace(" ", "")
