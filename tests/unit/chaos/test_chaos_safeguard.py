"""The safeguard: a limit out of budget for longer than the grace period aborts once; shorter
breaches, blind probes and a finished method do not."""

from __future__ import annotations

import threading

import pytest

from harness.chaos.control import PROBES
from harness.chaos.safeguard import Limit, Safeguard, parse_safeguard
from harness.errors import ConfigError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guard(values: list, grace_s: float = 5.0) -> tuple[Safeguard, Clock, list]:
    clock, fired = Clock(), []
    outputs = iter(values)

    def measure(limit: Limit) -> dict:
        value = next(outputs)
        if isinstance(value, Exception):
            raise value
        return {"error_ratio": value}

    limit = Limit("acceptance_rate", "error_ratio", at_most=0.2)
    return Safeguard([limit], grace_s, 1.0, measure, fired.append, clock), clock, fired


def test_a_breach_shorter_than_the_grace_period_does_not_abort() -> None:
    sg, clock, fired = guard([0.5, 0.5, 0.1, 0.9, 0.9])
    for t in (0, 3, 4, 6, 10):
        clock.now = t
        sg.check_once()
    assert fired == []
    assert sg.summary()["breached"] == {"acceptance_rate.error_ratio <= 0.2": 0.9}


def test_a_breach_longer_than_the_grace_period_aborts_once_naming_the_limit() -> None:
    sg, clock, fired = guard([0.5, 0.5, 0.6, 0.7])
    for t in (0, 2, 5, 6):
        clock.now = t
        sg.check_once()
    assert len(fired) == 1
    assert fired[0]["limit"] == "acceptance_rate.error_ratio <= 0.2"
    assert fired[0]["value"] == 0.6 and fired[0]["out_of_budget_s"] == 5
    assert "longer than the grace period of 5 s" in fired[0]["reason"]


def test_the_budget_is_only_spent_while_a_fault_is_on() -> None:
    sg, clock, fired = guard([0.9, 0.9, 0.9, 0.9])
    fault_on = {"now": True}
    sg.armed = lambda: fault_on["now"]
    clock.now = 0
    sg.check_once()  # breach starts with the fault on
    fault_on["now"] = False  # the fault ended: the drain is not the safeguard's business
    for t in (3, 6, 9):
        clock.now = t
        sg.check_once()
    assert fired == [] and sg.breach_since == {}


def test_a_probe_that_cannot_measure_is_not_a_breach() -> None:
    sg, clock, fired = guard([0.5, ConnectionError("redis restarting"), 0.1, 0.5])
    for t in (0, 6, 7, 8):
        clock.now = t
        sg.check_once()
    assert fired == []
    assert any("redis restarting" in s.get("error", "") for s in sg.summary()["last_samples"])


def test_the_thread_aborts_while_active_and_never_after_stop() -> None:
    done = threading.Event()
    limit = Limit("inflight_orders", "oldest_age_s", at_most=1)
    sg = Safeguard([limit], 0.1, 0.02, lambda _: {"oldest_age_s": 5}, lambda r: done.set())
    sg.start()
    assert done.wait(5)
    sg.stop()
    value = {"oldest_age_s": 0}
    late = Safeguard([limit], 0.0, 0.02, lambda _: value, lambda r: done.clear())
    late.start()
    late.stop()
    value["oldest_age_s"] = 5
    late.check_once()  # a check racing the end of the method
    assert late.fired is None and done.is_set()


def test_production_time_limits_are_divided_by_the_compression() -> None:
    limit = Limit("inflight_orders", "oldest_age_s", at_most=1200, production_time=True)
    assert limit.scaled(24).at_most == 50
    assert Limit("acceptance_rate", "error_ratio", at_most=0.2).scaled(24).at_most == 0.2


def test_a_valid_spec_parses_with_placeholders_before_substitution() -> None:
    spec = {
        "grace_s": "${safeguard_grace_s}",
        "every_s": 1,
        "limits": [
            {"probe": "acceptance_rate", "key": "error_ratio", "at_most": "${x}",
             "arguments": {"window_s": 20}},
        ],
    }  # fmt: skip
    limits, grace, every = parse_safeguard(spec, PROBES, placeholders=True)
    assert limits[0].probe == "acceptance_rate" and grace == 30 and every == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"limits": []}, "safeguard limits must be a non-empty list"),
        ({"limits": [{"probe": "nope", "key": "x", "at_most": 1}]},
         "safeguard limits[0].probe 'nope' is not a probe of harness.chaos.probes"),
        ({"limits": [{"probe": "inflight_orders", "at_most": 1}]}, "safeguard limits[0] needs a key"),
        ({"limits": [{"probe": "inflight_orders", "key": "oldest_age_s"}]},
         "safeguard limits[0] needs at_most or at_least"),
        ({"limits": [{"probe": "inflight_orders", "key": "k", "at_most": "lots"}]},
         "safeguard limits[0].at_most is 'lots': expected a number"),
        ({"grace": 3, "limits": []}, "unknown safeguard key 'grace'"),
        ({"limits": [{"probe": "inflight_orders", "key": "k", "at_most": 1, "max": 2}]},
         "unknown key 'max' in safeguard limits[0]"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_rejected_naming_the_field(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_safeguard(spec, PROBES)
