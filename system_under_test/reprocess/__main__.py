"""`python -m system_under_test.reprocess --from ID --to ID --percent-bp N [--correction-id X]`:
start a ReprocessOrders workflow on the stack of SAGAQUAKE_TEMPORAL_ADDRESS and wait for it.

Corrects every order completed in [--from, --to] of orders:events by --percent-bp basis points
of its amount (refunded, recorded as PriceCorrected and in payments:ledger). The harness's
`sagaquake reprocess` does the same and records the request in the run folder for the verifier.
"""

import argparse
import asyncio
import json
import time
from dataclasses import asdict

from temporalio.client import Client

from system_under_test.config import settings
from system_under_test.reprocess.client import start_reprocess
from system_under_test.reprocess.models import ReprocessInput


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m system_under_test.reprocess")
    parser.add_argument("--from", dest="from_id", default="-", help="first stream id ('-': start)")
    parser.add_argument("--to", dest="to_id", default="+", help="last stream id ('+': the end now)")
    parser.add_argument("--percent-bp", type=int, default=500, help="basis points refunded")
    parser.add_argument("--correction-id", default=f"c{int(time.time())}")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--batches-per-run", type=int, default=20)
    args = parser.parse_args()
    cfg = settings()
    job = ReprocessInput(
        args.correction_id, args.from_id, args.to_id, args.percent_bp, args.batch_size,
        args.batches_per_run,
    )  # fmt: skip

    async def run() -> None:
        client = await Client.connect(cfg.temporal_address, namespace=cfg.temporal_namespace)
        handle = await start_reprocess(client, cfg.task_queue, job)
        print(f"started {handle.id}", flush=True)
        result = await handle.result()
        print(json.dumps(asdict(result), indent=2))

    asyncio.run(run())


main()
