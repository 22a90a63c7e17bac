"""Record OrderSaga histories from a real stack, for the Replayer test.

Run it when the workflow changes *on purpose* (a versioned change): it brings a stack up on
free ports, drives one order down each path of the saga on version 1, one through a payment
outage (waited_for_payment: its charge waits as a regular activity), one on version 2 (the
workers deployed with SAGAQUAKE_SAGA_VERSION=2), and a ReprocessOrders correction of those
orders that continues as new, and writes tests/data/histories/*.json (reprocess_<n>.json: the
runs of that chain). The Replayer test then fails any later change that would break these
recorded workflows. Keep the histories of versions that still run in production: the four
version 1 paths and completed_v2 were recorded before the STEPS_WAIT_AS_ACTIVITIES patch
existed, as the sagas in flight at its deploy ran (restore them with git after a run, so the
test keeps replaying what the old code wrote).

    .venv/bin/python -m tests.data.record_histories
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

from harness.platforms.local import LocalPlatform
from harness.reprocess import request_reprocess, wait_reprocess
from harness.settings import LocalOptions, LocalPorts
from tests.integration.orders import (
    key_where,
    lose_reservation_after_capture,
    order_body,
    place,
    wait_terminal,
)

OUT = Path(__file__).parent / "histories"


async def _save(address: str, name: str, order_id: str) -> None:
    client = await Client.connect(address)
    history = await client.get_workflow_handle(order_id).fetch_history()
    (OUT / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}: {order_id}")


async def _save_chain(address: str, workflow_id: str) -> None:
    client = await Client.connect(address)
    runs = [wf async for wf in client.list_workflows(f"WorkflowId='{workflow_id}'")]
    runs.sort(key=lambda wf: wf.start_time)
    for n, wf in enumerate(runs):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        (OUT / f"reprocess_{n}.json").write_text(history.to_json())
        print(f"recorded reprocess_{n}: {wf.id} {wf.run_id} {wf.status}")


def _waited_for_payment(platform) -> str:  # type: ignore[no-untyped-def]
    """An order placed while payment is down: its charge is handed to the server as a regular
    activity (the saga's STEPS_WAIT_AS_ACTIVITIES patch) and completes when payment is back."""
    e = platform.endpoints()
    platform.stop("payment-service")
    try:
        order_id = str(place(e, order_body("SKU-0043"), key_where(False)).json()["order_id"])
        time.sleep(10)  # the local attempts give up after about 1.5 s; a few server retries
    finally:
        platform.start("payment-service")
    wait_terminal(e, order_id, 90)
    return order_id


def main() -> None:
    platform = LocalPlatform(
        Path(tempfile.mkdtemp(prefix="record-")), LocalPorts.free(), LocalOptions()
    )
    platform.up()
    try:
        e = platform.endpoints()
        orders = {
            "completed": place(e, order_body("SKU-0040", 2), key_where(False)).json()["order_id"],
            "payment_declined": place(e, order_body("SKU-0041"), key_where(True)).json()[
                "order_id"
            ],
            "out_of_stock": place(e, order_body("SKU-0199", 99)).json()["order_id"],
            "refunded": lose_reservation_after_capture(platform),
        }
        for name, order_id in orders.items():
            wait_terminal(e, order_id, 90)
            asyncio.run(_save(e.temporal_address, name, order_id))
        waited = _waited_for_payment(platform)
        asyncio.run(_save(e.temporal_address, "waited_for_payment", waited))
        platform.deploy("saga-worker", {"SAGAQUAKE_SAGA_VERSION": "2"})
        v2 = place(e, order_body("SKU-0042", 1), key_where(False)).json()["order_id"]
        wait_terminal(e, v2, 90)
        asyncio.run(_save(e.temporal_address, "completed_v2", v2))
        request = request_reprocess(
            e, platform.run_dir, correction_id="recorded", percent_bp=500, batch_size=1,
            batches_per_run=2,
        )  # fmt: skip
        wait_reprocess(e, request.workflow_id, 120)
        asyncio.run(_save_chain(e.temporal_address, request.workflow_id))
    finally:
        platform.down()


if __name__ == "__main__":
    main()
