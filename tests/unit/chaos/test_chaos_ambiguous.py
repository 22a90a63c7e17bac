"""The ambiguous faults' pure parts: how a request is seen to end, the latency summary, the
primitives an experiment needs and the refusal when one cannot run, the flap's arguments."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from harness.chaos.ambiguous import _latency, flap_cycle, primitive_of, round_trip
from harness.chaos.control import primitives_needed, unsupported_primitive
from harness.chaos.runner import load_experiment_file, resolve_experiment
from harness.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose kernel completes handshakes and whose process never answers (a frozen server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def answering_server() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(100)
                conn.sendall(b"+PONG\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(timeout=5)


def test_a_server_that_answers_is_answered(answering_server: int) -> None:
    outcome, took = round_trip("127.0.0.1", answering_server, b"PING\r\n")
    assert outcome == "answered" and took < 1


def test_a_server_that_accepts_and_never_answers_is_no_answer(silent_server: int) -> None:
    outcome, took = round_trip("127.0.0.1", silent_server, b"PING\r\n", timeout_s=0.3)
    assert outcome == "no answer" and took >= 0.3


def test_nothing_listening_is_a_refusal_not_a_time_out() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: the kernel refuses
        outcome, _ = round_trip("127.0.0.1", port, b"PING\r\n", timeout_s=0.5)
    assert outcome == "refused"


def test_latency_percentiles_count_only_answered_requests() -> None:
    samples = [("answered", 0.001 * i) for i in range(1, 101)] + [("no answer", 2.0)]
    summary = _latency(samples)
    assert summary["requests"] == 101 and summary["answered"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5) and summary["max_ms"] == 100.0
    assert summary["p99_ms"] == 100.0
    assert _latency([("no answer", 2.0)]) == {"requests": 1, "answered": 0}


def test_a_flap_must_pause_for_part_of_its_period() -> None:
    assert flap_cycle(0, 0) == (0, 0)
    assert flap_cycle("300", 1000) == (300, 1000)
    for paused, every in ((1000, 1000), (500, 0), (0, 500)):
        with pytest.raises(ConfigError, match=r"flap_paused_ms=.* must be above 0 and below"):
            flap_cycle(paused, every)


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("payment-lost-replies", ["reply_loss"]),
        ("payment-hang", ["pause"]),
        ("slow-redis", ["pause"]),
        ("redis-partition", ["partition"]),
        ("temporal-partition", ["partition"]),
        ("kill-order-service-mid-request", ["pause"]),
        ("payment-outage", []),
    ],
)
def test_the_primitives_an_experiment_needs_come_from_its_method(
    name: str, needs: list[str]
) -> None:
    assert primitives_needed(load_experiment_file(resolve_experiment(name))) == needs


def test_every_fault_action_names_its_primitive() -> None:
    assert primitive_of("lose_replies") == "reply_loss"
    assert primitive_of("partition_service") == "partition"
    assert primitive_of("pause_service") == "pause"
    assert primitive_of("outage") is None


class _NoNft:
    name = "local"

    def unsupported(self, fault: str) -> str | None:
        return "nft is not installed: install nftables" if fault != "pause" else None


def test_an_experiment_whose_primitive_cannot_run_is_refused_in_one_line() -> None:
    lost = load_experiment_file(resolve_experiment("payment-lost-replies"))
    why = unsupported_primitive(_NoNft(), lost)
    assert why == (
        "this experiment needs reply loss, which cannot run here: "
        "nft is not installed: install nftables"
    )
    hang = load_experiment_file(resolve_experiment("payment-hang"))
    assert unsupported_primitive(_NoNft(), hang) is None
