"""Stock moves as Lua scripts: each move checks and changes every SKU of an order at once and
records itself in inventory:ledger, so stock is conserved: seed = available + reserved + sold."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from system_under_test.streams import INVENTORY_LEDGER, now_ms

__all__ = ["Stock", "merge_items", "parse_catalogue"]

SEED, AVAILABLE, RESERVED, SOLD = (
    "inventory:seed",
    "inventory:available",
    "inventory:reserved",
    "inventory:sold",
)


def _reservation(order_id: str) -> str:
    return f"inventory:reservation:{order_id}"


_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], 0)
  redis.call('HSET', KEYS[4], ARGV[i], 0)
end
return 1
"""

# KEYS: available, reserved, reservation, ledger. ARGV: order_id, items json, ts
_RESERVE = """
local state = redis.call('HGET', KEYS[3], 'state')
if state then return {state, ''} end
local items = cjson.decode(ARGV[2])
for _, it in ipairs(items) do
  local avail = redis.call('HGET', KEYS[1], it.sku)
  if not avail then
    redis.call('XADD', KEYS[4], '*', 'kind', 'reject', 'order_id', ARGV[1], 'items', ARGV[2],
               'reason', 'unknown_sku', 'sku', it.sku, 'ts', ARGV[3])
    return {'rejected', 'unknown_sku', it.sku}
  end
  if tonumber(avail) < it.qty then
    redis.call('XADD', KEYS[4], '*', 'kind', 'reject', 'order_id', ARGV[1], 'items', ARGV[2],
               'reason', 'out_of_stock', 'sku', it.sku, 'ts', ARGV[3])
    return {'rejected', 'out_of_stock', it.sku}
  end
end
for _, it in ipairs(items) do
  redis.call('HINCRBY', KEYS[1], it.sku, -it.qty)
  redis.call('HINCRBY', KEYS[2], it.sku, it.qty)
end
redis.call('HSET', KEYS[3], 'state', 'reserved', 'items', ARGV[2])
redis.call('XADD', KEYS[4], '*', 'kind', 'reserve', 'order_id', ARGV[1], 'items', ARGV[2], 'ts', ARGV[3])
return {'reserved', ''}
"""

# KEYS: reserved, target (sold or available), reservation, ledger. ARGV: order_id, new state, kind, ts
_SETTLE = """
local state = redis.call('HGET', KEYS[3], 'state')
if not state then return {'missing'} end
if state == ARGV[2] then return {state} end
if state ~= 'reserved' then return {'conflict', state} end
local raw = redis.call('HGET', KEYS[3], 'items')
for _, it in ipairs(cjson.decode(raw)) do
  redis.call('HINCRBY', KEYS[1], it.sku, -it.qty)
  redis.call('HINCRBY', KEYS[2], it.sku, it.qty)
end
redis.call('HSET', KEYS[3], 'state', ARGV[2])
redis.call('XADD', KEYS[4], '*', 'kind', ARGV[3], 'order_id', ARGV[1], 'items', raw, 'ts', ARGV[4])
return {ARGV[2]}
"""


def parse_catalogue(spec: str) -> dict[str, int]:
    """The initial stock: a JSON file path ({sku: qty}) or `skus=N,stock=Q,scarce=K,scarce_stock=S`
    (SKU-0001..SKU-N with Q units each, the last K with only S units)."""
    if spec.endswith(".json"):
        data = json.loads(Path(spec).read_text())
        return {str(sku): int(qty) for sku, qty in data.items()}
    opts = {"skus": 200, "stock": 100_000, "scarce": 0, "scarce_stock": 25}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.partition("=")
        if key not in opts:
            raise ValueError(f"unknown catalogue option {key!r} in {spec!r}; use {', '.join(opts)}")
        opts[key] = int(value)
    count = opts["skus"]
    return {
        f"SKU-{n:04d}": opts["scarce_stock"] if n > count - opts["scarce"] else opts["stock"]
        for n in range(1, count + 1)
    }


def merge_items(items: Iterable[Mapping[str, object]]) -> list[dict[str, object]]:
    """One line per SKU, quantities summed, in a stable order (the script checks all before moving any)."""
    totals: dict[str, int] = {}
    for item in items:
        sku = str(item["sku"])
        totals[sku] = totals.get(sku, 0) + int(item["qty"])  # type: ignore[call-overload]
    return [{"sku": sku, "qty": qty} for sku, qty in sorted(totals.items())]


class Stock:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._seed = client.register_script(_SEED)
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    async def seed(self, catalogue: Mapping[str, int]) -> bool:
        """Seed once: a restarted (or second) replica finds the stock already there."""
        args = [x for sku, qty in catalogue.items() for x in (sku, qty)]
        return bool(await self._seed(keys=[SEED, AVAILABLE, RESERVED, SOLD], args=args))

    async def reserve(self, order_id: str, items: list[dict[str, object]]) -> list[str]:
        raw = orjson.dumps(merge_items(items)).decode()
        result = await self._reserve(
            keys=[AVAILABLE, RESERVED, _reservation(order_id), INVENTORY_LEDGER],
            args=[order_id, raw, now_ms()],
        )
        return [str(x) for x in result]

    async def commit(self, order_id: str) -> list[str]:
        return await self._move(order_id, SOLD, "committed", "commit")

    async def release(self, order_id: str) -> list[str]:
        return await self._move(order_id, AVAILABLE, "released", "release")

    async def _move(self, order_id: str, target: str, state: str, kind: str) -> list[str]:
        result = await self._settle(
            keys=[RESERVED, target, _reservation(order_id), INVENTORY_LEDGER],
            args=[order_id, state, kind, now_ms()],
        )
        return [str(x) for x in result]

    async def levels(self) -> dict[str, dict[str, int]]:
        async with self._client.pipeline(transaction=True) as pipe:
            for key in (SEED, AVAILABLE, RESERVED, SOLD):
                pipe.hgetall(key)
            seed, available, reserved, sold = await pipe.execute()
        as_int = lambda h: {k: int(v) for k, v in h.items()}  # noqa: E731
        return {
            "seed": as_int(seed),
            "available": as_int(available),
            "reserved": as_int(reserved),
            "sold": as_int(sold),
        }
