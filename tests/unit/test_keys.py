"""The harness writes the system's Redis key names out itself (harness/keys.py, never imported
from the system, so a wrong name in the system is caught, not shared); this test is the one
place that holds the two equal, so a renamed key fails here and not in the middle of a run."""

from __future__ import annotations

import pytest

from harness import keys
from system_under_test import streams
from system_under_test.inventory import stock
from system_under_test.notification import outbox
from system_under_test.projection import consumer, readmodel

pytestmark = pytest.mark.unit


def test_the_streams_and_the_group() -> None:
    assert keys.EVENTS == streams.EVENTS_STREAM
    assert keys.PAYMENTS_LEDGER == streams.PAYMENTS_LEDGER
    assert keys.INVENTORY_LEDGER == streams.INVENTORY_LEDGER
    assert keys.NOTIFICATIONS == streams.NOTIFICATIONS_STREAM
    assert keys.PROJECTION_GROUP == consumer.GROUP


def test_the_read_model_and_the_outbox() -> None:
    assert keys.READMODEL_INFLIGHT == readmodel.INFLIGHT
    assert readmodel.COUNT_SETS["placed"] == keys.READMODEL_PLACED
    assert readmodel.COUNT_SETS["completed"] == keys.READMODEL_COMPLETED
    assert readmodel.COUNT_SETS["cancelled"] == keys.READMODEL_CANCELLED
    assert readmodel.ReadModel(None).key("*") == keys.READMODEL_ORDERS  # type: ignore[arg-type]
    assert keys.NOTIFICATIONS_INDEX == outbox.INDEX_HASH
    assert keys.NOTIFICATIONS_LIVE_SEEN == outbox.LIVE_SEEN_SET


def test_the_order_dedupe_and_the_stock() -> None:
    assert keys.dedupe("ord-1") == streams.dedupe_key("ord-1")
    assert [keys.INVENTORY_HASH.format(n) for n in ("seed", "available", "reserved", "sold")] == [
        stock.SEED,
        stock.AVAILABLE,
        stock.RESERVED,
        stock.SOLD,
    ]
