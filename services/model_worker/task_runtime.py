"""What a task with its own worker run (``Task.custom_run``: several graphs, texts, prompts) gets to work with.

The standard image path (``pipeline``: decode within the budget, pre-process, batch the model's first graph,
decode its outputs with the layout's decoder) is there for the task's image part; ``held`` acquires the
model (loading it if needed) for the graphs and files it holds; ``cpu`` runs blocking work in the worker's
pool, off the event loop. State a task keeps per held model (a tokenizer, a cache) lives in
``HeldModel.extras`` and goes with the model when it is evicted.

A runtime serves one lane: ``for_call(background)`` is the one a call gets. A background call's (a
workflow's CLIP or OCR step) blocking work runs in the background pool, each piece on its turn (see
``services.common.background``), and the pipeline's stages it asks for go in the background lane (pass
``background`` on); an interactive call holds background work back while it holds its model.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
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
        self.background = False  # this runtime serves background calls (see the module)
        self.embeddings: EmbeddingCache[Any] = EmbeddingCache(embedding_cache_bytes)
        manager.on_drop.append(self.embeddings.forget_model)

    def for_call(self, background: bool) -> TaskRuntime:
        """The runtime for a call of that lane (the same embeddings cache, pools and models)."""
        if background == self.background:
            return self
        lane = copy.copy(self)
        lane.background = background
        return lane

    @contextlib.asynccontextmanager
    async def held(self, record: ModelRecord) -> AsyncIterator[tuple[HeldModel, bool]]:
        """The model (loaded if needed) and whether this call loaded it; released on exit."""
        model, cold = await self.manager.acquire(record)
        if cold:
            ModelSeries.of(record.model_id).cold_starts.inc()
        try:
            with self.pipeline.working(self.background):
                yield model, cold
        finally:
            self.manager.release(model)

    async def cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` off the event loop: in the worker's pool, or a background call's on its turn in the
        background pool."""
        await self.pipeline.turn(self.background)
        pool = self.pipeline.pool(True) if self.background else self._cpu
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    @staticmethod
    def clock() -> float:
        return time.perf_counter()
