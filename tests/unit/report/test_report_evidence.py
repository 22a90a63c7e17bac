"""The headline of a fault's evidence names what the fault proved, from the evidence itself."""

from __future__ import annotations

import pytest

from harness.report.evidence import evidence_headline

pytestmark = pytest.mark.unit


def test_lost_replies_lead_with_the_work_done_and_never_heard_of() -> None:
    lines = evidence_headline(
        {
            "unheard": {"ledger": "payments:ledger", "performed": 83, "count": 81,
                        "examples": [{"order_id": "ord-1", "kind": "capture",
                                      "missing_event": "PaymentCaptured"}]},
            "request": {"address": "127.0.0.1:18081", "outcome": "no answer"},
            "dropped_packets": 2353,
            "during": {"accepted": 90, "refused": 2, "unknown": 1,
                       "events": {"OrderPlaced": 83, "InventoryReserved": 83}},
        }
    )  # fmt: skip
    assert lines == [
        "81 of 83 requests in payments:ledger performed and never heard of, e.g. ord-1 "
        "(capture without PaymentCaptured)",
        "a request to 127.0.0.1:18081 ended: no answer",
        "2,353 packets dropped",
        "meanwhile: 90 orders accepted (2 refused, 1 unknown), 83 placed, 83 reserved, 0 captured",
    ]


def test_a_flap_shows_its_round_trips_and_a_kill_what_it_held() -> None:
    flap = {"cycles": 25, "round_trips": {"answered": 300, "p50_ms": 1.2, "p99_ms": 398.0,
                                          "max_ms": 402.5, "requests": 310}}  # fmt: skip
    assert evidence_headline(flap) == [
        "round trips over 25 cycles: p50 1.2 ms, p99 398.0 ms, max 402.5 ms"
    ]
    kills = {"kills": [{"in_flight": {"accept_queue": 2, "unread_bytes": 0}},
                       {"in_flight": {"pending_entries": 3}}]}  # fmt: skip
    assert evidence_headline(kills) == [
        "killed with work in hand (2x): 2 waiting connections, 0 unread bytes; "
        "3 unacknowledged entries"
    ]


def test_evidence_of_a_clean_fault_has_no_headline() -> None:
    assert evidence_headline({"down": {"running_replicas": 0}, "stop_took_s": 0.4}) == []
    assert evidence_headline({"kills": 3, "killed": [{"name": "payment-service_00"}]}) == []
