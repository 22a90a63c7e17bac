"""What the read-only probes compute from a run folder: the acceptance rate and the unsettled
orders from the client ledgers, the tolerance `within`, and the time compression."""

from __future__ import annotations

import json
import time

import pytest

from harness.chaos.context import _compress, number, service_name
from harness.chaos.probes import within
from harness.errors import ConfigError
from harness.live import LiveMonitor
from harness.load.ledger import ClientLedger
from tests.unit.live_fakes import FakeRedis

pytestmark = pytest.mark.unit


def record(
    ledger: ClientLedger, key: str, outcome: str, at: float, status: int | None = 202
) -> None:
    ledger.record(
        op_id=key, idempotency_key=key, customer_id="c", amount_cents=1, currency="EUR",
        items=1, attempt=1, sent_at=at, answered_at=at, status=status, outcome=outcome,
    )  # fmt: skip


def test_acceptance_rate_counts_recent_answers_of_every_client(tmp_path) -> None:
    now = time.time()
    with ClientLedger.create(tmp_path, "c1") as a, ClientLedger.create(tmp_path, "c2") as b:
        record(a, "k1", "ok", now - 100)  # outside the window
        record(a, "k2", "ok", now - 5)
        record(b, "k3", "failed", now - 4, 503)
        record(b, "k4", "unknown", now - 3, None)
        record(b, "k5", "ok", now - 2)
    seen = LiveMonitor(tmp_path).acceptance(30)
    assert seen == {
        "window_s": 30, "requests": 4, "ok": 2, "failed": 1, "unknown": 1, "error_ratio": 0.5,
    }  # fmt: skip


def test_no_requests_is_an_error_ratio_of_zero(tmp_path) -> None:
    assert LiveMonitor(tmp_path).acceptance(30)["error_ratio"] == 0.0


def test_unsettled_orders_are_the_accepted_ones_without_a_last_event(tmp_path) -> None:
    now = time.time()
    with ClientLedger.create(tmp_path, "c1") as a:
        record(a, "old", "ok", now - 50)
        record(a, "new", "ok", now - 1)
        record(a, "refused", "failed", now - 40, 409)
    watch = LiveMonitor(tmp_path)
    ids = {line["idempotency_key"]: line["order_id"] for line in _lines(tmp_path)}
    seen = watch.unsettled(FakeRedis(events={ids["new"]: {"OrderPlaced", "NotificationSent"}}))
    assert seen["accepted"] == 2 and seen["unsettled"] == 1
    assert seen["oldest"] == [ids["old"]] and 49 < seen["oldest_age_s"] < 60
    assert watch.unsettled(FakeRedis(), accepted_before=now - 60)["unsettled"] == 0


def _lines(run_dir) -> list[dict]:
    path = run_dir / "history" / "ledger" / "client-c1.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ({"oldest_age_s": 12.5}, {"key": "oldest_age_s", "at_most": "60"}, True),
        ({"oldest_age_s": 61}, {"key": "oldest_age_s", "at_most": 60}, False),
        ({"activity_pollers": 0}, {"key": "activity_pollers", "at_least": 1}, False),
        ({"accepting": True}, {"key": "accepting", "equals": True}, True),
        ({"writes_refused": False}, {"key": "writes_refused", "equals": "false"}, True),
        ({"a": {"b": 3}}, {"key": "a.b", "at_most": 3}, True),
        ({"other": 1}, {"key": "missing", "at_most": 3}, False),
        ({"lost_by_stream": "n/a"}, {"key": "lost_by_stream", "at_most": 0}, False),
    ],
)
def test_within_checks_one_field_against_its_limits(value, kwargs, expected) -> None:
    assert within(value, **kwargs) is expected


def test_compression_comes_from_the_configuration_then_env_then_run_json(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("SAGAQUAKE_COMPRESS", raising=False)
    assert _compress({}, tmp_path) == 1.0
    (tmp_path / "run.json").write_text(json.dumps({"compress": 24}))
    assert _compress({}, tmp_path) == 24.0
    monkeypatch.setenv("SAGAQUAKE_COMPRESS", "12")
    assert _compress({"sagaquake_compress": ""}, tmp_path) == 12.0
    assert _compress({"sagaquake_compress": "100"}, tmp_path) == 100.0
    with pytest.raises(ConfigError, match=r"sagaquake_compress='0' is not a number above 0"):
        _compress({"sagaquake_compress": "0"}, tmp_path)


def test_arguments_are_checked_with_messages_that_name_them() -> None:
    assert number("2.5", "every_s", minimum=0) == 2.5
    with pytest.raises(ConfigError, match=r"argument duration_s='soon' is not a number"):
        number("soon", "duration_s")
    with pytest.raises(ConfigError, match=r"argument wait_s=-1 is not a number of 0 or more"):
        number(-1, "wait_s", minimum=0)
    with pytest.raises(ConfigError, match=r"unknown service 'paymnt-service'; use one of: redis"):
        service_name("paymnt-service")
