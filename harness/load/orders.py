"""Realistic order bodies from a profile's order mix, the same for a given seed and arrival number.

Arrival `k` of a run always gets the same customer, items and amount for the same seed, whichever
Locust process sends it, so a run can be replayed and its orders compared.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass

from harness.load.profiles import OrderMix

__all__ = ["Order", "OrderFactory", "sku_id"]


def sku_id(index: int) -> str:
    """The inventory-service's id of catalogue entry `index` (1-based): SKU-0001 …"""
    return f"SKU-{index:04d}"


@dataclass(frozen=True)
class Order:
    customer_id: str
    currency: str
    amount_cents: int
    items: tuple[tuple[str, int], ...]  # (sku, qty), distinct skus

    def body(self) -> dict:
        """The JSON body of POST /orders (docs/api.md)."""
        return {
            "customer_id": self.customer_id,
            "currency": self.currency,
            "amount_cents": self.amount_cents,
            "items": [{"sku": sku, "qty": qty} for sku, qty in self.items],
        }


class _Choice:
    """Weighted choice by bisecting a cumulative table (fast for hundreds of options)."""

    def __init__(self, options: list, weights: list[float]) -> None:
        self.options = options
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        i = bisect.bisect_right(self.cum, rng.random() * self.total)
        return self.options[min(i, len(self.options) - 1)]


class OrderFactory:
    """Builds order `k` of a run from the mix and the run's seed."""

    def __init__(self, mix: OrderMix, seed: int) -> None:
        self.mix = mix
        self.seed = seed
        skus = list(range(1, mix.sku_count + 1))
        if mix.rank_seed is not None:  # which sku is the best seller: stable across runs
            random.Random(mix.rank_seed).shuffle(skus)
        ranks = [1.0 / (rank**mix.zipf_s) for rank in range(1, mix.sku_count + 1)]
        self._sku = _Choice(skus, ranks)
        self._items = _Choice(list(mix.items_per_order), list(mix.items_per_order.values()))
        self._qty = _Choice(list(mix.qty_per_item), list(mix.qty_per_item.values()))
        self._currency = _Choice(list(mix.currencies), list(mix.currencies.values()))
        lo, hi = math.log(mix.unit_price_min_cents), math.log(mix.unit_price_max_cents)
        # a catalogue price per sku, log-uniform (many cheap items, few expensive ones)
        self._price = {
            i: round(math.exp(lo + (hi - lo) * random.Random(f"price:{i}").random()))
            for i in range(1, mix.sku_count + 1)
        }
        self._width = max(5, len(str(mix.customers)))

    def price_of(self, sku_index: int) -> int:
        return self._price[sku_index]

    def order(self, k: int) -> Order:
        rng = random.Random(f"{self.seed}:{k}")
        n_items = self._items.pick(rng)
        chosen: list[int] = []
        while len(chosen) < n_items:
            sku = self._sku.pick(rng)
            if sku not in chosen:
                chosen.append(sku)
        items = tuple((sku_id(s), self._qty.pick(rng)) for s in chosen)
        amount = sum(self._price[s] * qty for s, (_, qty) in zip(chosen, items, strict=True))
        customer = f"cus-{rng.randint(1, self.mix.customers):0{self._width}d}"
        return Order(customer, self._currency.pick(rng), amount, items)
