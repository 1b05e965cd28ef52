"""The worker's transport-free facade: what the servicer delegates to."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.cache import FleetCache
from services.common.errors import FleetError, InvalidArgument, ModelNotFound, NotFound
from services.common.grpc_metrics import OK, code_of
from services.common.model_record import ModelRecord
from services.model_worker.images import ImageInput
from services.model_worker.inference_log import InferenceRecorder
from services.model_worker.manager import LoadedModel, ModelManager
from services.model_worker.metrics import ModelSeries
from services.model_worker.pipeline import InferenceOutput, Pipeline
from services.model_worker.processing.params import InferenceParams
from services.model_worker.runtime import available_providers, requested_providers

log = logging.getLogger("fleet.worker")

#: The most images one request may carry (InferBatch).
MAX_IMAGES_PER_REQUEST = 64


class Worker:
    def __init__(self, worker_id: str, address: str, manager: ModelManager, pipeline: Pipeline,
                 recorder: InferenceRecorder | None, cache: FleetCache) -> None:
        self.worker_id, self.address = worker_id, address
        self.manager, self.pipeline, self.recorder, self.cache = manager, pipeline, recorder, cache

    async def infer(self, record: ModelRecord, image: ImageInput, params: InferenceParams) -> InferenceOutput:
        series = ModelSeries.of(record.model_id)
        try:
            out = await self.pipeline.infer(record, image, params)
        except BaseException as exc:
            series.requests(code_of(exc)).inc()
            raise
        series.requests(OK).inc()
        series.request_seconds.observe(out.timings.total_s)
        if self.recorder is not None:
            self.recorder.record(out)
        return out

    async def infer_many(self, record: ModelRecord, images: list[ImageInput | FleetError],
                         params: InferenceParams) -> list[InferenceOutput | FleetError]:
        """Several images in order; an image already known to be unusable keeps its error."""
        if len(images) > MAX_IMAGES_PER_REQUEST:
            raise InvalidArgument(f"a request may carry at most {MAX_IMAGES_PER_REQUEST} images, "
                                  f"got {len(images)}; split it")
        usable = [i for i in images if isinstance(i, ImageInput)]
        done = iter(await self.pipeline.infer_many(record, usable, params) if usable else [])
        outcomes = [next(done) if isinstance(i, ImageInput) else i for i in images]
        series = ModelSeries.of(record.model_id)
        for outcome in outcomes:  # each image counts as one request in the per-model series
            if isinstance(outcome, InferenceOutput):
                series.requests(OK).inc()
                series.request_seconds.observe(outcome.timings.total_s)
                if self.recorder is not None:
                    self.recorder.record(outcome)
            else:
                series.requests(code_of(outcome)).inc()
        return outcomes

    async def load(self, record: ModelRecord, pin: bool = False) -> tuple[LoadedModel, bool]:
        return await self.manager.load(record, pin=pin)

    async def unload(self, model_id: str) -> bool:
        return await self.manager.unload(model_id)

    async def clear(self, workspace: str) -> list[str]:
        return await self.manager.clear(workspace)

    async def preload(self, model_ids: list[str], resolve: Callable[[str], Awaitable[ModelRecord]]) -> None:
        """Load and pin models named by id or alias, resolved by ``resolve`` (the registry)."""
        for model_id in model_ids:
            try:
                record = await resolve(model_id)
            except NotFound:
                raise ModelNotFound(f"preload: model {model_id!r} is not registered") from None
            await self.load(record, pin=True)

    def load_state(self) -> dict[str, Any]:
        models = self.manager.models()
        limits = self.manager.limits
        return {
            "worker_id": self.worker_id,
            "address": self.address,
            "models": [m.model_id for m in models],
            "loaded_models": len(models),
            "max_models": limits.max_models,
            "loaded_bytes": self.manager.total_bytes,
            "capacity_bytes": limits.capacity_bytes,
            "in_flight": sum(m.in_flight for m in models),
            "queued": sum(m.batcher.queued for m in models),
            "execution_providers": requested_providers(self.manager.runtime.execution_provider,
                                                       available_providers()),
            "memory_free_fraction": round(self.manager.free_fraction(), 4),
        }
