"""Proving the harness itself: realistic bugs planted in a copy of the system, each of which the
gate must catch by the invariant it breaks, while the unmutated system passes (docs/selftest.md).

`run_selftest(SelftestOptions(...), console) -> exit code` is the entry point of `sagaquake
selftest`; `load_catalogue` reads and checks `scenarios/mutations/`.
"""

from __future__ import annotations

from harness.selftest.catalogue import Mutation, Replacement, load_catalogue, mutated_text, select
from harness.selftest.mutate import apply_mutation, copy_project
from harness.selftest.outcome import CaseResult, judge
from harness.selftest.runner import SelftestOptions, list_catalogue, run_selftest

__all__ = [
    "CaseResult",
    "Mutation",
    "Replacement",
    "SelftestOptions",
    "apply_mutation",
    "copy_project",
    "judge",
    "list_catalogue",
    "load_catalogue",
    "mutated_text",
    "run_selftest",
    "select",
]
