"""Start a reprocess (the one way in, for `python -m system_under_test.reprocess` and the harness):
one ReprocessOrders workflow per correction id, refused if that correction ever ran."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from system_under_test.reprocess.models import (
    WORKFLOW_TYPE,
    ReprocessInput,
    ReprocessResult,
    workflow_id_for,
)

__all__ = ["start_reprocess"]


async def start_reprocess(
    client: Client, task_queue: str, job: ReprocessInput
) -> WorkflowHandle[Any, ReprocessResult]:
    """Start the correction's workflow (WorkflowAlreadyStartedError if it ever ran)."""
    return await client.start_workflow(
        WORKFLOW_TYPE,
        job,
        id=workflow_id_for(job.correction_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        result_type=ReprocessResult,
    )
