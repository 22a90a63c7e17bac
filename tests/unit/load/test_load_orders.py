"""Orders look like real ones, follow the profile's mix and satisfy the api's rules."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from harness.load.orders import OrderFactory
from harness.load.profile_loader import load_profile

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["daily-50k", "peak-75k", "black-friday", "flat"])
def test_every_order_is_valid_for_the_order_api(name: str) -> None:
    factory = OrderFactory(load_profile(name).order_mix, seed=1)
    for k in range(2000):
        body = factory.order(k).body()
        assert 1 <= len(body["customer_id"]) <= 64
        assert re.fullmatch(r"cus-\d{5,8}", body["customer_id"])
        assert body["currency"] in ("EUR", "USD", "GBP")
        assert 1 <= body["amount_cents"] <= 100_000_000
        assert 1 <= len(body["items"]) <= 20
        skus = [item["sku"] for item in body["items"]]
        assert len(set(skus)) == len(skus)
        for item in body["items"]:
            assert re.fullmatch(r"SKU-\d{4}", item["sku"])
            assert 1 <= int(item["sku"][4:]) <= 200
            assert 1 <= item["qty"] <= 100


def test_the_same_seed_and_number_give_the_same_order() -> None:
    mix = load_profile("daily-50k").order_mix
    assert OrderFactory(mix, 5).order(42) == OrderFactory(mix, 5).order(42)
    assert OrderFactory(mix, 5).order(42) != OrderFactory(mix, 6).order(42)


def test_the_amount_is_the_catalogue_price_times_the_quantities() -> None:
    factory = OrderFactory(load_profile("daily-50k").order_mix, 1)
    order = factory.order(7)
    assert order.amount_cents == sum(
        factory.price_of(int(sku[4:])) * qty for sku, qty in order.items
    )


def test_sku_popularity_is_zipf_like_and_the_mix_follows_the_profile() -> None:
    mix = load_profile("daily-50k").order_mix
    factory = OrderFactory(mix, 1)
    orders = [factory.order(k) for k in range(20_000)]
    counts = Counter(sku for o in orders for sku, _ in o.items)
    ranked = [n for _, n in counts.most_common()]
    assert ranked[0] > 10 * ranked[99]  # a head of best sellers and a long tail
    sizes = Counter(len(o.items) for o in orders)
    assert sizes[1] / len(orders) == pytest.approx(mix.items_per_order[1], abs=0.02)
    currencies = Counter(o.currency for o in orders)
    assert currencies["EUR"] / len(orders) == pytest.approx(0.62, abs=0.02)
    # SKU-0001 sells best; the inventory's scarce skus (the last four) sell least, but do sell
    assert counts.most_common(1)[0][0] == "SKU-0001"
    scarce = [counts[f"SKU-{i:04d}"] for i in range(197, 201)]
    assert all(0 < n < ranked[0] / 50 for n in scarce)
