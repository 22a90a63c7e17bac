"""Reprocess helpers for tests that share the session's stack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.client import Client

__all__ = ["adopt_other_requests"]


async def _other_requests(address: str, mine: str) -> list[dict]:
    """Corrections other tests ran on the session stack, as the request lines they recorded
    elsewhere (from each chain's first input)."""
    found = []
    client = await Client.connect(address)
    async for wf in client.list_workflows("WorkflowType='ReprocessOrders'"):
        if wf.id == mine:
            continue
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        if started.continued_execution_run_id:
            continue  # not the first run of its chain
        job = json.loads(started.input.payloads[0].data)
        found.append(
            {"correction_id": job["correction_id"], "workflow_id": wf.id, "from": job["from_id"],
             "to": job["to_id"], "percent_bp": job["percent_bp"]}
        )  # fmt: skip
    return found


def adopt_other_requests(run_dir: Path, temporal_address: str, mine: str) -> list[dict]:
    """Record in `run_dir` the corrections other tests ran on the shared stack: the verifier
    must know every request to not flag their corrections as unrequested."""
    others = asyncio.run(_other_requests(temporal_address, mine))
    path = run_dir / "history" / "reprocess.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.writelines(json.dumps(line) + "\n" for line in others)
    return others
