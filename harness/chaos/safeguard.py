"""The safeguard: abort an experiment whose damage goes beyond its budget, as Netflix's ChAP does.

While a fault is on during the method (an action runs, or a fault window is still open: a
lowered memory limit outlives its action), a background thread measures a few limits every
`every_s` seconds, each
one field of a probe's output (`harness.chaos.probes`) against `at_most` / `at_least`, e.g.
the share of order requests not accepted (`acceptance_rate.error_ratio <= 0.2`) or the age of
the oldest order in flight. When one stays out of its budget for longer than `grace_s`, the
safeguard fires once: it records why, and the control interrupts the method gracefully, so the
action in progress undoes its fault and every rollback runs.

A probe that cannot measure (Redis restarting) is recorded but is not a breach: the safeguard
stops an experiment for damage it sees, not for blindness it expects. Nor does it abort the
drain after the fault has ended: stopping then would undo nothing; whether the system recovered
is the hypothesis's question. Limits marked
`production_time: true` are production seconds, divided by the run's compression.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.numbers import NumberError, number

__all__ = ["Limit", "Safeguard", "parse_safeguard"]

logger = logging.getLogger("chaostoolkit")

_FIELDS = {"probe", "key", "at_most", "at_least", "arguments", "production_time"}
_TOP = {"limits", "grace_s", "every_s"}


@dataclass(frozen=True)
class Limit:
    probe: str
    key: str
    at_most: float | None = None
    at_least: float | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    production_time: bool = False

    def scaled(self, compress: float) -> Limit:
        """This limit in wall-clock terms (production-time limits divided by `compress`)."""
        if not self.production_time or compress == 1:
            return self
        return Limit(
            self.probe,
            self.key,
            None if self.at_most is None else self.at_most / compress,
            None if self.at_least is None else self.at_least / compress,
            self.arguments,
            False,
        )

    def describe(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f">= {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"<= {self.at_most:g}")
        return f"{self.probe}.{self.key} {' and '.join(parts)}"

    def breached(self, output: Any) -> tuple[bool, Any]:
        """(out of budget?, the measured value)."""
        value = output
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return False, None
        number = float(value)
        over = self.at_most is not None and number > self.at_most
        under = self.at_least is not None and number < self.at_least
        return over or under, value


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def _num(value: Any, where: str, *, placeholders: bool, above: float | None = None) -> float | None:
    if value is None or (placeholders and _is_placeholder(value)):
        return None
    try:
        return number(value, where, above=above)
    except NumberError as exc:
        raise ConfigError(f"safeguard {where} is {value!r}: expected {exc.expected}") from None


def parse_safeguard(
    spec: Any, probes: Mapping[str, Any], *, placeholders: bool = False
) -> tuple[list[Limit], float, float]:
    """(limits, grace_s, every_s) from the control's `safeguard` argument; ConfigError naming
    the bad field. With `placeholders`, `${…}` values pass (validation before substitution)."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"safeguard must be a mapping with {', '.join(sorted(_TOP))}")
    unknown = set(spec) - _TOP
    if unknown:
        raise ConfigError(
            f"unknown safeguard key {sorted(unknown)[0]!r}; known: {', '.join(sorted(_TOP))}"
        )
    grace = _num(spec.get("grace_s", 30), "grace_s", placeholders=placeholders)
    every = _num(spec.get("every_s", 1), "every_s", placeholders=placeholders, above=0)
    items = spec.get("limits")
    if not isinstance(items, list) or not items:
        raise ConfigError("safeguard limits must be a non-empty list")
    limits = []
    for i, item in enumerate(items):
        where = f"limits[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"safeguard {where} must be a mapping")
        bad = set(item) - _FIELDS
        if bad:
            raise ConfigError(
                f"unknown key {sorted(bad)[0]!r} in safeguard {where}; known: {', '.join(sorted(_FIELDS))}"
            )
        probe = item.get("probe")
        if probe not in probes:
            raise ConfigError(
                f"safeguard {where}.probe {probe!r} is not a probe of harness.chaos.probes; "
                f"use one of: {', '.join(sorted(probes))}"
            )
        if not item.get("key"):
            raise ConfigError(f"safeguard {where} needs a key: the field of {probe}'s output")
        at_most = _num(item.get("at_most"), f"{where}.at_most", placeholders=placeholders)
        at_least = _num(item.get("at_least"), f"{where}.at_least", placeholders=placeholders)
        if item.get("at_most") is None and item.get("at_least") is None:
            raise ConfigError(f"safeguard {where} needs at_most or at_least")
        arguments = item.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise ConfigError(f"safeguard {where}.arguments must be a mapping")
        production = item.get("production_time", False)
        limits.append(
            Limit(str(probe), str(item["key"]), at_most, at_least, dict(arguments),
                  str(production).lower() in ("true", "1", "yes"))
        )  # fmt: skip
    return limits, 30.0 if grace is None else grace, 1.0 if every is None else every


class Safeguard:
    """Measures `limits` every `every_s` in a daemon thread; calls `on_abort(record)` once when
    a limit has been out of budget for `grace_s` while `armed()` (a fault is on).
    `measure(limit)` returns the probe output."""

    def __init__(
        self,
        limits: list[Limit],
        grace_s: float,
        every_s: float,
        measure: Callable[[Limit], Any],
        on_abort: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        armed: Callable[[], bool] = lambda: True,
    ) -> None:
        self.limits = limits
        self.armed = armed
        self.grace_s = grace_s
        self.every_s = every_s
        self.measure = measure
        self.on_abort = on_abort
        self.clock = clock
        self.samples: deque[dict[str, Any]] = deque(maxlen=600)
        self.breach_since: dict[int, float] = {}
        self.last_breach: dict[int, Any] = {}  # limit -> last value out of budget
        self.fired: dict[str, Any] | None = None
        self.checks = 0
        self.lock = threading.Lock()  # held while firing; `stop` takes it: no abort after stop
        self._active = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> dict[str, Any] | None:
        """Measure every limit once; fire (and return the record) when one is out too long."""
        now = self.clock()
        self.checks += 1
        if not self.armed():  # no fault on: the budget is only spent while one is
            self.breach_since.clear()
            return None
        for i, limit in enumerate(self.limits):
            sample: dict[str, Any] = {"at": round(time.time(), 3), "limit": limit.describe()}
            try:
                out, value = limit.breached(self.measure(limit))
            except Exception as exc:
                sample["error"] = f"{type(exc).__name__}: {exc}"[:300]
                self.samples.append(sample)
                continue
            sample.update(value=value, breached=out)
            self.samples.append(sample)
            if not out:
                self.breach_since.pop(i, None)
                continue
            since = self.breach_since.setdefault(i, now)
            self.last_breach[i] = value
            if now - since >= self.grace_s and self.fired is None:
                return self._fire(limit, value, now - since)
        return None

    def _fire(self, limit: Limit, value: Any, for_s: float) -> dict[str, Any] | None:
        with self.lock:
            if not self._active and self._thread is not None:
                return None  # the method is over: nothing left to abort
            self.fired = {
                "at": time.time(),
                "limit": limit.describe(),
                "value": value,
                "out_of_budget_s": round(for_s, 3),
                "grace_s": self.grace_s,
                "reason": f"{limit.describe()} was breached (value {value}) for "
                f"{for_s:.1f} s, longer than the grace period of {self.grace_s:g} s",
            }
            logger.critical("safeguard: aborting the experiment: %s", self.fired["reason"])
            self.on_abort(self.fired)
            return self.fired

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.check_once():
                    return
            except Exception:  # never let the watcher die silently
                logger.exception("safeguard check failed")
            self._stop.wait(self.every_s)

    def start(self) -> None:
        with self.lock:
            if self._thread is not None:
                return
            self._active = True
            self._thread = threading.Thread(
                target=self._loop, name="sagaquake-safeguard", daemon=True
            )
            self._thread.start()  # fmt: skip

    def stop(self) -> None:
        with self.lock:
            self._active = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.every_s, 1) + 10)

    def summary(self) -> dict[str, Any]:
        return {
            "limits": [limit.describe() for limit in self.limits],
            "grace_s": self.grace_s,
            "every_s": self.every_s,
            "checks": self.checks,
            "breached": {self.limits[i].describe(): v for i, v in sorted(self.last_breach.items())},
            "fired": self.fired,
            "last_samples": list(self.samples)[-10:],
        }
