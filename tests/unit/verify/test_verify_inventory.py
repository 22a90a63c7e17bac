"""inventory_conservation on crafted histories."""

from __future__ import annotations

import pytest

from harness.verify.inventory import inventory_conservation
from tests.unit.verify.builders import INVENTORY, HistoryBuilder, example

pytestmark = pytest.mark.unit


def _run() -> HistoryBuilder:
    b = HistoryBuilder()
    b.completed(items=[{"sku": "SKU-0001", "qty": 2}, {"sku": "SKU-0002", "qty": 1}])
    b.declined(items=[{"sku": "SKU-0002", "qty": 3}])
    b.refunded(items=[{"sku": "SKU-0001", "qty": 1}])
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 5}])
    return b


def test_stock_is_conserved() -> None:
    b = _run()
    b.in_flight(upto="InventoryReserved", items=[{"sku": "SKU-0002", "qty": 4}])
    result = inventory_conservation(b.history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["skus"] == 3
    assert result.counts["orders_holding_stock"] == 1


def test_seed_must_equal_available_reserved_and_sold() -> None:
    b = _run()
    b.stock["available"]["SKU-0001"] += 1
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    item = example(result, "SKU-0001", key="sku")
    assert item["why"] == "seed 100 != available 98 + reserved 0 + sold 2 (= 100)".replace(
        "98", str(b.stock["available"]["SKU-0001"])
    ).replace("(= 100)", f"(= {b.stock['available']['SKU-0001'] + 2})")
    assert item["seed"] == 100
    assert item["sold"] == 2


def test_no_quantity_is_negative() -> None:
    b = _run()
    b.stock["available"]["SKU-0002"] = -1
    b.stock["seed"]["SKU-0002"] = b.stock["sold"]["SKU-0002"] - 1
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    assert example(result, "SKU-0002", key="sku")["why"] == "available is negative: -1"


def test_a_reservation_left_behind_after_the_drain() -> None:
    b = _run()
    leaky = b.new_order(items=[{"sku": "SKU-0002", "qty": 2}])
    b.request(leaky)
    b.steps(leaky, "OrderPlaced", "InventoryReserved")
    b.step(leaky, "OrderCancelled", reason="Timeout")
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    assert example(result, "SKU-0002", key="sku")["why"] == (
        "reserved 2, but no order in flight holds any"
    )


def test_sold_must_be_what_completed_orders_bought() -> None:
    b = _run()
    b.stock["sold"]["SKU-0001"] -= 1
    b.stock["available"]["SKU-0001"] += 1
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    item = example(result, "SKU-0001", key="sku")
    assert item["why"] == "sold 1, but completed orders bought 2"
    assert item["expected_sold"] == 2


def test_the_ledger_must_replay_to_the_final_state() -> None:
    b = _run()
    b.drop(INVENTORY, lambda f: f["kind"] == "commit")
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    assert example(result, "SKU-0001", key="sku")["why"] == (
        "replaying inventory:ledger gives reserved 2, the final state says 0"
    )


def test_a_second_reserve_in_the_ledger_names_its_order() -> None:
    b = HistoryBuilder()
    order = b.declined(items=[{"sku": "SKU-0001", "qty": 1}])
    b.entry(INVENTORY, kind="reserve", order_id=order.order_id, items=order.items_json)
    result = inventory_conservation(b.history())
    assert result.status == "fail"
    item = example(result, order.order_id)
    assert item["why"] == "reserved 2 times in inventory:ledger"
    assert [e["fields"]["kind"] for e in item["inventory"]] == ["reserve", "release", "reserve"]


def test_without_the_inventory_ledger_the_replay_is_unknown() -> None:
    b = _run()
    result = inventory_conservation(b.history(omit=("inventory:ledger",)))
    assert result.status == "unknown"
    assert "inventory.ledger.jsonl is missing: the ledger replay was not checked" in result.error


def test_without_inventory_json_conservation_is_unknown() -> None:
    result = inventory_conservation(_run().history(omit=("inventory",)))
    assert result.status == "unknown"
    assert result.error == "history/inventory.json is missing"
