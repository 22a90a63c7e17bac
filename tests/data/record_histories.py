"""Record OrderSaga histories from a real stack, for the Replayer test.

Run it when the workflow changes *on purpose* (a versioned change): it brings a stack up on
free ports, drives one order down each path of the saga, and writes tests/data/histories/*.json.
The Replayer test then fails any later change that would break these recorded workflows.

    .venv/bin/python -m tests.data.record_histories
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from temporalio.client import Client

from harness.platforms.local import LocalPlatform
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
    finally:
        platform.down()


if __name__ == "__main__":
    main()
