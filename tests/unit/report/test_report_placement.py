"""The 202-to-OrderPlaced figure for orders accepted during a payment outage or hang."""

from __future__ import annotations

import json
import math

import pytest

from harness.report import render_report
from harness.report.data import Fault, load_run
from harness.report.placement import (
    Placement,
    payment_faults,
    placement,
    placement_delays,
    placement_per_fault,
)
from tests.unit.report.runfolder import T0

pytestmark = pytest.mark.unit


def _fault(
    index: int = 0,
    action: str = "outage",
    target: str = "payment-service",
    span: tuple[float, float] = (10.0, 20.0),
    landed: bool | None = True,
) -> Fault:
    return Fault(
        index=index,
        experiment="payment-outage",
        action=action,
        target=target,
        started_at=span[0],
        ended_at=span[1],
        landed=landed,
        evidence={},
    )


def test_no_payment_fault_means_no_figure() -> None:
    accepted, placed = {"o1": 12.0}, {"o1": 12.1}
    assert placement_delays([], accepted, placed) is None
    others = [
        _fault(action="kill_replicas"),  # seconds long: not counted
        _fault(action="restart_service"),
        _fault(target="redis", action="pause_service"),
        _fault(action="outage", landed=False),  # did not happen
    ]
    assert payment_faults(others) == []


def test_outage_hang_partition_and_lost_replies_count() -> None:
    faults = [
        _fault(0, "outage"),
        _fault(1, "pause_service"),
        _fault(2, "partition_service"),
        _fault(3, "lose_replies"),
        _fault(4, "outage", landed=None),  # landing unknown: counted
    ]
    assert [f.index for f in payment_faults(faults)] == [0, 1, 2, 3, 4]


def test_only_orders_accepted_inside_a_window_are_counted() -> None:
    accepted = {"before": 9.9, "start": 10.0, "mid": 15.0, "end": 20.0, "after": 20.1}
    placed = {oid: t + 0.5 for oid, t in accepted.items()}
    got = placement_delays([_fault()], accepted, placed)
    assert got == Placement(
        faults=(0,),
        accepted=3,
        placed=3,
        not_placed=(),
        p50_s=0.5,
        p99_s=0.5,
        max_s=0.5,
    )
    assert got.met is True


def test_percentiles_are_linear_as_pandas() -> None:
    accepted = {f"o{i}": 10.0 for i in range(5)}
    placed = {f"o{i}": 10.0 + d for i, d in enumerate([0.1, 0.2, 0.3, 0.4, 2.0])}
    got = placement_delays([_fault()], accepted, placed)
    assert got is not None
    assert got.p50_s == pytest.approx(0.3)
    assert got.p99_s == pytest.approx(0.4 + 0.96 * 1.6)  # pos 3.96 between 0.4 and 2.0
    assert got.max_s == pytest.approx(2.0)
    assert got.met is False


def test_orders_never_placed_are_listed_and_rank_above_every_placed_one() -> None:
    accepted = {"a": 11.0, "b": 12.0, "lost": 13.0}
    placed = {"a": 11.2, "b": 12.4}
    got = placement_delays([_fault()], accepted, placed)
    assert got is not None
    assert (got.accepted, got.placed, got.not_placed) == (3, 2, ("lost",))
    assert got.p50_s == pytest.approx(0.4)
    assert got.p99_s is None and got.max_s is None  # they fall on the order never placed
    assert got.met is False


def test_one_order_never_placed_among_many_leaves_p99_defined() -> None:
    accepted = {f"o{i:03}": 15.0 for i in range(300)}
    placed = {oid: 15.1 for oid in list(accepted)[:-1]}
    got = placement_delays([_fault()], accepted, placed)
    assert got is not None
    assert got.not_placed == ("o299",) and got.placed == 299
    assert got.p99_s == pytest.approx(0.1)
    assert got.max_s is None


def test_placed_before_the_answer_counts_as_zero() -> None:
    got = placement_delays([_fault()], {"o": 15.0}, {"o": 14.98})
    assert got is not None and got.p99_s == 0.0


def test_overlapping_windows_count_an_order_once() -> None:
    faults = [_fault(0, span=(10, 20)), _fault(1, "pause_service", span=(15, 30))]
    got = placement_delays(faults, {"o": 16.0, "p": 25.0}, {"o": 16.2, "p": 25.2})
    assert got is not None
    assert got.faults == (0, 1) and got.accepted == 2


def test_a_window_in_which_no_order_was_accepted() -> None:
    got = placement_delays([_fault()], {"o": 50.0}, {"o": 50.1})
    assert got is not None
    assert (got.accepted, got.p99_s, got.met) == (0, None, None)


def test_nan_placed_time_is_not_placed() -> None:
    got = placement_delays([_fault()], {"o": 15.0}, {"o": math.nan})
    assert got is not None and got.not_placed == ("o",)


# -- from a run folder -------------------------------------------------------------------------


def _add_payment_outage(run_dir, span: tuple[float, float] = (60.0, 100.0)) -> None:
    """Append a payment outage window to the synthetic run folder's faults.jsonl."""
    line = {
        "experiment": "payment-outage",
        "action": "outage",
        "target": "payment-service",
        "started_at": T0 + span[0],
        "ended_at": T0 + span[1],
        "landed": True,
        "evidence": {"down": {"http": "no answer from payment-service"}},
    }
    with (run_dir / "history" / "faults.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")


def test_a_run_without_a_payment_outage_has_no_figure(run_folder) -> None:
    data = load_run(run_folder.run_dir)  # a payment *kill* and Redis memory pressure
    assert placement(data) is None
    assert placement_per_fault(data) == []
    paths = render_report(run_folder.run_dir)
    assert "New orders during payment faults" not in paths.html.read_text()
    assert "New orders during payment faults" not in paths.summary.read_text()


def test_a_run_with_a_payment_outage_reports_the_figure(run_folder) -> None:
    _add_payment_outage(run_folder.run_dir, span=(120.0, 140.0))
    data = load_run(run_folder.run_dir)
    got = placement(data)
    assert got is not None and got.faults == (2,)
    ledger = data.ledger
    assert ledger is not None
    ok = ledger[ledger["outcome"] == "ok"].groupby("order_id")["answered_at"].min()
    assert got.accepted == int(((ok >= 120.0) & (ok <= 140.0)).sum()) > 0
    # the synthetic run's orders told 202 and never placed: accepted at ~130 s and ~133 s
    lost_inside = {o for o in run_folder.lost if 120.0 <= ok.get(o, -1) <= 140.0}
    assert lost_inside and set(got.not_placed) == lost_inside
    assert got.placed + len(got.not_placed) == got.accepted
    paths = render_report(run_folder.run_dir)
    html = paths.html.read_text()
    assert "New orders during payment faults" in html
    assert "p99 202 → placed, payment faults" in html
    assert "Accepted, never placed: " in html
    summary = paths.summary.read_text()
    assert "### New orders during payment faults" in summary
    assert f"| #2 payment-outage outage | {got.accepted} | {got.placed} | 2 |" in summary
    assert "Accepted, never placed: [`" + sorted(lost_inside)[0] in summary


def test_no_ledger_says_so(make_run_folder) -> None:
    layout = make_run_folder(ledger=False)
    _add_payment_outage(layout.run_dir)
    got = placement(load_run(layout.run_dir))
    assert got is not None and got.accepted == 0
    assert got.note == "no client ledger: no order is known to have been accepted"
    assert (
        "no client ledger: no order is known" in render_report(layout.run_dir).summary.read_text()
    )
