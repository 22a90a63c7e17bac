"""The payment provider's ledger: each charge or refund is decided and recorded in one Lua
script, so a process killed mid-request or a Redis that refuses writes never half-records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from system_under_test.ids import payment_id_for, refund_id_for
from system_under_test.streams import PAYMENTS_LEDGER, now_ms

__all__ = ["PaymentLedger", "declines"]

IDEMPOTENCY_HASH = "payments:idem"
CAPTURES_HASH = "payments:captures"

_CHARGE = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then return prev end
local kind = 'capture'
if ARGV[6] == '1' then kind = 'decline' end
local fields = {'kind', kind, 'payment_id', ARGV[7], 'order_id', ARGV[2], 'customer_id', ARGV[3],
                'amount_cents', ARGV[4], 'currency', ARGV[5], 'idempotency_key', ARGV[1], 'ts', ARGV[8]}
local result
if kind == 'decline' then
  table.insert(fields, 'reason'); table.insert(fields, ARGV[9])
  result = cjson.encode({status='declined', reason=ARGV[9], payment_id=ARGV[7]})
else
  redis.call('HSET', KEYS[3], ARGV[7], ARGV[4])
  result = cjson.encode({status='captured', payment_id=ARGV[7]})
end
redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('HSET', KEYS[1], ARGV[1], result)
return result
"""

_REFUND = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then return prev end
local captured = redis.call('HGET', KEYS[3], ARGV[3])
if not captured then return cjson.encode({status='not_found'}) end
redis.call('XADD', KEYS[2], '*', 'kind', 'refund', 'payment_id', ARGV[3], 'refund_id', ARGV[4],
           'order_id', ARGV[2], 'amount_cents', captured, 'idempotency_key', ARGV[1], 'ts', ARGV[5])
local result = cjson.encode({status='refunded', refund_id=ARGV[4], amount_cents=tonumber(captured)})
redis.call('HSET', KEYS[1], ARGV[1], result)
return result
"""


def declines(order_id: str, rate: float) -> bool:
    """Whether the card of this order is declined: a stable draw, so every retry agrees."""
    draw = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:8], "big") / 2**64
    return draw < rate


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    order_id: str
    customer_id: str
    amount_cents: int
    currency: str


class PaymentLedger:
    def __init__(self, client: aioredis.Redis, decline_rate: float) -> None:
        self._client = client
        self._decline_rate = decline_rate
        self._charge = client.register_script(_CHARGE)
        self._refund = client.register_script(_REFUND)

    async def charge(self, req: ChargeRequest) -> dict[str, object]:
        declined = declines(req.order_id, self._decline_rate)
        raw = await self._charge(
            keys=[IDEMPOTENCY_HASH, PAYMENTS_LEDGER, CAPTURES_HASH],
            args=[
                req.idempotency_key,
                req.order_id,
                req.customer_id,
                req.amount_cents,
                req.currency,
                "1" if declined else "0",
                payment_id_for(req.order_id),
                now_ms(),
                "card_declined",
            ],
        )
        return dict(orjson.loads(raw))

    async def refund(
        self, idempotency_key: str, order_id: str, payment_id: str
    ) -> dict[str, object]:
        raw = await self._refund(
            keys=[IDEMPOTENCY_HASH, PAYMENTS_LEDGER, CAPTURES_HASH],
            args=[idempotency_key, order_id, payment_id, refund_id_for(order_id), now_ms()],
        )
        return dict(orjson.loads(raw))
