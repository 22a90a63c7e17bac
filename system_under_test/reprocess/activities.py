"""ReprocessOrders' activities: find the completed orders of a range, correct a batch of them.
Both are safe to retry: the scan reads, and the correction applies at most once per order."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from system_under_test.reprocess.corrections import Corrections
from system_under_test.reprocess.models import BatchResult, CorrectionBatch, ScanInput, ScanResult

__all__ = ["ReprocessActivities"]


class ReprocessActivities:
    def __init__(self, redis: Any) -> None:
        self._corrections = Corrections(redis)

    def all(self) -> list[Any]:
        return [self.stream_end, self.scan_completed, self.correct_prices]

    @activity.defn
    async def stream_end(self) -> str:
        return await self._corrections.stream_end()

    @activity.defn
    async def scan_completed(self, scan: ScanInput) -> ScanResult:
        return await self._corrections.scan(scan)

    @activity.defn
    async def correct_prices(self, batch: CorrectionBatch) -> BatchResult:
        return await self._corrections.correct(batch)
