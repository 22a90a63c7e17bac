"""Projection cost: CPU ms per order and events/s of the read-model consumer, two code trees side
by side.

Why: the projection was measured at about 10 CPU ms per order (6 events) at the saga's ceiling
(docs/performance.md, figure 1), on two cores that the saga needs. This script times the
projection alone against a real `redis-server` on a free port, so a change to how it batches can
be compared with the code it replaces, in the same run, on the same entries.

The stream is filled with the system's own `EventAppender` (the saga's Lua append, the saga's
event shapes: 95 % of orders completed in 6 events, 5 % declined and cancelled in 5), `--in-flight`
orders interleaved as concurrent sagas interleave them. Two modes:

- **drain** (default): `--orders` (10K, about 60K events) already in the stream; the projection
  starts with a fresh group and read model and is timed until it has applied every entry: the
  backlog after an outage, batches of up to 500.
- **live**: the projection runs first, then the orders are appended at `--rate` orders/s, about
  `--step-ms` between one saga's events, as the saga appends them; timed until the last entry is
  applied: the steady state, where entries arrive a few at a time.

Each measurement is a fresh child process (`--child`) that imports `system_under_test` from one
code tree (`--baseline` DIR, default this tree itself, against this script's own tree), runs
`Projection.run` and reports the CPU time of its process (user + system) and wall time from the
start of `run` until `applied` reaches the stream's length. Baseline and candidate alternate,
median of `--repeat` (3). After each run the read model in Redis (every view, the count sets and
the in-flight set) is hashed: both trees must produce the same one, and it must equal the pure
`model.rebuild` of the stream.

    .venv/bin/python benchmarks/bench_projection.py                      # drain, 10K orders
    .venv/bin/python benchmarks/bench_projection.py --mode live --orders 600 --rate 30
    .venv/bin/python benchmarks/bench_projection.py --quick              # 1K orders, one run each
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
if "--child" not in sys.argv:  # a child imports `system_under_test` from the tree it is given
    sys.path.insert(0, str(ROOT))

__all__ = ["main"]

CONSUMER = "bench-consumer"


# -- the child: one projection run ---------------------------------------------------------------


async def _child(url: str, code: str, events: int) -> dict[str, Any]:
    sys.path.insert(0, code)
    from system_under_test.projection.consumer import Projection, ensure_group
    from system_under_test.streams import connect

    client = connect(url, retries=0)
    await ensure_group(client)
    projection = Projection(client, CONSUMER)
    stop = asyncio.Event()
    result: dict[str, Any] = {"code": str(Path(sys.modules[Projection.__module__].__file__ or ""))}

    async def watch(cpu0: float, wall0: float) -> None:
        while projection.applied < events:
            await asyncio.sleep(0.01)
        result["cpu_s"] = time.process_time() - cpu0
        result["wall_s"] = time.perf_counter() - wall0
        result["applied"] = projection.applied
        stop.set()

    print("ready", flush=True)
    await asyncio.gather(projection.run(stop), watch(time.process_time(), time.perf_counter()))
    await client.aclose()
    return result


# -- the parent: a redis-server, the stream, the runs --------------------------------------------


def _saga_events(i: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One order's events as the saga's activities append them (system_under_test/saga)."""
    items = json.dumps([{"sku": f"sku-{rng.randrange(50):03d}", "qty": rng.randint(1, 3)}])
    amount = rng.randint(500, 50_000)
    placed = {
        "customer_id": f"cust-{rng.randrange(5000)}",
        "amount_cents": amount,
        "currency": "EUR",
        "items": items,
        "idempotency_key": f"idem-{i:08d}",
    }
    if rng.random() < 0.05:
        return [
            ("OrderPlaced", placed),
            ("InventoryReserved", {"items": items}),
            ("PaymentDeclined", {"reason": "card_declined"}),
            ("InventoryReleased", {"items": items}),
            ("OrderCancelled", {"reason": "payment_declined"}),
        ]
    payment = {"payment_id": f"pay-{i:08d}", "amount_cents": amount, "currency": "EUR"}
    return [
        ("OrderPlaced", placed),
        ("InventoryReserved", {"items": items}),
        ("PaymentCaptured", payment),
        ("InventoryCommitted", {"items": items}),
        ("OrderCompleted", {"amount_cents": amount}),
        ("NotificationSent", {"notification_id": f"ntf-{i:08d}"}),
    ]


async def _append_orders(
    url: str, orders: int, in_flight: int, rate: float | None = None, step_ms: float = 0
) -> int:
    """Append `orders` sagas' events, `in_flight` at a time (paced at `rate` orders/s if given,
    about `step_ms` between one saga's events, as its activities take); return how many."""
    from system_under_test.streams import EventAppender, connect

    client = connect(url)
    appender = EventAppender(client)
    rng = random.Random(17)
    plans = [_saga_events(i, rng) for i in range(orders)]
    gate = asyncio.Semaphore(in_flight)
    start = time.perf_counter()

    async def saga(i: int) -> int:
        async with gate:
            for event_type, fields in plans[i]:
                await appender.append(event_type, f"ord-{i:08d}", fields)
                if step_ms:
                    await asyncio.sleep(step_ms / 1000 * rng.uniform(0.5, 1.5))
            return len(plans[i])

    tasks = []
    for i in range(orders):
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(saga(i)))
    appended = sum(await asyncio.gather(*tasks))
    await client.aclose()
    return appended


def _reset(url: str) -> None:
    """A fresh read model and no consumer group; the stream itself stays."""
    import redis

    r = redis.Redis.from_url(url)
    for key in r.scan_iter(match="readmodel:*", count=1000):
        r.unlink(key)
    if r.exists("orders:events"):
        with contextlib.suppress(redis.ResponseError):
            r.xgroup_destroy("orders:events", "projection")
    r.close()


def _read_model_digest(url: str) -> tuple[str, bool]:
    """A hash of the whole read model in Redis, and whether its views equal `model.rebuild`."""
    import redis

    from system_under_test.projection.model import rebuild
    from system_under_test.streams import StreamEntries

    r = redis.Redis.from_url(url, decode_responses=True)
    entries = cast(StreamEntries, r.xrange("orders:events"))
    expected = rebuild(entries)
    views = {}
    for order_id in sorted(expected):
        views[order_id] = r.hgetall(f"readmodel:order:{order_id}")
    sets = {
        name: sorted(r.smembers(f"readmodel:{name}"))
        for name in ("placed", "completed", "cancelled")
    }
    inflight = r.zrange("readmodel:inflight", 0, -1, withscores=True)
    r.close()
    blob = json.dumps([views, sets, inflight], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16], views == expected


def _one_run(
    url: str, code: str, events: int, mode: str, args: argparse.Namespace
) -> dict[str, Any]:
    _reset(url)
    cmd = [sys.executable, __file__, "--child", "--url", url, "--code", code]
    cmd += ["--events", str(events)]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit(f"the projection child did not start:\n{child.communicate()[1][-3000:]}")
    if mode == "live":
        asyncio.run(_append_orders(url, args.orders, args.in_flight, args.rate, args.step_ms))
    out, err = child.communicate(timeout=1800)
    if child.returncode != 0:
        raise SystemExit(f"the projection child failed:\n{err[-3000:]}")
    result = dict(json.loads(out.strip().splitlines()[-1]))
    result["digest"], result["equals_rebuild"] = _read_model_digest(url)
    if mode == "live":  # the stream keeps growing run after run: start the next one empty
        import redis

        redis.Redis.from_url(url).delete("orders:events", *_dedupe_keys(url))
    return result


def _dedupe_keys(url: str) -> list[bytes]:
    import redis

    return list(redis.Redis.from_url(url).scan_iter(match="orders:dedupe:*", count=1000))


def _summary(runs: list[dict[str, Any]], orders: int, events: int) -> dict[str, Any]:
    from benchmarks.common import median

    cpu = median(r["cpu_s"] for r in runs)
    wall = median(r["wall_s"] for r in runs)
    return {
        "cpu_ms_per_order": 1000 * cpu / orders,
        "events_per_s": events / wall,
        "events_per_cpu_s": events / cpu,
        "cpu_s": cpu,
        "wall_s": wall,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if "--child" in (argv if argv is not None else sys.argv):
        parser.add_argument("--child", action="store_true")
        parser.add_argument("--url", required=True)
        parser.add_argument("--code", required=True)
        parser.add_argument("--events", type=int, required=True)
        child_args = parser.parse_args(argv)
        print(json.dumps(asyncio.run(_child(child_args.url, child_args.code, child_args.events))))
        return 0

    from benchmarks import common
    from benchmarks.common import Bench, headline, print_table, start_redis, stop_process

    common.add_common_args(parser)
    parser.add_argument("--mode", choices=("drain", "live"), default="drain")
    parser.add_argument("--orders", type=int, default=None, help="default 10K (drain), 600 (live)")
    parser.add_argument("--rate", type=float, default=30.0, help="live mode: orders/s appended")
    parser.add_argument(
        "--step-ms", type=float, default=40.0, help="live mode: mean time between a saga's events"
    )
    parser.add_argument("--in-flight", type=int, default=100, help="sagas interleaved")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline",
        default=os.environ.get("SAGAQUAKE_BENCH_BASELINE", str(ROOT)),
        help="the code tree to compare with, e.g. a `git worktree add` of the commit before a "
        "change (its system_under_test is imported; default: this tree, against itself)",
    )
    args = parser.parse_args(argv)
    if not (Path(args.baseline) / "system_under_test" / "projection").is_dir():
        parser.error(f"--baseline {args.baseline}: no system_under_test/projection there")
    if args.orders is None:
        args.orders = (1_000 if args.quick else 10_000) if args.mode == "drain" else 600
    repeat = 1 if args.quick else args.repeat
    trees = {"baseline": str(Path(args.baseline).resolve()), "candidate": str(ROOT)}
    bench = Bench(f"projection_{args.mode}", args.quick, args.out)
    bench.settings = {**vars(args), "out": str(args.out), "repeat": repeat, "trees": trees}

    folder = Path(tempfile.mkdtemp(prefix="bench-projection-"))
    proc, url = start_redis(folder)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    try:
        events = 0
        if args.mode == "drain":
            started = time.perf_counter()
            events = asyncio.run(_append_orders(url, args.orders, args.in_flight))
            common.console.print(
                f"filled {events:,} events in {time.perf_counter() - started:.1f} s"
            )
        else:
            rng = random.Random(17)
            events = sum(len(_saga_events(i, rng)) for i in range(args.orders))
        for i in range(repeat):
            for name in ("baseline", "candidate") if i % 2 == 0 else ("candidate", "baseline"):
                bench.quiet(f"{name} run {i + 1}")
                run = _one_run(url, trees[name], events, args.mode, args)
                common.console.print(
                    f"{name} run {i + 1}: {run['cpu_s']:.2f} CPU s, {run['wall_s']:.2f} s wall, "
                    f"read model {run['digest']} (equals rebuild: {run['equals_rebuild']})"
                )
                runs[name].append(run)
    finally:
        stop_process(proc)
        shutil.rmtree(folder, ignore_errors=True)

    results: dict[str, Any] = {name: _summary(r, args.orders, events) for name, r in runs.items()}
    results["events"] = events
    # live runs append new entries (new stream ids) each time: only drain runs share a model
    digests = {run["digest"] for r in runs.values() for run in r}
    results["same_read_model"] = len(digests) == 1 if args.mode == "drain" else None
    results["equals_rebuild"] = all(run["equals_rebuild"] for r in runs.values() for run in r)
    base, cand = results["baseline"], results["candidate"]
    print_table(
        f"projection, {args.mode}: {args.orders:,} orders, {events:,} events, median of {repeat}",
        ["code", "CPU ms / order", "events / s", "events / CPU s"],
        [
            [name, results[name]["cpu_ms_per_order"], results[name]["events_per_s"],
             results[name]["events_per_cpu_s"]]
            for name in trees
        ],
    )  # fmt: skip
    common.console.print(
        f"same read model in every run: {results['same_read_model']}; "
        f"equals model.rebuild: {results['equals_rebuild']}"
    )
    bench.finish(
        results,
        [
            headline(
                f"projection CPU ms / order ({args.mode})",
                cand["cpu_ms_per_order"],
                "ms",
                "baseline tree",
                base["cpu_ms_per_order"],
            ),
            headline(
                f"projection events/s ({args.mode})",
                cand["events_per_s"],
                "events/s",
                "baseline tree",
                base["events_per_s"],
            ),
        ],
        {
            "cpu_ms_per_order": "CPU time (user + system) of the projection's process from the "
            "start of Projection.run until it applied the last entry, / orders",
            "events_per_s": "entries applied / wall time over the same span",
        },
    )
    return 0 if results["same_read_model"] is not False and results["equals_rebuild"] else 1


if __name__ == "__main__":
    sys.exit(main())
