"""What one invariant check returns, and the two rules every check shares.

Why: a verifier that crashes must never say "ok" (Jepsen's checkers return `:unknown`), and a
violation is only useful with its counter-examples (order ids, the events, what the client was
told), never just a count. `invariant` turns any exception of a check into an `unknown`
result; `from_violations` turns a frame of violations into a result with the first 20
counter-examples, the first and the worst, each with its context.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from harness.verify.facts import universe
from harness.verify.frames import jsonable
from harness.verify.history import History, MissingPartError

__all__ = [
    "MAX_COUNTEREXAMPLES",
    "Check",
    "InvariantResult",
    "Status",
    "entries_for",
    "from_violations",
    "invariant",
    "order_context",
    "records_for",
    "violation_frame",
]

MAX_COUNTEREXAMPLES = 20
Status = Literal["pass", "fail", "unknown"]
# A check: the history (and keyword options such as thresholds) in, a result out.
Check = Callable[..., "InvariantResult"]


@dataclass
class InvariantResult:
    """One invariant's outcome. `error` says why a status is unknown; `notes` qualify a pass."""

    name: str
    title: str
    status: Status
    counts: dict[str, int] = field(default_factory=dict)
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    first: dict[str, Any] | None = None
    worst: dict[str, Any] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "title": self.title,
            "counts": jsonable(self.counts),
            "counterexamples": jsonable(self.counterexamples),
            "first": jsonable(self.first),
            "worst": jsonable(self.worst),
        }
        if self.error is not None:
            out["error"] = self.error
        if self.notes:
            out["notes"] = list(self.notes)
        if self.metrics:
            out["metrics"] = jsonable(self.metrics)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvariantResult:
        return cls(
            name=str(data["name"]),
            title=str(data.get("title", data["name"])),
            status=data["status"],
            counts=dict(data.get("counts") or {}),
            counterexamples=list(data.get("counterexamples") or []),
            first=data.get("first"),
            worst=data.get("worst"),
            error=data.get("error"),
            notes=list(data.get("notes") or []),
            metrics=dict(data.get("metrics") or {}),
        )


def invariant(name: str, title: str) -> Callable[[Check], Check]:
    """Name a check, and make it total: a missing part of the history or any exception becomes
    an `unknown` result that says why, never a pass and never a crash of the verifier."""

    def wrap(check: Check) -> Check:
        @functools.wraps(check)
        def run(h: History, **options: Any) -> InvariantResult:
            try:
                result = check(h, **options)
            except MissingPartError as err:
                return InvariantResult(name, title, "unknown", error=err.reason)
            except Exception as err:
                tail = traceback.format_exc(limit=-3).strip().splitlines()[-6:]
                return InvariantResult(
                    name,
                    title,
                    "unknown",
                    error=f"the check crashed: {type(err).__name__}: {err}",
                    notes=tail,
                )
            result.name, result.title = name, title
            return result

        run.invariant_name = name  # type: ignore[attr-defined]
        run.invariant_title = title  # type: ignore[attr-defined]
        return run

    return wrap


def from_violations(
    h: History,
    violations: pd.DataFrame,
    *,
    checked: int,
    counts: Mapping[str, int] | None = None,
    unknown: Sequence[str] = (),
    notes: Sequence[str] = (),
    metrics: Mapping[str, Any] | None = None,
    context: Callable[[list[str]], dict[str, dict[str, Any]]] | None = None,
) -> InvariantResult:
    """A result from one row per violation.

    `violations` has `why`, `sort` (smaller = earlier: the first 20 by it are kept) and
    `severity` (the largest is `worst`), usually `order_id` (a row with one gets the order's
    events and client records), and any other columns, copied into the counter-example.
    `context(order_ids)` adds per-order evidence beyond the events and the client records.
    `unknown` lists parts that could not be checked: with no violation they make the status
    unknown (a fail still wins)."""
    violations = violations.reset_index(drop=True)
    total = len(violations)
    status: Status = "fail" if total else ("unknown" if unknown else "pass")
    result = InvariantResult(
        "",
        "",
        status,
        counts={"checked": int(checked), "violations": int(total), **dict(counts or {})},
        notes=list(notes),
        metrics=dict(metrics or {}),
        error="; ".join(unknown) if unknown and not total else None,
    )
    if unknown and total:
        result.notes.append("not checked: " + "; ".join(unknown))
    if not total:
        return result
    violations["severity"] = violations["severity"].astype(float).fillna(0.0)
    ordered = violations.sort_values("sort", kind="stable")
    kept = ordered.head(MAX_COUNTEREXAMPLES)
    worst = ordered.loc[[ordered["severity"].idxmax()]]
    rows = pd.concat([kept, worst.drop(index=kept.index, errors="ignore")])
    examples = _examples(h, rows, context)
    result.counterexamples = examples[: len(kept)]
    result.first = examples[0]
    result.worst = examples[list(rows.index).index(worst.index[0])]
    return result


def _examples(
    h: History,
    rows: pd.DataFrame,
    context: Callable[[list[str]], dict[str, dict[str, Any]]] | None,
) -> list[dict[str, Any]]:
    extra_cols = [c for c in rows.columns if c not in ("sort", "severity")]
    records = [_drop_none(jsonable(r)) for r in rows[extra_cols].to_dict("records")]
    order_ids = list(dict.fromkeys(str(r["order_id"]) for r in records if r.get("order_id")))
    evidence = order_context(h, order_ids) if order_ids else {}
    more = context(order_ids) if context and order_ids else {}
    out = []
    for rec in records:
        oid = rec.get("order_id")
        if not oid:
            out.append({"why": rec.pop("why"), **rec})
            continue
        example = {"order_id": oid, "why": rec.pop("why")}
        example.update({k: v for k, v in rec.items() if k != "order_id"})
        example.update(evidence.get(oid, {}))
        example.update(more.get(oid, {}))
        out.append(example)
    return out


def _drop_none(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}


def violation_frame(
    h: History,
    codes: np.ndarray,
    why: np.ndarray | list[str],
    sort: np.ndarray,
    severity: np.ndarray,
) -> pd.DataFrame:
    """The frame `from_violations` takes, for orders given by their codes."""
    return pd.DataFrame(
        {
            "order_id": universe(h).ids[codes],
            "why": np.asarray(why, dtype=object),
            "sort": np.nan_to_num(np.asarray(sort, dtype=float), nan=np.inf),
            "severity": np.asarray(severity, dtype=float),
        }
    )


def order_context(h: History, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per order: what its client was told (`client`: the ok attempt, else the last one;
    `attempts` when there were several) and its events in stream order."""
    events = entries_for(h, "events", order_ids)
    client = records_for(h, "ledger", order_ids) if h.ledger is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for oid in order_ids:
        attempts = sorted(
            client.get(oid, []), key=lambda r: (r.get("sent_at") or 0, r.get("attempt") or 0)
        )
        told = next((a for a in attempts if a.get("outcome") == "ok"), None)
        entry: dict[str, Any] = {"client": told or (attempts[-1] if attempts else None)}
        if len(attempts) > 1:
            entry["attempts"] = attempts
        entry["events"] = events.get(oid, [])
        out[oid] = entry
    return out


def entries_for(h: History, part: str, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Entries of a stream part (events, payments, inventory_ledger, notifications) per order,
    as `{"id", "fields"}` in stream order, the fields exactly as read."""
    out: dict[str, list[dict[str, Any]]] = {oid: [] for oid in order_ids}
    frame = getattr(h, part)
    if frame is None or not order_ids:
        return out
    u = universe(h)
    codes = u.code_of(order_ids)
    rows = u.rows_of(part, codes[codes >= 0])
    ids = h.text(part, "id", rows)
    maps = h.raw[part]
    for i, r in enumerate(rows):
        entry = {"id": ids[i], "fields": dict(maps[r])}
        out[str(u.ids[u.codes[part][r]])].append(entry)
    return out


def records_for(h: History, part: str, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Record rows (ledger, temporal, readmodel) per order, as the dicts that were read (less
    keys the reader added that start with `_`)."""
    out: dict[str, list[dict[str, Any]]] = {oid: [] for oid in order_ids}
    if getattr(h, part) is None or not order_ids:
        return out
    u = universe(h)
    codes = u.code_of(order_ids)
    maps = h.raw[part]
    for r in u.rows_of(part, codes[codes >= 0]):
        record = {k: v for k, v in maps[r].items() if not k.startswith("_")}
        out[str(u.ids[u.codes[part][r]])].append(jsonable(record))
    return out
