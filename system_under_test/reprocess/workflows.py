"""ReprocessOrders: walk a range of orders:events in batches and correct every completed order
found there, continuing as new before the history grows long.

Each batch is two local activities (scan, correct), as the saga's steps are: short calls whose
results are recorded as markers. A run continues as new after `batches_per_run` batches, or
earlier when Temporal suggests it (`workflow.info().is_continue_as_new_suggested()`), carrying
the cursor and the totals; the chain of runs ends with the range. A worker killed mid-batch
leaves the batch to be redone by another worker: the correction applies at most once per order.
Deterministic by construction, unsandboxed like the saga (system_under_test/saga/workflows.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from system_under_test.reprocess.activities import ReprocessActivities
    from system_under_test.reprocess.models import (
        BatchResult,
        CorrectionBatch,
        ReprocessInput,
        ReprocessResult,
        ScanInput,
        ScanResult,
    )

__all__ = ["ReprocessOrders"]

RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # until Redis is back
)
STEP_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name="ReprocessOrders", sandboxed=False)
class ReprocessOrders:
    async def _step(self, activity: Any, *args: Any) -> Any:
        return await workflow.execute_local_activity_method(
            activity, *args, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
        )

    @workflow.run
    async def run(self, job: ReprocessInput) -> ReprocessResult:
        if job.to_id in ("", "+"):  # the end of the range: where the stream ends now
            job.to_id = await self._step(ReprocessActivities.stream_end)
        totals = job.totals
        batches = 0
        while True:
            scan: ScanResult = await self._step(
                ReprocessActivities.scan_completed,
                ScanInput(job.from_id, job.to_id, job.cursor, job.batch_size),
            )
            if scan.orders:
                done: BatchResult = await self._step(
                    ReprocessActivities.correct_prices,
                    CorrectionBatch(job.correction_id, job.percent_bp, scan.orders),
                )
                totals.corrected += done.corrected
                totals.already += done.already
                totals.unaffected += done.unaffected
                totals.refused += done.refused
                totals.refunded_cents += done.refunded_cents
            totals.scanned += scan.scanned
            totals.completed += len(scan.orders)
            totals.batches += 1
            job.cursor = scan.cursor
            batches += 1
            if scan.done:
                return ReprocessResult(job.correction_id, job.from_id, job.to_id, totals)
            if batches >= job.batches_per_run or workflow.info().is_continue_as_new_suggested():
                totals.runs += 1
                workflow.continue_as_new(job)
