"""Read a run folder into plain data and pandas frames, the only input the renderers get.

The report must render whatever a run left behind, so every reader here is forgiving: a
missing or malformed file becomes a note for its section (``RunData.notes``), never an
exception. All times are seconds since the epoch on input; the frames carry seconds since
the run's start (``RunData.t0``) so plots of compressed and real-time runs read the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harness import keys
from harness.runs import RunFolder, read_jsonl

__all__ = [
    "LATENCY_WINDOW_S",
    "Fault",
    "RunData",
    "as_dict",
    "as_list",
    "load_run",
]

LATENCY_WINDOW_S = 10  # client latency percentiles are computed per window of this many seconds
TERMINAL = ("OrderCompleted", "OrderCancelled")
_OUTPUTS = (RunFolder.REPORT_HTML, RunFolder.SUMMARY_MD, RunFolder.JUNIT_XML)


@dataclass(frozen=True)
class Fault:
    """One fault window from ``history/faults.jsonl``, with the verifier's recovery time."""

    index: int  # line number in faults.jsonl, from 0: what verdict.json's metrics.recovery names
    experiment: str
    action: str
    target: str
    started_at: float  # seconds since the run's start
    ended_at: float
    landed: bool | None
    evidence: Any
    recovery_time_s: float | None = None

    @property
    def label(self) -> str:
        return f"#{self.index} {self.experiment}"  # numbered from 0, as verdict.json names it

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


@dataclass
class RunData:
    """Everything the report shows, read once from one run folder."""

    run_dir: Path
    run: dict[str, Any]
    verdict: dict[str, Any] | None  # the verifier's (verdict.json)
    gate: dict[str, Any] | None  # what `sagaquake run` decided (gate.json); None when only verified
    t0: float  # epoch seconds of the run's start: the zero of every time axis
    ledger: pd.DataFrame | None  # one row per client attempt
    events: pd.DataFrame | None  # one row per orders:events entry (order_id, type, t, reason)
    rates: pd.DataFrame  # per second since t0: offered, accepted, errors, completed, cancelled
    latency: pd.DataFrame  # per LATENCY_WINDOW_S window: n, p50_ms, p95_ms, p99_ms, max_ms
    orders: pd.DataFrame  # one row per order: client view, stream view, outcome, ttt_s
    faults: list[Fault]
    journals: list[dict[str, Any]]  # (name, path, journal or None, note) per chaos journal
    thresholds: list[dict[str, Any]]  # the gate's, else the verifier's own
    files: list[tuple[str, int]]  # (path relative to the run folder, size in bytes)
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it is empty or partial

    @property
    def incomplete(self) -> bool:
        return any(
            bool((part or {}).get("incomplete")) for part in (self.run, self.verdict, self.gate)
        )

    @property
    def failed_experiments(self) -> list[str]:
        """The experiments the gate says did not complete (none for a run only verified)."""
        return [str(name) for name in as_list((self.gate or {}).get("failed_experiments"))]

    @property
    def duration_s(self) -> float:
        return float(len(self.rates)) if len(self.rates) else 0.0


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: files from a run are data, not trusted."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _read_json(path: Path, notes: dict[str, str], key: str) -> Any:
    if not path.is_file():
        notes[key] = f"no {path.name} in the run folder"
        return None
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        notes[key] = f"{path.name} could not be read: {exc}"
        return None


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _read_ledger(run_dir: Path, notes: dict[str, str]) -> pd.DataFrame | None:
    files = RunFolder(run_dir).client_ledgers()
    if not files:
        notes["ledger"] = f"no client ledger ({RunFolder.CLIENT_LEDGERS}): load never ran"
        return None
    rows: list[dict[str, Any]] = []
    bad = 0
    for path in files:
        lines = read_jsonl(path)
        client = RunFolder.ledger_name(path)
        for row in lines.records:
            row["client"] = client
        rows.extend(lines.records)
        bad += lines.unreadable
    if bad:
        notes["ledger"] = f"{bad} unreadable ledger line(s) skipped"
    if not rows:
        notes["ledger"] = "the client ledger is empty: no request was sent"
        return None
    df = pd.DataFrame(rows)
    for col in ("order_id", "outcome", "sent_at", "answered_at", "attempt", "status", "seq"):
        if col not in df:
            df[col] = None
    df["sent_at"] = pd.to_numeric(df["sent_at"], errors="coerce")
    df["answered_at"] = pd.to_numeric(df["answered_at"], errors="coerce")
    df["attempt"] = pd.to_numeric(df["attempt"], errors="coerce").fillna(1).astype(int)
    df = df.dropna(subset=["sent_at"])
    return df.sort_values(["sent_at", "client", "seq"], kind="stable").reset_index(drop=True)


def _read_events(run_dir: Path, notes: dict[str, str]) -> pd.DataFrame | None:
    path = RunFolder(run_dir).stream(keys.EVENTS)
    if not path.is_file():
        notes["events"] = f"no orders:events export ({RunFolder.stream_rel(keys.EVENTS)})"
        return None
    lines = read_jsonl(path)
    if lines.unreadable:
        notes["events"] = f"{lines.unreadable} unreadable stream line(s) skipped"
    rows = []
    for entry in lines.records:
        fields = entry.get("fields") or {}
        ts = _float(fields.get("ts"))
        if ts is None:  # fall back on the stream id: "<ms>-<seq>"
            ts = _float(str(entry.get("id", "")).split("-")[0])
        if ts is None:
            continue
        rows.append(
            {
                "id": entry.get("id"),
                "order_id": fields.get("order_id"),
                "type": fields.get("type"),
                "at": ts / 1000.0,
                "reason": fields.get("reason"),
            }
        )
    if not rows:
        notes.setdefault("events", "the orders:events stream is empty")
        return None
    return pd.DataFrame(rows)


def _read_faults(run_dir: Path, notes: dict[str, str], t0: float) -> list[Fault]:
    path = RunFolder(run_dir).faults
    if not path.is_file():
        notes["faults"] = f"no {RunFolder.FAULTS}: no fault was injected (or none ended)"
        return []
    lines = read_jsonl(path)
    if lines.unreadable:
        notes["faults"] = f"{lines.unreadable} unreadable fault line(s) skipped"
    faults = []
    for i, row in enumerate(lines.records):
        start = _float(row.get("started_at"))
        end = _float(row.get("ended_at"))
        if start is None:
            continue
        end = start if end is None else end
        landed = row.get("landed")
        faults.append(
            Fault(
                index=i,
                experiment=str(row.get("experiment") or "?"),
                action=str(row.get("action") or "?"),
                target=str(row.get("target") or "?"),
                started_at=start - t0,
                ended_at=end - t0,
                landed=landed if isinstance(landed, bool) else None,
                evidence=row.get("evidence"),
            )
        )
    return faults


def _read_journals(run_dir: Path, notes: dict[str, str]) -> list[dict[str, Any]]:
    paths = RunFolder(run_dir).journals()
    if not paths:
        notes["chaos"] = f"no Chaos Toolkit journal ({RunFolder.journal_rel('*')})"
    out = []
    for path in paths:
        name = RunFolder.experiment_of(path)
        journal, note = None, None
        try:
            journal = orjson.loads(path.read_bytes())
            if not isinstance(journal, dict):
                journal, note = None, "the journal is not a JSON object"
        except (OSError, orjson.JSONDecodeError) as exc:
            note = f"unreadable journal: {exc}"
        out.append({"name": name, "path": path, "journal": journal, "note": note})
    return out


def _t0(run: dict[str, Any], ledger: pd.DataFrame | None, events: pd.DataFrame | None) -> float:
    start = _float(run.get("started_at"))
    if start is not None:
        return start
    candidates = []
    if ledger is not None:
        candidates.append(float(ledger["sent_at"].min()))
    if events is not None:
        candidates.append(float(events["at"].min()))
    return min(candidates) if candidates else 0.0


def _per_second(times: pd.Series, n: int) -> pd.Series:
    secs = times.dropna().astype(float).clip(lower=0).floordiv(1).astype(int)
    return secs.value_counts().reindex(range(n), fill_value=0).sort_index()


def _rates(ledger: pd.DataFrame | None, events: pd.DataFrame | None, span: float) -> pd.DataFrame:
    n = max(1, math.ceil(span))
    cols = {}
    empty = pd.Series(dtype=float)
    if ledger is not None:
        first = ledger[ledger["attempt"] == 1]
        ok = ledger[ledger["outcome"] == "ok"].drop_duplicates("order_id")
        err = ledger[ledger["outcome"].isin(["failed", "unknown"])]
        cols["offered"] = _per_second(first["sent_at"], n)
        cols["accepted"] = _per_second(ok["answered_at"], n)
        cols["errors"] = _per_second(err["answered_at"].fillna(err["sent_at"]), n)
    else:
        cols.update(offered=empty, accepted=empty, errors=empty)
    if events is not None:
        term = events[events["type"].isin(TERMINAL)].drop_duplicates("order_id")
        cols["completed"] = _per_second(term[term["type"] == "OrderCompleted"]["at"], n)
        cols["cancelled"] = _per_second(term[term["type"] == "OrderCancelled"]["at"], n)
    else:
        cols.update(completed=empty, cancelled=empty)
    df = pd.DataFrame({k: v.reindex(range(n)) for k, v in cols.items()}, index=range(n))
    df.index.name = "t"
    return df


def _latency(ledger: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["t", "n", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
    if ledger is None:
        return pd.DataFrame(columns=cols)
    df = ledger.dropna(subset=["answered_at"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    ms = (df["answered_at"] - df["sent_at"]) * 1000.0
    window = (df["sent_at"].clip(lower=0) // LATENCY_WINDOW_S * LATENCY_WINDOW_S).astype(int)
    g = ms.groupby(window)
    out = pd.DataFrame(
        {
            "n": g.size(),
            "p50_ms": g.quantile(0.50),
            "p95_ms": g.quantile(0.95),
            "p99_ms": g.quantile(0.99),
            "max_ms": g.max(),
        }
    )
    out.index.name = "t"
    return out.reset_index()


def _client_view(ledger: pd.DataFrame) -> pd.DataFrame:
    df = ledger.dropna(subset=["order_id"])
    g = df.groupby("order_id", sort=True)
    outcomes = g["outcome"].agg(set)
    client = pd.DataFrame({"first_sent": g["sent_at"].min(), "attempts": g.size()})
    client["client_outcome"] = outcomes.map(
        lambda s: "ok" if "ok" in s else ("unknown" if "unknown" in s else "failed")
    )
    return client


def _stream_view(events: pd.DataFrame) -> pd.DataFrame:
    ev = events.dropna(subset=["order_id"])
    placed = ev[ev["type"] == "OrderPlaced"].groupby("order_id")["at"].min().rename("placed_at")
    term = ev[ev["type"].isin(TERMINAL)].drop_duplicates("order_id").set_index("order_id")
    stream = pd.DataFrame(index=pd.Index(sorted(ev["order_id"].unique()), name="order_id"))
    stream["placed_at"] = placed
    stream["terminal_at"] = term["at"]
    stream["terminal"] = term["type"]
    stream["reason"] = term["reason"]
    return stream


def _outcomes(df: pd.DataFrame) -> pd.Series:
    """Each order's fate: its terminal event, else how far it got (vectorised: 50K+ orders)."""
    terminal = df["terminal"].astype(object)
    reason = df["reason"].astype(object).where(df["reason"].notna(), "no reason")
    client = df["client_outcome"].astype(object)
    choices = np.select(
        [
            terminal == "OrderCompleted",
            terminal == "OrderCancelled",
            pd.to_numeric(df["placed_at"], errors="coerce").notna(),
            client == "ok",
            client == "unknown",
            client == "failed",
        ],
        [
            "completed",
            "cancelled: " + reason.astype(str),
            "placed, never terminal",
            "accepted, never placed",
            "answer lost, never placed",
            "refused",
        ],
        default="unknown",
    )
    return pd.Series(choices, index=df.index, dtype=object)


def _orders(ledger: pd.DataFrame | None, events: pd.DataFrame | None) -> pd.DataFrame:
    parts = []
    if ledger is not None:
        parts.append(_client_view(ledger))
    if events is not None:
        parts.append(_stream_view(events))
    if not parts:
        return pd.DataFrame(
            columns=["order_id", "first_sent", "placed_at", "terminal_at", "outcome", "ttt_s"]
        )
    df = parts[0] if len(parts) == 1 else parts[0].join(parts[1], how="outer")
    for col in ("first_sent", "attempts", "client_outcome", "placed_at", "terminal_at"):
        if col not in df:
            df[col] = None
    for col in ("terminal", "reason"):
        if col not in df:
            df[col] = None
    df["outcome"] = _outcomes(df)
    start = pd.to_numeric(df["first_sent"], errors="coerce").fillna(
        pd.to_numeric(df["placed_at"], errors="coerce")
    )
    df["start"] = start
    df["ttt_s"] = pd.to_numeric(df["terminal_at"], errors="coerce") - start
    df.index.name = "order_id"
    return df.reset_index().sort_values("order_id", kind="stable").reset_index(drop=True)


def _attach_recovery(faults: list[Fault], verdict: dict[str, Any] | None) -> list[Fault]:
    recovery = ((verdict or {}).get("metrics") or {}).get("recovery") or []
    by_index = {}
    for item in recovery if isinstance(recovery, list) else []:
        if isinstance(item, dict) and isinstance(item.get("fault"), int):
            by_index[item["fault"]] = _float(item.get("recovery_time_s"))
    return [
        Fault(**{**f.__dict__, "recovery_time_s": by_index.get(f.index, f.recovery_time_s)})
        for f in faults
    ]


def _files(run_dir: Path) -> list[tuple[str, int]]:
    """The artifacts worth linking: everything but the platform's state and our own outputs."""
    out = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if not path.is_file() or rel.startswith(f"{RunFolder.PLATFORM_DIR}/") or rel in _OUTPUTS:
            continue
        out.append((rel, path.stat().st_size))
    return out


def load_run(run_dir: Path | str) -> RunData:
    """Read one run folder. Never raises for a missing or torn file: see ``RunData.notes``."""
    run_dir = Path(run_dir)
    notes: dict[str, str] = {}
    folder = RunFolder(run_dir)
    run = _read_json(folder.run_json, notes, "run")
    run = run if isinstance(run, dict) else {}
    verdict = _read_json(folder.verdict, notes, "verdict")
    verdict = verdict if isinstance(verdict, dict) else None
    gate = as_dict(_read_json(folder.gate, {}, "gate")) or None  # absent: only verified
    ledger = _read_ledger(run_dir, notes)
    events = _read_events(run_dir, notes)
    t0 = _t0(run, ledger, events)
    if ledger is not None:
        ledger["sent_at"] -= t0
        ledger["answered_at"] -= t0
    if events is not None:
        events["at"] -= t0
    run_end = _float(run.get("ended_at"))
    ends = [] if run_end is None else [run_end - t0]
    if ledger is not None:
        ends.append(float(ledger[["sent_at", "answered_at"]].max().max()))
    if events is not None:
        ends.append(float(events["at"].max()))
    faults = _attach_recovery(_read_faults(run_dir, notes, t0), verdict)
    ends.extend(f.ended_at + (f.recovery_time_s or 0.0) for f in faults)
    span = max(ends) + 1 if ends else 1.0
    thresholds = (gate or verdict or {}).get("thresholds")
    return RunData(
        run_dir=run_dir,
        run=run,
        verdict=verdict,
        gate=gate,
        t0=t0,
        ledger=ledger,
        events=events,
        rates=_rates(ledger, events, span),
        latency=_latency(ledger),
        orders=_orders(ledger, events),
        faults=faults,
        journals=_read_journals(run_dir, notes),
        thresholds=[t for t in thresholds if isinstance(t, dict)]
        if isinstance(thresholds, list)
        else [],
        files=_files(run_dir),
        notes=notes,
    )
