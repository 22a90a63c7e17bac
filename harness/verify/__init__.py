"""The verifier: read a run's history, prove the invariants, give a verdict (read-only).

`verify_run` is the one entry point: from a run folder's snapshot (`history/`), or with
`live=LiveSource(...)` from the running stack (the client ledger, run.json and the fault
windows still come from the run folder). Both read the same data into the same checks, so one
history always gives one verdict. docs/verify.md says what each invariant means.

The names below are imported on first use (PEP 562): the snapshot's reader child imports one
pandas-free module of this package (`system_side.py`) and must not import every check.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.verify.history import History
    from harness.verify.invariants import INVARIANTS, check_all, invariant_names
    from harness.verify.reader import load_snapshot
    from harness.verify.results import InvariantResult
    from harness.verify.snapshot import export_snapshot, load_live
    from harness.verify.timeliness import THRESHOLDS, validate_thresholds
    from harness.verify.verdict import (
        Verdict,
        exit_code,
        read_verdict,
        render_summary,
        write_verdict,
    )
    from harness.verify.verifier import LiveSource, check_inputs, verify_history, verify_run

__all__ = [
    "INVARIANTS",
    "THRESHOLDS",
    "History",
    "InvariantResult",
    "LiveSource",
    "Verdict",
    "check_all",
    "check_inputs",
    "exit_code",
    "export_snapshot",
    "invariant_names",
    "load_live",
    "load_snapshot",
    "read_verdict",
    "render_summary",
    "validate_thresholds",
    "verify_history",
    "verify_run",
    "write_verdict",
]

_MODULES = {
    "INVARIANTS": "invariants",
    "check_all": "invariants",
    "invariant_names": "invariants",
    "THRESHOLDS": "timeliness",
    "validate_thresholds": "timeliness",
    "History": "history",
    "InvariantResult": "results",
    "LiveSource": "verifier",
    "check_inputs": "verifier",
    "verify_history": "verifier",
    "verify_run": "verifier",
    "Verdict": "verdict",
    "exit_code": "verdict",
    "read_verdict": "verdict",
    "render_summary": "verdict",
    "write_verdict": "verdict",
    "export_snapshot": "snapshot",
    "load_live": "snapshot",
    "load_snapshot": "reader",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    globals()[name] = value
    return value
