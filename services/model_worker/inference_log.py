"""Records each inference in Redis off the request path; Redis trouble never fails a request."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from services.cache import FleetCache
from services.common.context import current_request_id
from services.common.errors import CacheUnavailable
from services.common.periodic import Periodic
from services.model_worker.metrics import INFERENCE_LOG_FAILURES
from services.model_worker.model_types import model_type
from services.model_worker.pipeline import InferenceOutput

log = logging.getLogger("fleet.worker.inference_log")


def summarize(out: InferenceOutput, request_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "inference_id": out.inference_id,
        "request_id": request_id,
        "task": out.record.spec.task_type,
        "image": [out.width, out.height],
        "worker_ms": round(out.timings.total_s * 1e3, 3),
        "batch_size": out.timings.batch_size,
    }
    entry.update(model_type(out.record.spec).task.summarize(out.result, out.record.spec))
    return entry


class InferenceRecorder:
    """A bounded queue drained by one background task in batches."""

    def __init__(self, cache: FleetCache, worker_id: str, expiry_s: int, max_pending: int = 10_000,
                 flush_interval_s: float = 0.25) -> None:
        self.cache, self.worker_id, self.expiry_s = cache, worker_id, expiry_s
        self._queue: asyncio.Queue[tuple[str, float, dict[str, Any]]] = asyncio.Queue(max_pending)
        self._periodic = Periodic("inference-log", flush_interval_s, self._flush)

    def record(self, out: InferenceOutput) -> None:
        try:
            self._queue.put_nowait((out.record.model_id, time.time(), summarize(out, current_request_id())))
        except asyncio.QueueFull:
            INFERENCE_LOG_FAILURES.inc()

    def start(self) -> None:
        self._periodic.start()

    async def _flush(self) -> None:
        batch = []
        while not self._queue.empty() and len(batch) < 500:
            batch.append(self._queue.get_nowait())
        if not batch:
            return
        try:
            await self.cache.inference_log.record_many(self.worker_id, batch, self.expiry_s)
        except CacheUnavailable:
            INFERENCE_LOG_FAILURES.inc(len(batch))
            log.warning("inference log lost entries: Redis unavailable", extra={"entries": len(batch)})

    async def stop(self) -> None:
        await self._periodic.stop()
        await self._flush()
