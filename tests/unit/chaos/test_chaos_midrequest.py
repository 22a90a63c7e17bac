"""The scheduling logic of a kill mid-request: when the victim is killed, and how a replica
frozen out of reach of work is given another chance (the kill itself runs in
tests/integration/chaos/test_ambiguous_faults.py and test_chaos_experiments.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.chaos import midrequest
from harness.chaos.midrequest import KILL_MODES, MIN_SLICE_MS, run_slice_ms
from harness.platforms.base import KillEvidence

pytestmark = pytest.mark.unit


def test_the_slice_is_log_uniform_between_its_bounds() -> None:
    assert run_slice_ms(20, 0.0) == pytest.approx(MIN_SLICE_MS)
    assert run_slice_ms(20, 1.0) == pytest.approx(20)
    # the middle of the draw is the geometric mean: 1.41 ms, not 10 ms
    assert run_slice_ms(20, 0.5) == pytest.approx((MIN_SLICE_MS * 20) ** 0.5)
    assert run_slice_ms(0, 0.9) == 0.0


def test_the_kills_take_turns_before_at_and_inside_the_handling() -> None:
    assert KILL_MODES == ("held", "taken", "slice")


@pytest.mark.parametrize(
    "before,now,taken",
    [
        ({"accept_queue": 1, "unread_bytes": 0}, {"accept_queue": 0, "unread_bytes": 0}, True),
        ({"accept_queue": 0, "unread_bytes": 120}, {"accept_queue": 0, "unread_bytes": 0}, True),
        ({"accept_queue": 1, "unread_bytes": 0}, {"accept_queue": 2, "unread_bytes": 0}, False),
        (
            {"pending_entries": 1, "entries": ["1-0"]},
            {"pending_entries": 1, "entries": ["2-0"]},
            True,
        ),
        (
            {"pending_entries": 2, "entries": ["1-0", "2-0"]},
            {"pending_entries": 1, "entries": ["2-0"]},
            True,
        ),
        (
            {"pending_entries": 1, "entries": ["1-0"]},
            {"pending_entries": 2, "entries": ["1-0", "2-0"]},
            False,
        ),
        ({"pending_entries": 1, "entries": ["1-0"]}, {}, True),  # the replica is gone from the list
    ],
)
def test_the_work_is_taken_when_it_moved_on_it(before: dict, now: dict, taken: bool) -> None:
    assert midrequest._taken(before, now) is taken


class FrozenOutOfReach:
    """A replica that holds work only from its `busy_from`-th freeze on."""

    def __init__(self, busy_from: int) -> None:
        self.busy_from = busy_from
        self.freezes = 0
        self.resumes = 0

    def pause(self, service: str, count: int | None) -> list[Any]:
        self.freezes += 1
        return [service]

    def resume(self, service: str) -> list[str]:
        self.resumes += 1
        return [service]

    def held_work(self, service: str) -> dict[str, dict[str, Any]]:
        pending = 3 if self.freezes >= self.busy_from else 0
        return {"projection_00": {"pending_entries": pending}}


def test_a_replica_frozen_out_of_reach_is_let_go_and_frozen_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(midrequest, "REFREEZE_S", 0.05)
    monkeypatch.setattr(midrequest, "THAW_S", 0.0)
    platform = FrozenOutOfReach(busy_from=3)
    _, _, busy = midrequest._freeze_holding_work(platform, "projection", wait_work=5)
    assert busy == {"projection_00": {"pending_entries": 3}}
    assert (platform.freezes, platform.resumes) == (3, 2)


def test_no_work_within_the_wait_returns_nothing_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(midrequest, "REFREEZE_S", 0.05)
    monkeypatch.setattr(midrequest, "THAW_S", 0.0)
    platform = FrozenOutOfReach(busy_from=10**6)
    _, held, busy = midrequest._freeze_holding_work(platform, "projection", wait_work=0.2)
    assert busy == {}
    assert held == {"projection_00": {"pending_entries": 0}}
    assert platform.freezes >= 2


class TwoReplicas:
    """Two frozen API replicas, one holding a request; records what happens in which order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def pause(self, service: str, count: int | None) -> list[Any]:
        self.log.append("freeze")
        return [SimpleNamespace(name=n) for n in ("order-service_00", "order-service_01")]

    def resume(self, service: str) -> list[str]:
        self.log.append("resume")
        return ["order-service_01"]

    def held_work(self, service: str) -> dict[str, dict[str, Any]]:
        return {"order-service_00": {"accept_queue": 1}, "order-service_01": {"accept_queue": 0}}

    def kill_replicas(
        self, names: list[str], signal: str, wait_s: float, on_signalled: Any = None
    ) -> list[KillEvidence]:
        self.log.append(f"kill {names[0]}")
        if on_signalled is not None:
            on_signalled()
        self.log.append("victim back")  # the replacement's start, which takes seconds
        return [KillEvidence(names[0], "old", "new", signal, 0, 1)]


def test_the_other_replicas_go_on_once_the_victim_is_dead_not_once_it_is_back() -> None:
    platform = TwoReplicas()
    ctx = SimpleNamespace(platform=platform)
    item = midrequest._one_kill(ctx, "order-service", 1, 5, "held", 0, None, [])  # type: ignore[arg-type]
    assert item["in_flight"] == {"accept_queue": 1}
    assert item["landed"] is True
    kill, back = platform.log.index("kill order-service_00"), platform.log.index("victim back")
    assert "resume" in platform.log[kill:back]  # the restart does not freeze the whole service
