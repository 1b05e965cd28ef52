"""The worker's transport-free facade: what the servicer delegates to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.cache import FleetCache
from services.common.errors import FleetError, InvalidArgument, InvalidImage, ModelNotFound, NotFound
from services.common.grpc_metrics import OK, code_of
from services.common.model_record import ModelRecord
from services.model_worker.crops import CropPlan, CropsOutput, run_plan
from services.model_worker.images import ImageInput
from services.model_worker.inputs import Inputs
from services.model_worker.model_types import model_type
from services.model_worker.task_runtime import TaskRuntime
from services.model_worker.inference_log import InferenceRecorder
from services.model_worker.held_model import HeldModel
from services.model_worker.manager import ModelManager
from services.model_worker.metrics import ModelSeries
from services.model_worker.pipeline import InferenceOutput, Pipeline
from services.model_worker.metrics import DRAINING
from services.model_worker.processing.params import InferenceParams
from services.model_worker.state import StatePublisher

log = logging.getLogger("fleet.worker")

#: The most images one request may carry (InferBatch).
MAX_IMAGES_PER_REQUEST = 64


class Worker:
    def __init__(self, worker_id: str, address: str, manager: ModelManager, pipeline: Pipeline,
                 recorder: InferenceRecorder | None, cache: FleetCache, heartbeat_interval_s: float = 2.0,
                 load_window_s: float = 10.0, release_window_s: float = 60.0,
                 runtime: TaskRuntime | None = None) -> None:
        self.worker_id = worker_id
        self.manager, self.pipeline, self.recorder, self.cache = manager, pipeline, recorder, cache
        self.runtime = runtime or TaskRuntime(pipeline, manager, pipeline.cpu)
        self.state = StatePublisher(worker_id, manager, heartbeat_interval_s, address,
                                    load_window_s=load_window_s, release_window_s=release_window_s)

    @property
    def address(self) -> str:
        return self.state.address

    @address.setter
    def address(self, value: str) -> None:
        self.state.address = value

    @property
    def draining(self) -> bool:
        return self.state.draining

    def holds(self, record: ModelRecord) -> bool:
        return self.manager.holds(record)

    async def infer(self, record: ModelRecord, inputs: Inputs | ImageInput, params: InferenceParams,
                    keep_pixels: bool = False, background: bool = False) -> InferenceOutput:
        """One request: the image (and the other inputs its model declares, already validated); ``keep_pixels``:
        the output keeps the decoded image (a crop plan cuts from it). ``background``: work done for a caller
        that is not waiting on this call alone (a workflow's step), which yields to interactive requests (see
        ``batcher``; a task with its own run gets the background lane's runtime: ``TaskRuntime.for_call``)."""
        series = ModelSeries.of(record.model_id)
        try:
            task = model_type(record.spec).task
            if task.custom_run:
                out = await task.run(self.runtime.for_call(background), record, inputs, params)
            else:
                image = inputs.image if isinstance(inputs, Inputs) else inputs
                if image is None:
                    raise InvalidImage("the request carries no image: set image.encoded, image.url or image.raw")
                out = await self.pipeline.infer(record, image, params, keep_pixels, background)
        except BaseException as exc:
            series.requests(code_of(exc)).inc()
            raise
        series.requests(OK).inc()
        series.request_seconds.observe(out.timings.total_s)
        if self.recorder is not None:
            self.recorder.record(out)
        return out

    async def infer_many(self, record: ModelRecord, images: list[ImageInput | FleetError],
                         params: InferenceParams, background: bool = False) -> list[InferenceOutput | FleetError]:
        """Several images in order; an image already known to be unusable keeps its error."""
        if len(images) > MAX_IMAGES_PER_REQUEST:
            raise InvalidArgument(f"a request may carry at most {MAX_IMAGES_PER_REQUEST} images, "
                                  f"got {len(images)}; split it")
        usable = [i for i in images if isinstance(i, ImageInput)]
        done = iter(await self.pipeline.infer_many(record, usable, params, background) if usable else [])
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

    async def infer_crops(self, plan: CropPlan) -> CropsOutput:
        """Detect, crop and classify one image here (``crops.run_plan``); each model's requests count as usual."""
        return await run_plan(self, plan)

    async def load(self, record: ModelRecord, pin: bool = False) -> tuple[HeldModel, bool]:
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

    def in_flight(self) -> int:
        return sum(m.in_flight for m in self.manager.models())

    async def drain(self, publish: Callable[[], Awaitable[None]], notice_s: float) -> None:
        """Announce that this worker is going away, then keep serving for ``notice_s`` while gateways
        (reading heartbeats) move their traffic elsewhere. The server then stops taking calls and
        lets those in flight finish."""
        self.state.draining = True
        DRAINING.set(1)
        await publish()
        log.info("draining: announced; serving what arrives for %.1fs", notice_s,
                 extra={"in_flight": self.in_flight(), "notice_s": notice_s})
        served_before = self._served()
        await asyncio.sleep(notice_s)
        log.info("draining: notice over; finishing the requests in flight",
                 extra={"in_flight": self.in_flight(), "arrived_while_draining": self._served() - served_before})

    def _served(self) -> int:
        return sum(m.request_count + m.in_flight for m in self.manager.models())
