"""The correction itself, in Redis: one Lua script per order records the refund of the difference
in the payment provider's ledger and the `PriceCorrected` event together, at most once per
(order, correction), and only for an order that completed with a capture.

Why one script: the two records must never disagree (money refunded without its event, or the
reverse), and a retried batch (a worker killed mid-batch, a Redis restart, a lost reply) must
find what the first attempt did. The dedupe field `PriceCorrected:<correction id>` in the
order's `orders:dedupe:{id}` hash is written by the same script, as the saga's appends are.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from system_under_test.ids import payment_id_for
from system_under_test.payment.ledger import CAPTURES_HASH
from system_under_test.reprocess.models import (
    BatchResult,
    CompletedOrder,
    CorrectionBatch,
    ScanInput,
    ScanResult,
    refund_for,
)
from system_under_test.streams import EVENTS_STREAM, PAYMENTS_LEDGER, dedupe_key, now_ms

__all__ = ["CORRECTED", "Corrections", "adjustment_id_for", "marker_for"]

CORRECTED = "PriceCorrected"
_PAGE = 1000  # entries per XRANGE while scanning

# KEYS: orders:events, orders:dedupe:{id}, payments:ledger, payments:captures
# ARGV: dedupe field, order id, correction id, refund cents, payment id, ts, adjustment id
_CORRECT = """
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen then return {seen, 0} end
if not redis.call('HGET', KEYS[2], 'OrderCompleted') then return {'', 2} end
if not redis.call('HGET', KEYS[4], ARGV[5]) then return {'', 3} end
local key = ARGV[2] .. ':correction:' .. ARGV[3]
redis.call('XADD', KEYS[3], '*', 'kind', 'adjustment', 'payment_id', ARGV[5], 'order_id', ARGV[2],
           'amount_cents', ARGV[4], 'correction_id', ARGV[3], 'adjustment_id', ARGV[7],
           'idempotency_key', key, 'ts', ARGV[6])
local id = redis.call('XADD', KEYS[1], '*', 'type', 'PriceCorrected', 'order_id', ARGV[2],
                      'event_id', ARGV[2] .. ':PriceCorrected:' .. ARGV[3], 'ts', ARGV[6],
                      'correction_id', ARGV[3], 'refund_cents', ARGV[4],
                      'payment_id', ARGV[5], 'adjustment_id', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], id)
return {id, 1}
"""


def marker_for(correction_id: str) -> str:
    """The dedupe field of a correction in the order's `orders:dedupe:{id}` hash."""
    return f"{CORRECTED}:{correction_id}"


def adjustment_id_for(order_id: str, correction_id: str) -> str:
    return f"adj-{order_id.removeprefix('ord-')}-{correction_id}"


class Corrections:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._correct = client.register_script(_CORRECT)

    async def stream_end(self) -> str:
        """The id of the last entry of orders:events now ("0-0" when it is empty)."""
        last: Any = await self._client.xrevrange(EVENTS_STREAM, "+", "-", count=1)
        return str(last[0][0]) if last else "0-0"

    async def scan(self, scan: ScanInput) -> ScanResult:
        """The next `batch_size` orders whose OrderCompleted entry lies in [from_id, to_id],
        after `cursor`; `done` once the range is exhausted."""
        start = f"({scan.cursor}" if scan.cursor else scan.from_id
        orders: list[CompletedOrder] = []
        cursor, scanned = scan.cursor, 0
        while len(orders) < scan.batch_size:
            page: Any = await self._client.xrange(EVENTS_STREAM, start, scan.to_id, count=_PAGE)
            for stream_id, fields in page:
                scanned += 1
                cursor = stream_id
                if fields.get("type") == "OrderCompleted":
                    orders.append(
                        CompletedOrder(
                            fields["order_id"], int(fields.get("amount_cents") or 0), stream_id
                        )
                    )
                    if len(orders) >= scan.batch_size:
                        break
            if len(page) < _PAGE and len(orders) < scan.batch_size:
                return ScanResult(orders, cursor, scanned, done=True)
            start = f"({cursor}"
        return ScanResult(orders, cursor, scanned, done=cursor == scan.to_id)

    async def correct(self, batch: CorrectionBatch) -> BatchResult:
        """Apply the correction to every order of the batch (pipelined, one script each)."""
        result = BatchResult()
        todo = []
        for order in batch.orders:
            refund = refund_for(order.amount_cents, batch.percent_bp)
            if refund <= 0:
                result.unaffected += 1
            else:
                todo.append((order, refund))
        if not todo:
            return result
        ts = str(now_ms())
        pipe = self._client.pipeline(transaction=False)
        for order, refund in todo:
            args = [
                marker_for(batch.correction_id),
                order.order_id,
                batch.correction_id,
                str(refund),
                payment_id_for(order.order_id),
                ts,
                adjustment_id_for(order.order_id, batch.correction_id),
            ]
            keys = [EVENTS_STREAM, dedupe_key(order.order_id), PAYMENTS_LEDGER, CAPTURES_HASH]
            await self._correct(keys=keys, args=args, client=pipe)
        answers = await pipe.execute()
        for (_, refund), (_, outcome) in zip(todo, answers, strict=True):
            if int(outcome) == 1:
                result.corrected += 1
                result.refunded_cents += refund
            elif int(outcome) == 0:
                result.already += 1
            else:
                result.refused += 1
        return result
