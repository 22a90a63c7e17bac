"""The harness derives order ids itself (harness/ids.py, never imported from the system, so a
wrong rule in the system is caught, not shared); this test is the one place that holds the
harness's rule equal to the system's, so a changed rule fails here and not in a run's verdict."""

from __future__ import annotations

import pytest

from harness import ids
from system_under_test.ids import order_id_for

pytestmark = pytest.mark.unit

KEYS = ["5f0c", "", "key-ünïcødé ✓", "a" * 128, "sqabc-00000001", *(f"k{i}" for i in range(500))]


def test_order_ids_for_equals_the_system_s_own() -> None:
    assert ids.order_ids_for(KEYS) == [order_id_for(k) for k in KEYS]


def test_one_order_id_equals_the_system_s_own() -> None:
    assert [ids.order_id_for(k) for k in KEYS] == [order_id_for(k) for k in KEYS]


def test_the_order_id_s_shape() -> None:
    """docs/events.md: "ord-" and 24 hex digits of the uuid5."""
    oid = ids.order_id_for("sqabc-00000001")
    assert oid.startswith("ord-") and len(oid) == 4 + 24
    int(oid[4:], 16)
