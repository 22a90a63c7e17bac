"""Reprocessed exactly once: every order a correction targeted was corrected once, in money and in
events, no other order was touched, and the reprocess's chain of runs is whole.

Why the request and not the system: which orders a correction should touch is decided here,
from what was asked (`history/reprocess.jsonl`, written by `sagaquake reprocess` before the
workflow started) and the stream itself, never from the system's own scan: an order the
reprocess skipped, or corrected twice after a worker died mid-batch, must show. The rule:

- a request (correction id, `from`, `to` stream ids, `percent_bp`) **targets** every order whose
  `OrderCompleted` entry lies in [from, to] of orders:events and whose correction,
  `amount_cents * percent_bp // 10000` of its OrderPlaced amount, is at least one cent;
- each targeted order has exactly one `PriceCorrected` event with that correction id and that
  `refund_cents`, and exactly one `adjustment` in payments:ledger with it and that amount;
- no other order has either, and no correction id appears that nobody requested;
- the ReprocessOrders runs of the request's workflow id form one chain in Temporal's histories:
  the first run (no predecessor) continued as new into the next, and so on, each successor's
  history present, up to a last run that COMPLETED.

(The read model after the corrections is `read_model_consistent`'s question, and the net money
per order `exactly_once_money`'s.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.runs import RunFolder, read_jsonl
from harness.verify.facts import order_table, universe
from harness.verify.frames import floats
from harness.verify.histories import decode, iter_histories
from harness.verify.history import History
from harness.verify.results import InvariantResult, entries_for, from_violations, invariant

__all__ = ["expected_corrections", "reprocessed_exactly_once", "stream_key"]

WORKFLOW_TYPE = "ReprocessOrders"
_MAX = (2**63 - 1, 2**63 - 1)


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream id as (ms, seq) for comparisons; "-" is the smallest, "+" the largest."""
    if stream_id == "-":
        return (0, 0)
    if stream_id == "+":
        return _MAX
    ms, _, seq = str(stream_id).partition("-")
    return int(ms), int(seq or 0)


def _requests(h: History) -> list[dict[str, Any]] | None:
    if h.run_dir is None:
        return None
    lines = read_jsonl(RunFolder(h.run_dir).reprocess)
    h.notes.extend(lines.notes())
    return lines.records


def expected_corrections(h: History, request: Mapping[str, Any]) -> pd.DataFrame:
    """The orders `request` targets: order code, order id and the refund due (cents)."""
    o = order_table(h)
    done = h.typed("OrderCompleted")
    if not len(done):
        return pd.DataFrame({"code": [], "order_id": [], "refund": []})
    rows = done.index.to_numpy()
    ids = h.text("events", "id", rows)
    low, high = stream_key(str(request["from"])), stream_key(str(request["to"]))
    inside = np.array([low <= stream_key(i) <= high for i in ids], dtype=bool)
    codes = universe(h).codes["events"][rows[inside]]
    amount = o["amount_cents"].to_numpy(float)[codes]
    refund = np.floor(np.nan_to_num(amount) * int(request["percent_bp"]) / 10_000)
    due = refund >= 1
    return pd.DataFrame(
        {"code": codes[due], "order_id": universe(h).ids[codes[due]], "refund": refund[due]}
    )


def _corrections(h: History) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PriceCorrected events and `adjustment` ledger entries: (code, correction_id, cents)."""
    u = universe(h)
    typed = h.typed("PriceCorrected")
    if len(typed):
        missing = pd.Series([None] * len(typed), index=typed.index, dtype=object)
        events = pd.DataFrame(
            {
                "code": u.codes["events"][typed.index.to_numpy()],
                "correction_id": typed.get("correction_id", missing).to_numpy(dtype=object),
                "cents": floats(typed.get("refund_cents", missing).to_numpy(dtype=object)),
            }
        )
    else:
        events = pd.DataFrame({"code": [], "correction_id": [], "cents": []})
    pay = h.payments
    adjustments: list[tuple[int, Any, float]] = []
    if pay is not None:
        rows = np.flatnonzero(pay["kind"].to_numpy(dtype=object) == "adjustment")
        maps = h.raw["payments"]
        codes = u.codes["payments"]
        amounts = pay["_amount_cents"].to_numpy(float)
        for r in rows.tolist():
            adjustments.append((int(codes[r]), maps[r].get("correction_id"), float(amounts[r])))
    ledger = pd.DataFrame(adjustments, columns=["code", "correction_id", "cents"])
    return events, ledger


def _chains(h: History) -> dict[str, list[dict[str, Any]]] | None:
    """Per ReprocessOrders workflow id, its runs from the histories: run id, predecessor, how it
    ended and its successor."""
    if h.histories is None:
        return None
    from temporalio.api.enums.v1 import EventType

    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in iter_histories(h.histories):
        if record.get("workflow_type") != WORKFLOW_TYPE:
            continue
        history = decode(record)
        run: dict[str, Any] = {
            "run_id": record.get("run_id"),
            "status": record.get("status"),
            "previous": None,
            "next": None,
        }
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                attrs = event.workflow_execution_started_event_attributes
                run["previous"] = attrs.continued_execution_run_id or None
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                attrs2 = event.workflow_execution_continued_as_new_event_attributes
                run["next"] = attrs2.new_execution_run_id or None
        out[str(record.get("workflow_id"))].append(run)
    return out


def _chain_problem(runs: list[dict[str, Any]]) -> str | None:
    """Why the runs of one reprocess are not one whole chain ending COMPLETED, or None."""
    if not runs:
        return "Temporal has no run of this reprocess"
    by_id = {r["run_id"]: r for r in runs}
    firsts = [r for r in runs if not r["previous"]]
    if len(firsts) != 1:
        return f"{len(firsts)} runs start a chain (none continued from another)"
    run, seen = firsts[0], 0
    while True:
        seen += 1
        if run["next"] is None:
            break
        successor = by_id.get(run["next"])
        if successor is None:
            return f"run {run['run_id']} continued as new into {run['next']}, which has no history"
        if successor["previous"] != run["run_id"]:
            return f"run {successor['run_id']} does not name {run['run_id']} as its predecessor"
        run = successor
    if seen != len(runs):
        return f"{len(runs) - seen} run(s) outside the chain from its first run"
    if run["status"] != "COMPLETED":
        return f"the chain's last run ({run['run_id']}) is {run['status']}, not COMPLETED"
    return None


@invariant("reprocessed_exactly_once", "Reprocessed exactly once")
def reprocessed_exactly_once(h: History) -> InvariantResult:
    """Every order a reprocess request targeted (its OrderCompleted in the range, a correction of
    at least a cent) has exactly one PriceCorrected event and one payments:ledger adjustment of
    the request's correction, each of the amount due; no other order has either; no unrequested
    correction appears; and each request's ReprocessOrders runs form one continue-as-new chain
    that completed."""
    h.require("events", "payments")
    requests = _requests(h)
    events, ledger = _corrections(h)
    if requests is None:
        if len(events) or len(ledger):
            reason = "no run folder: which corrections were requested is unknown"
            return InvariantResult("", "", "unknown", error=reason)
        requests = []
    chains = _chains(h)
    u = universe(h)
    rows: list[dict[str, Any]] = []
    targeted = 0
    for n, request in enumerate(requests):
        cid = str(request.get("correction_id"))
        due = expected_corrections(h, request)
        targeted += len(due)
        mine_e = events[events["correction_id"] == cid]
        mine_l = ledger[ledger["correction_id"] == cid]
        n_e = mine_e.groupby("code")["cents"].agg(["size", "sum"])
        n_l = mine_l.groupby("code")["cents"].agg(["size", "sum"])
        want = dict(zip(due["code"].tolist(), due["refund"].tolist(), strict=True))
        codes = sorted(set(want) | set(n_e.index.tolist()) | set(n_l.index.tolist()))
        for code in codes:
            e_n, e_sum = _count(n_e, code)
            l_n, l_sum = _count(n_l, code)
            why = _order_problem(cid, want.get(code), e_n, e_sum, l_n, l_sum)
            if why:
                rows.append(
                    {"order_id": u.ids[code], "why": why, "correction_id": cid,
                     "sort": float(n), "severity": 3.0 if e_n > 1 or l_n > 1 else 2.0}
                )  # fmt: skip
        if chains is not None:
            problem = _chain_problem(chains.get(str(request.get("workflow_id")), []))
            if problem:
                rows.append(
                    {"workflow_id": request.get("workflow_id"), "why": problem,
                     "correction_id": cid, "runs": chains.get(str(request.get("workflow_id")), []),
                     "sort": float(n), "severity": 1.0}
                )  # fmt: skip
    requested = {str(r.get("correction_id")) for r in requests}
    for frame, where in ((events, "a PriceCorrected event"), (ledger, "an adjustment")):
        stray = frame[~frame["correction_id"].isin(requested)]
        for code, cid in stray[["code", "correction_id"]].drop_duplicates().itertuples(index=False):
            text = f"{where} of correction {cid!r}, which nobody requested"
            rows.append(
                {"order_id": u.ids[int(code)], "why": text, "correction_id": cid, "sort": -1.0,
                 "severity": 3.0}
            )  # fmt: skip
    violations = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["why", "sort", "severity"])
    unknown = [] if chains is not None or not requests else [
        "the continue-as-new chains: history/workflows.jsonl.gz is missing"
    ]  # fmt: skip
    return from_violations(
        h,
        violations,
        checked=targeted,
        counts={
            "requests": len(requests),
            "targeted": targeted,
            "price_corrected_events": len(events),
            "adjustments": len(ledger),
            "runs": sum(len(chains.get(str(r.get("workflow_id")), [])) for r in requests)
            if chains is not None
            else 0,
        },
        unknown=unknown,
        context=lambda oids: {
            k: {"payments": v} for k, v in entries_for(h, "payments", oids).items()
        },
    )


def _count(grouped: pd.DataFrame, code: int) -> tuple[int, float]:
    if code in grouped.index:
        return int(grouped.at[code, "size"]), float(grouped.at[code, "sum"])
    return 0, 0.0


def _order_problem(
    cid: str, due: float | None, e_n: int, e_sum: float, l_n: int, l_sum: float
) -> str | None:
    if due is None:
        if e_n or l_n:
            return (
                f"corrected by {cid!r} ({e_n} event(s), {l_n} adjustment(s)) but not in its range"
            )
        return None
    if e_n == 0 and l_n == 0:
        return f"targeted by {cid!r} ({due:.0f} cents due) but never corrected"
    if e_n != 1 or l_n != 1:
        return f"corrected {e_n} time(s) in events and {l_n} time(s) in payments:ledger by {cid!r}"
    if e_sum != due or l_sum != due:
        return (
            f"{cid!r} refunded {l_sum:.0f} cents (event says {e_sum:.0f}) where {due:.0f} were due"
        )
    return None
