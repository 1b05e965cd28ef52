"""What a task with its own worker run (``Task.custom_run``: several graphs, texts, prompts) gets to work with.

The standard image path (``pipeline``: decode within the budget, pre-process, batch the model's first graph,
decode its outputs with the layout's decoder) is there for the task's image part; ``held`` acquires the
model (loading it if needed) for the graphs and files it holds; ``cpu`` runs blocking work in the worker's
pool, off the event loop. State a task keeps per held model (a tokenizer, a cache) lives in
``HeldModel.extras`` and goes with the model when it is evicted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from services.common.model_record import ModelRecord
from services.model_worker.embedding_cache import EmbeddingCache
from services.model_worker.held_model import HeldModel
from services.model_worker.manager import ModelManager
from services.model_worker.metrics import ModelSeries
from services.model_worker.pipeline import Pipeline

T = TypeVar("T")


class TaskRuntime:
    def __init__(self, pipeline: Pipeline, manager: ModelManager, cpu_executor: Executor,
                 embedding_cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.pipeline, self.manager, self._cpu = pipeline, manager, cpu_executor
        self.embeddings: EmbeddingCache[Any] = EmbeddingCache(embedding_cache_bytes)
        manager.on_drop.append(self.embeddings.forget_model)

    @contextlib.asynccontextmanager
    async def held(self, record: ModelRecord) -> AsyncIterator[tuple[HeldModel, bool]]:
        """The model (loaded if needed) and whether this call loaded it; released on exit."""
        model, cold = await self.manager.acquire(record)
        if cold:
            ModelSeries.of(record.model_id).cold_starts.inc()
        try:
            yield model, cold
        finally:
            self.manager.release(model)

    async def cpu(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn, *args)

    @staticmethod
    def clock() -> float:
        return time.perf_counter()
