"""The invariants the verifier proves, in the order reports list them, and running them all.

Why a registry: the verdict, the report and the docs all walk the same list, so adding an
invariant is one function and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.verify.determinism import no_nondeterminism, replays_deterministically
from harness.verify.history import History
from harness.verify.inventory import inventory_conservation
from harness.verify.legal import exactly_one_confirmation, legal_history
from harness.verify.memory import release_free_memory
from harness.verify.money import exactly_once_money
from harness.verify.orders import no_lost_order, no_phantom_order
from harness.verify.readmodel import read_model_consistent
from harness.verify.reprocessing import reprocessed_exactly_once
from harness.verify.results import Check, InvariantResult
from harness.verify.temporal import temporal_agrees
from harness.verify.timeliness import timeliness

__all__ = ["INVARIANTS", "check_all", "invariant_names"]

INVARIANTS: tuple[Check, ...] = (
    no_lost_order,
    no_phantom_order,
    exactly_once_money,
    inventory_conservation,
    legal_history,
    exactly_one_confirmation,
    temporal_agrees,
    no_nondeterminism,
    replays_deterministically,
    reprocessed_exactly_once,
    read_model_consistent,
    timeliness,
)
# Which checks take which keyword options of `check_all`.
_OPTIONS = {"timeliness": ("thresholds",), "replays_deterministically": ("replay_against",)}


def invariant_names() -> list[str]:
    return [c.invariant_name for c in INVARIANTS]  # type: ignore[attr-defined]


def check_all(
    h: History,
    *,
    thresholds: Mapping[str, Any] | None = None,
    replay_against: str | None = None,
    checks: tuple[Check, ...] = INVARIANTS,
) -> list[InvariantResult]:
    """Every check on one history; each returns a result (a crash is `unknown`, see `invariant`).
    `replay_against` is the code `replays_deterministically` replays on (default the current)."""
    options: dict[str, Any] = {"thresholds": thresholds, "replay_against": replay_against}
    results = []
    for check in checks:
        name = getattr(check, "invariant_name", "")
        results.append(check(h, **{k: options[k] for k in _OPTIONS.get(name, ())}))
        release_free_memory()  # what the check freed, before the next one (memory.py)
    return results
