"""Reading a run folder into frames, and the resilience score."""

from __future__ import annotations

import dataclasses

import pytest

from harness.report.data import LATENCY_WINDOW_S, load_run
from harness.report.resilience import experiment_scores, fault_scores, recovery_budget

pytestmark = pytest.mark.unit


def test_frames(run_folder):
    data = load_run(run_folder.run_dir)
    assert data.notes == {}
    assert data.t0 == 1763769000.0
    assert int(data.rates["offered"].sum()) == run_folder.orders
    assert int(data.rates["accepted"].sum()) == run_folder.orders
    assert int(data.rates["completed"].sum()) == 506
    # completions stall while Redis refuses writes (t+110 to t+130), then catch up
    assert data.rates["completed"].iloc[112:130].sum() == 0
    assert data.rates["completed"].iloc[130:140].sum() > 30
    assert (data.latency["t"] % LATENCY_WINDOW_S == 0).all()
    assert data.latency.set_index("t").loc[120, "p99_ms"] >= 5000  # the time-outs
    outcome = data.orders.set_index("order_id")["outcome"]
    assert set(outcome[run_folder.lost]) == {"accepted, never placed"}
    assert outcome[run_folder.stuck[0]] == "placed, never terminal"
    assert [f.recovery_time_s for f in data.faults] == [9.8, 14.2]
    assert [j["name"] for j in data.journals] == ["kill-payment-pods", "redis-memory-pressure"]


def test_resilience_scores(run_folder):
    data = load_run(run_folder.run_dir)
    assert recovery_budget(data) == 12.0  # the max_recovery_time_s threshold
    scores = fault_scores(data)
    kill, redis = scores[0], scores[1]
    assert kill.window == (60.0, pytest.approx(70.2))
    assert 0 < kill.availability < 0.7  # captures stalled for most of the window
    assert kill.recovery == pytest.approx(1 - 9.8 / 24)
    assert kill.score == round(100 * (kill.availability + kill.recovery) / 2)
    assert redis.recovery == pytest.approx(1 - 14.2 / 24)
    assert experiment_scores(data)["redis-memory-pressure"] == redis


def test_resilience_edge_cases(run_folder):
    data = load_run(run_folder.run_dir)
    kill = data.faults[0]
    data.faults = [
        dataclasses.replace(kill, landed=False),
        dataclasses.replace(kill, index=1, recovery_time_s=None),
        dataclasses.replace(kill, index=2, started_at=3.0, ended_at=3.5),
    ]
    scores = fault_scores(data)
    assert (
        scores[0].score is None and scores[0].note == "the fault did not land: nothing was tested"
    )
    assert scores[1].score == round(100 * scores[1].availability)
    assert scores[1].note == "no recovery time in verdict.json: availability only"
    assert scores[2].score is None
    assert scores[2].note == "too little load before the fault for a baseline"
    # an experiment scores its worst (scored) fault
    assert experiment_scores(data)["kill-payment-pods"] == scores[1]
