"""What one self-test case came to, judged from its run folder (verdict.json, run.json, journals).

A mutation is **caught** only when the gate failed *and* one of the invariants it names is
violated in a complete run: a run that failed for another reason (an experiment error, another
invariant, a harness error) is "failed otherwise" with what failed, because a gate that fails by
accident proves nothing about the bug. A control passes only when the gate passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.runs import RunFolder, read_json_or_empty

__all__ = ["OUTCOMES", "CaseResult", "judge", "what_failed"]

# outcome → (counts as a success of the self-test, one-word label)
OUTCOMES = {
    "caught": (True, "yes"),
    "missed": (False, "NO: the gate passed"),
    "failed otherwise": (False, "NO: failed otherwise"),
    "passed": (True, "passed"),  # a control
    "false alarm": (False, "FALSE ALARM"),  # a control
    "pending": (False, "pending"),
    "error": (False, "error"),
    "interrupted": (False, "interrupted"),
}


@dataclass
class CaseResult:
    name: str
    kind: str  # mutation | control
    title: str
    suite: str
    expect: list[str] = field(default_factory=list)
    outcome: str = "error"
    failed: list[str] = field(default_factory=list)
    detail: str = ""
    run_dir: str | None = None
    exit_code: int | None = None
    duration_s: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return OUTCOMES[self.outcome][0]

    @property
    def label(self) -> str:
        return OUTCOMES[self.outcome][1]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def what_failed(run_dir: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Every failure of a run, in words (invariants with their violations, experiments that did
    not complete, thresholds missed, the run's own problem), and the invariants by name."""
    folder = RunFolder(run_dir)
    verdict, run = read_json_or_empty(folder.verdict), read_json_or_empty(folder.run_json)
    by_name = {i.get("name", "?"): i for i in verdict.get("invariants") or []}
    failed = []
    for name, inv in by_name.items():
        if inv.get("status") == "fail":
            n = (inv.get("counts") or {}).get("violations")
            failed.append(f"{name} ({n} violations)" if n is not None else name)
        elif inv.get("status") == "unknown":
            failed.append(f"{name} unknown")
    for journal in folder.journals():
        data = read_json_or_empty(journal)
        status = data.get("status")
        if status != "completed" or data.get("deviated"):
            word = "deviated" if data.get("deviated") else status
            failed.append(f"experiment {folder.experiment_of(journal)} {word}")
    for t in read_json_or_empty(folder.gate).get("thresholds") or []:
        if not t.get("ok"):
            failed.append(f"threshold {t.get('spec', t.get('name'))} (measured {t.get('value')})")
    if run.get("problem"):
        failed.append(f"run: {run['problem']}")
    return failed, by_name


def _first_why(inv: dict[str, Any] | None) -> str:
    examples = (inv or {}).get("counterexamples") or []
    first = examples[0] if examples and isinstance(examples[0], dict) else {}
    why = str(first.get("why", ""))
    who = first.get("order_id") or first.get("sku") or ""
    return f"{who}: {why}" if who and why else why


def judge(result: CaseResult, run_dir: Path | None, exit_code: int | None) -> CaseResult:
    """Fill `outcome`, `failed` and `detail` of `result` from the run folder and exit code."""
    result.exit_code = exit_code
    result.run_dir = str(run_dir) if run_dir else None
    if exit_code == 130 or exit_code is None:
        result.outcome = "interrupted"
        return result
    if run_dir is None or not RunFolder(run_dir).verdict.exists():
        result.outcome = "error"
        result.detail = result.detail or f"the run wrote no verdict (exit code {exit_code})"
        return result
    failed, invariants = what_failed(run_dir)
    result.failed = failed
    incomplete = bool(read_json_or_empty(RunFolder(run_dir).run_json).get("incomplete"))
    if result.kind == "control":
        result.outcome = "passed" if exit_code == 0 else "false alarm"
        return result
    broken = [n for n in result.expect if (invariants.get(n) or {}).get("status") == "fail"]
    if exit_code == 0:
        result.outcome = "missed"
    elif broken and not incomplete:
        result.outcome = "caught"
        result.detail = _first_why(invariants.get(broken[0]))
    else:
        result.outcome = "failed otherwise"
        result.detail = "the run did not complete" if incomplete else "no expected invariant broke"
    return result
