"""Small HTML builders shared by the report's sections: escaping, tables, pills, links, times.

Everything that reaches the page goes through ``e()`` (values from a run folder are data,
never markup); builders take already-escaped cells only where their name says ``html``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from harness.report.data import RunData
from harness.report.headline import fmt_num
from harness.report.plots import fmt_elapsed

__all__ = [
    "e",
    "note",
    "num",
    "pill",
    "table_html",
    "temporal_link",
    "temporal_ui",
    "utc",
    "when",
]


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def num(value: Any) -> str:
    return e(fmt_num(value))


def note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def pill(status: Any, label: str | None = None) -> str:
    """A coloured badge: green pass, red fail, amber unknown, grey anything else."""
    status = str(status or "").lower()
    cls = status if status in ("pass", "fail", "unknown") else "none"
    return f'<span class="pill {cls}">{e(label or status.upper() or "—")}</span>'


def utc(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(data: RunData, t: float | None) -> str:
    """A time since the run's start as 't+m:ss' with the UTC clock time in a tooltip."""
    if t is None:
        return "—"
    clock = datetime.fromtimestamp(data.t0 + t, UTC).strftime("%H:%M:%S UTC")
    sign = "t" if t < 0 else "t+"
    return f'<span title="{e(clock)}">{sign}{e(fmt_elapsed(t))}</span>'


def table_html(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
    compact: bool = False,
) -> str:
    """A table from already-escaped cells; ``numeric`` column indexes are right-aligned.

    ``compact`` tables are as wide as their content, for short lists that would otherwise
    spread a few words across the page.
    """
    nums = set(numeric)
    head = "".join(
        f'<th class="num">{e(h)}</th>' if i in nums else f"<th>{e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(
            f'<td class="num">{c}</td>' if i in nums else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    cls = ' class="compact"' if compact else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def temporal_ui(data: RunData) -> tuple[str, str] | None:
    """(Temporal Web UI base URL, namespace) from run.json, when the run recorded one."""
    endpoints = data.run.get("endpoints")
    if not isinstance(endpoints, dict):
        return None
    ui = endpoints.get("temporal_ui")
    if not isinstance(ui, str) or not ui.startswith(("http://", "https://")):
        return None
    ns = endpoints.get("temporal_namespace") or data.run.get("temporal_namespace") or "default"
    return ui.rstrip("/"), str(ns)


def temporal_link(data: RunData, order_id: Any) -> str:
    """The order id, linked to its workflow in the Temporal Web UI when there is one."""
    if not order_id:
        return "—"
    ui = temporal_ui(data)
    label = f"<code>{e(order_id)}</code>"
    if ui is None:
        return label
    base, ns = ui
    href = f"{base}/namespaces/{quote(ns, safe='')}/workflows/{quote(str(order_id), safe='')}"
    return f'<a href="{e(href)}" title="open the workflow in the Temporal Web UI">{label}</a>'
