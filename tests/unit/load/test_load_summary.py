"""Reading a run folder back: counts, duplicates, the rate per second; checking a plan up front."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.errors import ConfigError
from harness.load.ledger import ClientLedger
from harness.load.runner import load_summary, plan_load, run_load

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def _write_run(
    tmp_path: Path,
    sends: list[tuple[str, int, float, str]],
    duration_s: float = 10.0,
    ended_at: float | None = None,
) -> Path:
    plan = plan_load("flat", duration_s=duration_s)  # 10 orders/s
    (tmp_path / "locust").mkdir(parents=True)
    (tmp_path / "locust" / "load.json").write_bytes(orjson.dumps(plan.as_dict()))
    (tmp_path / "locust" / "arrivals-c1.json").write_bytes(
        orjson.dumps(
            {"t0": T0, "duration_s": duration_s, "sent": len(sends), "lag_p99_s": 0.01, "lag_max_s": 0.02,
             "late_100ms": 0, "late_1s": 0, "ended_at": ended_at}
        )
    )  # fmt: skip
    with ClientLedger.create(tmp_path, "c1") as ledger:
        for key, attempt, t, outcome in sends:
            ledger.record(
                op_id=f"c1-{key}", idempotency_key=key, customer_id="cus-00001", amount_cents=100,
                currency="EUR", items=1, attempt=attempt, sent_at=T0 + t, answered_at=T0 + t + 0.01,
                status=202 if outcome == "ok" else None, outcome=outcome,
            )  # fmt: skip
    return tmp_path


def test_a_run_on_target(tmp_path: Path) -> None:
    sends = [(f"k{i}", 1, 0.05 + i / 10, "ok") for i in range(100)]
    s = load_summary(_write_run(tmp_path, sends))
    assert (s.orders, s.attempts, s.duplicates, s.torn_lines) == (100, 100, 0, 0)
    assert s.achieved_rate == pytest.approx(10.0)
    assert s.target_rate == pytest.approx(10.0)
    assert s.rate_error == pytest.approx(0.0)
    assert s.window_error_max == pytest.approx(0.0)
    assert s.rate.to_dict() == dict.fromkeys(range(10), 10)
    assert s.lag["lag_max_s"] == 0.02


def test_retries_outcomes_and_duplicates(tmp_path: Path) -> None:
    sends = [
        ("a", 1, 0.1, "unknown"),
        ("a", 2, 5.2, "ok"),
        ("b", 1, 0.2, "unknown"),
        ("b", 2, 5.3, "unknown"),
        ("c", 1, 0.3, "ok"),
        ("c", 1, 0.3, "ok"),  # recorded twice: a bug the summary must show
    ]
    s = load_summary(_write_run(tmp_path, sends))
    assert s.orders == 3
    assert s.attempts == 6
    assert s.duplicates == 1
    assert s.outcomes == {"unknown": 3, "ok": 3}
    assert s.final_outcomes == {"ok": 2, "unknown": 1}
    assert s.achieved_rate == pytest.approx(0.3)


def test_a_stopped_run_is_compared_over_the_time_it_ran(tmp_path: Path) -> None:
    sends = [(f"k{i}", 1, 0.05 + i / 10, "ok") for i in range(40)]
    s = load_summary(_write_run(tmp_path, sends, duration_s=60), until=T0 + 4.0)
    assert s.window_s == pytest.approx(4.0)
    assert s.target_orders == pytest.approx(40)
    assert s.rate_error == pytest.approx(0.0)


def test_a_stopped_run_read_back_later_uses_the_recorded_stop(tmp_path: Path) -> None:
    sends = [(f"k{i}", 1, 0.05 + i / 10, "ok") for i in range(40)]
    s = load_summary(_write_run(tmp_path, sends, duration_s=60, ended_at=T0 + 4.0))
    assert s.window_s == pytest.approx(4.0)
    assert s.rate_error == pytest.approx(0.0)


def test_an_empty_folder(tmp_path: Path) -> None:
    s = load_summary(tmp_path)
    assert (s.orders, s.attempts, s.files, s.achieved_rate) == (0, 0, [], None)
    assert s.rate.empty


def test_the_plan_is_checked_before_anything_starts() -> None:
    plan = plan_load("daily-50k", compress=24, duration_s=600)
    assert plan.start_hour == 8 and plan.arrivals == "poisson"
    assert plan.target_orders == pytest.approx(9260, abs=1)
    assert plan.drain_s == pytest.approx(21.5)
    assert plan_load("flat").duration_s == 3600  # a whole day at 24x
    assert plan_load("flat", start_hour="15:30").start_hour == 15.5
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        plan_load("nope")
    with pytest.raises(ConfigError, match="start hour '25' is not an hour"):
        plan_load("flat", start_hour="25")
    with pytest.raises(ConfigError, match="compress=-1 is not a number above 0"):
        plan_load("flat", compress=-1)
    with pytest.raises(ConfigError, match="processes=0 is not a whole number of 1 or more"):
        plan_load("flat", processes=0)


def test_nothing_starts_when_the_run_folder_already_holds_a_ledger(tmp_path: Path) -> None:
    ClientLedger.create(tmp_path, "c1").close()
    with pytest.raises(ConfigError, match=r"already holds a client ledger \(client-c1\.jsonl\)"):
        run_load(tmp_path, "http://127.0.0.1:9", "flat", duration_s=1)
    assert not (tmp_path / "locust").exists()


def test_nothing_starts_with_a_bad_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        run_load(tmp_path, "http://127.0.0.1:9", "nope", duration_s=1)
    assert list(tmp_path.iterdir()) == []
