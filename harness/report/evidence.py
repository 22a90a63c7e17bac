"""The headline of a fault's evidence: what it proved, in a few words a reader takes in at once.

A fault window's evidence is a nested record (docs/chaos.md); the report shows it whole, cut to a
few hundred characters, and these lines first, so that "83 charges done and never heard of" is
not lost behind the port numbers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evidence_headline"]


def evidence_headline(evidence: dict[str, Any]) -> list[str]:
    """The facts of `evidence` that say what the fault did, in a fixed order; [] when none."""
    lines: list[str] = []
    unheard = evidence.get("unheard")
    if isinstance(unheard, dict) and "count" in unheard:
        example = (unheard.get("examples") or [{}])[0]
        tail = (
            f", e.g. {example.get('order_id')} ({example.get('kind')} without "
            f"{example.get('missing_event')})"
            if example
            else ""
        )
        lines.append(
            f"{unheard['count']} of {unheard.get('performed', 0)} requests in "
            f"{unheard.get('ledger')} performed and never heard of{tail}"
        )
    request = evidence.get("request")
    if isinstance(request, dict) and request.get("outcome"):
        lines.append(f"a request to {request.get('address', 'it')} ended: {request['outcome']}")
    if isinstance(evidence.get("dropped_packets"), int):
        lines.append(f"{evidence['dropped_packets']:,} packets dropped")
    trips = evidence.get("round_trips")
    if isinstance(trips, dict) and trips.get("answered"):
        lines.append(
            f"round trips over {evidence.get('cycles', '?')} cycles: p50 {trips['p50_ms']} ms, "
            f"p99 {trips['p99_ms']} ms, max {trips['max_ms']} ms"
        )
    during = evidence.get("during")
    if isinstance(during, dict) and isinstance(during.get("events"), dict):
        events = during["events"]
        lines.append(
            f"meanwhile: {during.get('accepted', 0)} orders accepted "
            f"({during.get('refused', 0)} refused, {during.get('unknown', 0)} unknown), "
            f"{events.get('OrderPlaced', 0)} placed, {events.get('InventoryReserved', 0)} "
            f"reserved, {events.get('PaymentCaptured', 0)} captured"
        )
    kills = evidence.get("kills")  # a count in kill_replicas' windows, a list here
    held: list[dict[str, Any]] = [
        k["in_flight"]
        for k in (kills if isinstance(kills, list) else [])
        if isinstance(k, dict) and isinstance(k.get("in_flight"), dict)
    ]
    if held:
        parts = [
            f"{h.get('accept_queue', 0)} waiting connections, {h.get('unread_bytes', 0)} unread bytes"
            if "accept_queue" in h
            else f"{h.get('pending_entries', 0)} unacknowledged entries"
            for h in held
        ]
        lines.append(f"killed with work in hand ({len(held)}x): " + "; ".join(parts))
    return lines
