"""Replay orders:events from the first entry into a fresh read model, in batches.

`python -m system_under_test.projection.rebuild [--prefix rebuild:order:] [--compare]`: users
replay last week's events this way; --compare reports every order whose rebuilt view differs
from the live one (exit 1 if any).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import cast

import redis.asyncio as aioredis

from system_under_test.config import settings
from system_under_test.projection.readmodel import ReadModel
from system_under_test.streams import EVENTS_STREAM, StreamEntries, connect

__all__ = ["COMPARED_FIELDS", "compare", "rebuild_into"]

PAGE = 10_000
COMPARED_FIELDS = ("status", "notified", "last_stream_id", "amount_cents", "reason")


async def rebuild_into(client: aioredis.Redis, prefix: str) -> tuple[int, set[str]]:
    """Rebuild under `prefix` (deleting what was there); return (entries replayed, order ids)."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.unlink(key)
    model = ReadModel(client, prefix)
    start, replayed, orders = "-", 0, set[str]()
    while page := cast(StreamEntries, await client.xrange(EVENTS_STREAM, min=start, count=PAGE)):
        await model.apply(page, track=False)
        replayed += len(page)
        orders.update(f.get("order_id", "") for _, f in page)
        start = "(" + page[-1][0]
    return replayed, orders


async def compare(client: aioredis.Redis, prefix: str, orders: set[str]) -> list[str]:
    live, rebuilt = ReadModel(client), ReadModel(client, prefix)
    diffs = []
    for order_id in sorted(orders):
        a, b = await live.get(order_id), await rebuilt.get(order_id)
        for field in COMPARED_FIELDS:
            if a.get(field) != b.get(field):
                diffs.append(f"{order_id}: {field} live={a.get(field)!r} rebuilt={b.get(field)!r}")
    return diffs


async def _main(args: argparse.Namespace) -> int:
    client = connect(settings().redis_url)
    replayed, orders = await rebuild_into(client, args.prefix)
    print(f"replayed {replayed} events of {len(orders)} orders into {args.prefix}*")
    status = 0
    if args.compare:
        diffs = await compare(client, args.prefix, orders)
        print("\n".join(diffs[:50]) or "rebuilt read model equals the live one")
        status = 1 if diffs else 0
    await client.aclose()
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="rebuild:order:")
    parser.add_argument("--compare", action="store_true")
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
