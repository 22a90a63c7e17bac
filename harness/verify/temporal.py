"""Temporal agrees with the streams: one saga per order, finished exactly when its order is.

Why: the order id is the workflow id, so Temporal's own list of OrderSaga runs is an
independent record of which sagas ran. Two runs of one id are a duplicate saga (the default
id-reuse policy starting a second run of a closed workflow); an order without a workflow was
written by something else; a workflow still running after the drain is an order left
half-done, whatever the streams say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.verify.facts import order_table, universe
from harness.verify.frames import object_frame
from harness.verify.history import History
from harness.verify.results import (
    InvariantResult,
    from_violations,
    invariant,
    records_for,
    violation_frame,
)

__all__ = ["BAD_STATUSES", "temporal_agrees", "workflow_table"]

# A run that ended like this did not finish its order's saga.
BAD_STATUSES = ("FAILED", "TERMINATED", "TIMED_OUT", "CANCELED")


def workflow_table(h: History) -> pd.DataFrame:
    """Per order code: runs (not counting CONTINUED_AS_NEW links), all_runs, status of the
    latest run by start_time (None without a workflow), bad_status (a run that ended FAILED,
    TERMINATED, TIMED_OUT or CANCELED), and the first start_time."""
    h.require("temporal")
    runs = h.temporal
    assert runs is not None
    u = universe(h)
    n = len(u.ids)
    code = u.codes["temporal"]
    keep = np.flatnonzero(code >= 0)
    start = runs["_start_time"].to_numpy(float)[keep]
    order = keep[np.lexsort((keep, np.nan_to_num(start, nan=-np.inf)))]  # by start_time, stable
    c = code[order]
    status = runs["status"].to_numpy(dtype=object)[order]
    links = status == "CONTINUED_AS_NEW"
    latest = np.full(n, None, dtype=object)
    if len(c):  # sorted by start_time: the last row of an order is its latest run
        uniq, from_end = np.unique(c[::-1], return_index=True)
        latest[uniq] = status[len(c) - 1 - from_end]
    bad = np.isin(status, BAD_STATUSES)
    bad_status = np.full(n, None, dtype=object)
    bad_status[c[bad]] = status[bad]
    first = np.full(n, np.nan)
    firsts = pd.Series(runs["_start_time"].to_numpy(float)[order]).groupby(c).min()
    first[firsts.index.to_numpy()] = firsts.to_numpy()
    return object_frame(
        {
            "runs": np.bincount(c[~links], minlength=n),
            "all_runs": np.bincount(c, minlength=n),
            "status": latest,
            "bad_status": bad_status,
            "first_start": first,
        }
    )


@invariant("temporal_agrees", "Temporal agrees with the streams")
def temporal_agrees(h: History) -> InvariantResult:
    """One OrderSaga run per order id (a second run is a duplicate saga; CONTINUED_AS_NEW links
    do not count); every order in orders:events has a workflow; the latest run is COMPLETED
    exactly when the order's stream is terminal; nothing is RUNNING at export time (after the
    drain); no run ended FAILED, TERMINATED, TIMED_OUT or CANCELED."""
    h.require("temporal", "events")
    w = workflow_table(h)
    o = order_table(h)
    in_stream = o["in_events"].to_numpy()
    terminal = o["terminal"].to_numpy()
    status = w["status"].to_numpy(dtype=object)
    has_wf = w["all_runs"].to_numpy() > 0
    runs = w["runs"].to_numpy()
    bad_status = w["bad_status"].to_numpy(dtype=object)
    last_type = o["last_type"].to_numpy(dtype=object)
    running = status == "RUNNING"
    completed = status == "COMPLETED"
    problems = [
        (runs > 1, lambda i: f"{runs[i]} workflow runs for one order: a duplicate saga", 6),
        (
            in_stream & ~has_wf,
            lambda i: "in orders:events but Temporal has no OrderSaga workflow",
            5,
        ),
        (
            np.array([s is not None for s in bad_status], dtype=bool),
            lambda i: f"a workflow run ended {bad_status[i]}",
            5,
        ),
        (
            running,
            lambda i: f"workflow still RUNNING after the drain (last event {last_type[i]})",
            4,
        ),
        (
            completed & ~terminal,
            lambda i: (
                f"workflow COMPLETED but the order is not terminal (last event {last_type[i]})"
                if in_stream[i]
                else "workflow COMPLETED but the order has no events"
            ),
            4,
        ),
        (
            has_wf & ~completed & ~running & terminal,
            lambda i: f"the order is terminal but its workflow is {status[i]}",
            3,
        ),
    ]
    why = np.full(len(o), None, dtype=object)
    rank = np.zeros(len(o))
    for mask, text, r in problems:
        for i in np.flatnonzero(mask & (rank < r)):
            why[i], rank[i] = text(i), r
    bad = np.flatnonzero(rank > 0)
    when = np.fmin(o["ts_OrderPlaced"].to_numpy(float) / 1000.0, w["first_start"].to_numpy(float))
    return from_violations(
        h,
        violation_frame(h, bad, why[bad], when[bad], rank[bad]),
        checked=int((in_stream | has_wf).sum()),
        counts={
            "workflows": int(has_wf.sum()),
            "runs": int(w["all_runs"].sum()),
            "running": int(running.sum()),
            "duplicate_sagas": int((runs > 1).sum()),
        },
        context=lambda oids: {
            k: {"workflow_runs": v} for k, v in records_for(h, "temporal", oids).items()
        },
    )
