"""The report's charts, as PNG data URIs, so report.html opens from disk with no network.

Every time chart shares one x axis (time since the run's start) and shades every fault
window in its own colour with its label, with the verifier's recovery time hatched after
it: the eye goes from a dip to the fault that caused it. Figures are built with
``matplotlib.figure.Figure`` (Agg, no pyplot state) and saved without a timestamp, so the
same run folder gives byte-identical images.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from harness.report.data import Fault, RunData

__all__ = [
    "COLORS",
    "FAULT_COLORS",
    "fault_color",
    "fmt_elapsed",
    "latency_chart",
    "throughput_chart",
    "time_to_terminal_chart",
]

COLORS = {
    "offered": "#9aa0a6",
    "accepted": "#1a73e8",
    "completed": "#188038",
    "cancelled": "#e37400",
    "errors": "#d93025",
    "p50": "#1a73e8",
    "p95": "#a142f4",
    "p99": "#d93025",
    "limit": "#202124",
}
FAULT_COLORS = ("#a142f4", "#f29900", "#12b5cb", "#e52592", "#795548", "#5f6368")
WIDTH_IN = 12.0
# the same margins on every time chart, so the fault bands line up from one chart to the next
_MARGINS = {"left": 0.055, "right": 0.865, "top": 0.86, "bottom": 0.11}
DPI = 110
_RC: Any = {  # matplotlib types rc keys as a Literal; a plain dict is fine at runtime
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa0a6",
    "axes.grid": True,
    "grid.color": "#e8eaed",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "xtick.color": "#5f6368",
    "ytick.color": "#5f6368",
    "svg.hashsalt": "sagaquake",
}


def fault_color(index: int) -> str:
    return FAULT_COLORS[index % len(FAULT_COLORS)]


def fmt_elapsed(seconds: float) -> str:
    """Seconds since the run's start as m:ss (or h:mm:ss)."""
    sign = "-" if seconds < 0 else ""
    s = round(abs(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _time_axis(ax: Axes, span: float) -> None:
    ax.set_xlim(0, max(span, 1.0))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=14, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_elapsed(v)))


def _shade(ax: Axes, faults: Iterable[Fault], span: float, *, labels: bool = True) -> None:
    """Shade each fault window (at least 0.5 % of the axis wide, so a kill shows) and label it."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    min_w = span * 0.005
    last_x = -math.inf
    level = 0
    for fault in faults:
        color = fault_color(fault.index)
        start, end = fault.started_at, max(fault.ended_at, fault.started_at + min_w)
        ax.axvspan(start, end, color=color, alpha=0.28, lw=0, zorder=0)
        ax.axvline(start, color=color, lw=1.2, alpha=0.9, zorder=1)
        if fault.recovery_time_s:
            ax.axvspan(
                end,
                end + fault.recovery_time_s,
                facecolor="none",
                edgecolor=color,
                alpha=0.45,
                hatch="///",
                lw=0,
                zorder=0,
            )
        if not labels:
            continue
        level = level + 1 if start - last_x < span * 0.16 else 0
        last_x = start
        ax.text(
            start,
            1.02 + 0.1 * (level % 3),
            f" {fault.label} ",
            transform=trans,
            ha="left",
            va="bottom",
            fontsize=8,
            color="white",
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": color, "ec": "none"},
            zorder=5,
            clip_on=False,
        )


def _phases(ax: Axes, data: RunData) -> None:
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    phases = data.run.get("phases")
    for phase in phases if isinstance(phases, list) else []:
        start = phase.get("started_at") if isinstance(phase, dict) else None
        if not isinstance(start, int | float) or phase.get("name") in ("up", "load"):
            continue
        x = start - data.t0
        if 0 < x < len(data.rates):
            ax.axvline(x, color="#5f6368", lw=0.9, ls=":", zorder=1)
            ax.text(
                x,
                0.02,
                f" {phase.get('name')}",
                transform=trans,
                fontsize=7.5,
                color="#5f6368",
                va="bottom",
            )


def throughput_chart(data: RunData) -> str | None:
    """Orders/s offered, accepted, completed and cancelled, and client errors/s."""
    rates = data.rates
    if rates.empty or rates.fillna(0).to_numpy().sum() == 0:
        return None
    span = float(len(rates))
    window = max(3, round(span / 120))
    smooth = rates.rolling(window, center=True, min_periods=1).mean()
    with rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.4))
        ax = fig.add_subplot()
        styles = [
            ("offered", "offered", 1.4, "-"),
            ("accepted", "accepted (202)", 1.6, "-"),
            ("completed", "completed", 2.0, "-"),
            ("cancelled", "cancelled", 1.2, "-"),
            ("errors", "client errors", 1.4, "--"),
        ]
        for col, label, lw, ls in styles:
            series = smooth[col]
            if series.notna().any() and series.fillna(0).sum() > 0:
                ax.plot(
                    series.index, series.to_numpy(), color=COLORS[col], lw=lw, ls=ls, label=label
                )
        _shade(ax, data.faults, span)
        _phases(ax, data)
        _time_axis(ax, span)
        ax.set_ylim(bottom=0, top=max(1.0, float(np.nanmax(smooth.to_numpy())) * 1.3))
        ax.set_ylabel("orders / s")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.subplots_adjust(**_MARGINS)
        return _uri(fig)


def latency_chart(data: RunData) -> str | None:
    """Client latency percentiles per window (log scale when timeouts dwarf the median)."""
    lat = data.latency
    if lat.empty:
        return None
    span = float(max(len(data.rates), lat["t"].max() + 10))
    with rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.0))
        ax = fig.add_subplot()
        for col, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            x = np.append(lat["t"].to_numpy(dtype=float), lat["t"].iloc[-1] + 10)
            y = np.append(lat[col].to_numpy(dtype=float), lat[col].iloc[-1])
            ax.step(x, y, where="post", color=COLORS[label], lw=1.6, label=label)
        top, bottom = float(lat["p99_ms"].max()), float(lat["p50_ms"].min())
        if bottom > 0 and top / bottom > 20:
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_ylim(bottom=bottom / 1.5, top=top * 1.6)
        else:
            ax.set_ylim(bottom=0, top=top * 1.35)
        _shade(ax, data.faults, span)
        _time_axis(ax, span)
        ax.set_ylabel("client latency (ms)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.subplots_adjust(**_MARGINS)
        return _uri(fig)


def _threshold_limit(data: RunData) -> tuple[str, float] | None:
    for t in data.thresholds:
        name = str(t.get("name", ""))
        if "time_to_terminal" in name and isinstance(t.get("limit"), int | float):
            return name, float(t["limit"])
    return None


def time_to_terminal_chart(data: RunData) -> str | None:
    """Each order's time to terminal against when it was sent, and the distribution."""
    orders = data.orders
    if orders.empty or orders["ttt_s"].notna().sum() == 0:
        return None
    done = orders[orders["ttt_s"].notna()]
    open_ = orders[orders["ttt_s"].isna() & orders["start"].notna()]
    ttt = done["ttt_s"].clip(lower=1e-3)
    span = float(max(len(data.rates), 1))
    limit = _threshold_limit(data)
    log = float(ttt.max()) / max(float(ttt.median()), 1e-3) > 30
    top = max(float(ttt.max()), limit[1] if limit else 0.0) * (3 if log else 1.15)
    with rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, 3.6))
        grid = fig.add_gridspec(1, 3, wspace=0.25)
        ax = fig.add_subplot(grid[0, :2])
        hist = fig.add_subplot(grid[0, 2])
        completed = done["terminal"] == "OrderCompleted"
        for mask, col, label in (
            (completed, "completed", "completed"),
            (~completed, "cancelled", "cancelled"),
        ):
            part = done[mask]
            if len(part):
                ax.scatter(
                    part["start"],
                    ttt[mask],
                    s=7,
                    color=COLORS[col],
                    alpha=0.6,
                    lw=0,
                    label=f"{label} ({len(part):,})",
                )
        if len(open_):
            ax.scatter(
                open_["start"],
                np.full(len(open_), top / (1.6 if log else 1.04)),
                marker="x",
                s=36,
                color=COLORS["errors"],
                lw=1.8,
                label=f"no terminal event ({len(open_):,})",
                zorder=6,
            )
        if limit:
            ax.axhline(limit[1], color=COLORS["limit"], lw=1, ls="--")
            ax.text(
                0.995,
                limit[1],
                f"{limit[0]} limit {limit[1]:g} s ",
                transform=blended_transform_factory(ax.transAxes, ax.transData),
                ha="right",
                va="top",
                fontsize=7.5,
            )
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylim(top=top, bottom=(float(ttt.min()) / 1.5) if log else 0)
        _shade(ax, data.faults, span)
        _time_axis(ax, span)
        ax.set_ylabel("time to terminal (s)")
        ax.set_xlabel("when the client first sent the order (time since run start)")
        ax.legend(loc="upper left", fontsize=8, ncols=3, bbox_to_anchor=(0.0, -0.2))
        _histogram(hist, ttt, log, limit)
        fig.subplots_adjust(left=0.055, right=0.98, top=0.88, bottom=0.25)
        return _uri(fig)


def _histogram(ax: Axes, ttt: pd.Series, log: bool, limit: tuple[str, float] | None) -> None:
    lo, hi = float(ttt.min()), float(ttt.max())
    bins = np.geomspace(lo, max(hi, lo * 1.01), 40) if log else np.linspace(0, max(hi, 1e-3), 40)
    ax.hist(ttt, bins=bins.tolist(), color=COLORS["completed"], alpha=0.75)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    for q, col in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        v = float(ttt.quantile(q))
        ax.axvline(v, color=COLORS[col], lw=1.4, label=f"{col} {v:.3g} s")
    if limit:
        ax.axvline(limit[1], color=COLORS["limit"], lw=1, ls="--", label=f"limit {limit[1]:g} s")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=2, fontsize=7.5)
    ax.set_xlabel("time to terminal (s)")
    ax.set_ylabel("orders")
