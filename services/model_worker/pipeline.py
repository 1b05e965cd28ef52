"""One inference, end to end: fetch, decode + pre-process, batch, run, post-process.

CPU stages run in a thread pool; the event loop only schedules. A background request (a workflow's model
step) decodes, pre- and post-processes in the background pool (threads of lowered CPU priority) and joins the
model's background lane (see ``batcher``); it never takes the model's interactive run slots. One that finds the
model with nothing else to do runs alone (holding its lane's slot) at the worker's priority. Each of its stages
(decode, model run, post-processing) first waits for its turn (``Turns``): while an interactive request of
the worker is past its model's acquisition and not yet answered, background work is held back (bounded). The other
way round, an interactive request that runs alone while background work is about (``Turns.background_about``)
runs its model on the model's one-thread session, where it has one (``one_thread_beside_background``): a run
spread over every core stalls at each operator whenever any other thread on the host (the workflows' own
gateway, engine and callers, the worker's loop serving their calls) takes one of the cores. Stage times are
measured here, returned with the result, recorded in the per-model metrics and, when
tracing is on, recorded as spans (afterwards, from the stamps taken in the threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf.message import Message

from services.common import tracing
from services.common.background import NO_TURNS, Turns
from services.common.errors import FleetError
from services.common.model_record import ModelRecord
from services.common.model_spec import InputSpec, ModelSpec
from services.model_worker.batcher import BatchOutput
from services.model_worker.decode_budget import BudgetWait, DecodeBudget, Reservation
from services.model_worker.images import ImageInput, Reserve, to_decoded, to_pixels
from services.model_worker.held_model import HeldModel
from services.model_worker.manager import ModelManager
from services.model_worker.metrics import BACKGROUND_RUNS, STAGE_SECONDS, ModelSeries
from services.model_worker.model_types import model_type
from services.model_worker.processing.decode import ImageLimits
from services.model_worker.processing.params import InferenceParams, ResolvedParams
from services.model_worker.processing.postprocess import postprocess
from services.model_worker.processing.preprocess import Transform, decode_reduction, preprocess
from services.common.url_fetch import UrlFetcher
from services.model_worker.visualize import render


@dataclass
class Timings:
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    queue_s: float = 0.0
    inference_s: float = 0.0
    postprocess_s: float = 0.0
    total_s: float = 0.0
    batch_size: int = 0
    cold_start: bool = False


@dataclass
class InferenceOutput:
    inference_id: str
    record: ModelRecord
    width: int
    height: int
    result: Any  # the task's result (Detections, Classification, a plug-in's)
    message: Message  # the presented result, for InferResponse's result field
    visualization: bytes
    timings: Timings = field(default_factory=Timings)
    pixels: np.ndarray | None = None  # the decoded image (RGB), only when asked to keep it


_Finished = tuple[Any, Message, bytes]  # result, its message, the annotated image


@dataclass(frozen=True)
class _Keep:
    """What ``_prepare`` reads of the parameters: whether the decoded pixels are kept."""

    visualize: bool


_KEEP, _DROP = _Keep(True), _Keep(False)


@dataclass
class _Prepared:
    pixels: np.ndarray | None  # kept only when a visualization is wanted
    tensor: np.ndarray
    transform: Transform
    decode_s: float
    preprocess_s: float
    started: float  # time.perf_counter() when decoding began


def prepare_image(image: ImageInput, spec: InputSpec, limits: ImageLimits, keep_pixels: bool,
                  reserve: Reserve | None = None, reduced_decode: bool = False) -> _Prepared:
    """Decode and pre-process; with ``reduced_decode`` a large JPEG is decoded at a reduced scale
    (never when the pixels are kept for a visualization, which is drawn at full size)."""
    t0 = time.perf_counter()
    shrink = functools.partial(decode_reduction, spec=spec) if reduced_decode and not keep_pixels else None
    decoded = to_decoded(image, limits, reserve, shrink)
    t1 = time.perf_counter()
    tensor, transform = preprocess(decoded.pixels, spec, (decoded.width, decoded.height))
    t2 = time.perf_counter()
    return _Prepared(decoded.pixels if keep_pixels else None, tensor, transform, t1 - t0, t2 - t1, t0)


def run_alone(
    image: ImageInput, spec: ModelSpec, limits: ImageLimits, params: ResolvedParams,
    run: Callable[[np.ndarray], list[np.ndarray]], reserve: Reserve | None = None, reduced_decode: bool = False,
    keep_pixels: bool = False,
) -> tuple[_Prepared, _Finished, float, float]:
    """The whole pipeline for one image in one thread: prepare, run the model, finish."""
    prepared = prepare_image(image, spec.input, limits, params.visualize or keep_pixels, reserve, reduced_decode)
    t0 = time.perf_counter()
    outputs = run(prepared.tensor[None])
    t1 = time.perf_counter()
    finished = _finish([o[0] for o in outputs], spec, prepared, params)
    return prepared, finished, t1 - t0, time.perf_counter() - t1


def _finish(outputs: list[np.ndarray], spec: ModelSpec, prepared: _Prepared, params: ResolvedParams) -> _Finished:
    t = prepared.transform
    result = postprocess(outputs, spec, t, params)
    task = model_type(spec).task
    message = task.present(result, spec, params, t.orig_height, t.orig_width)
    visual = b""
    if params.visualize and prepared.pixels is not None:
        visual = render(prepared.pixels, lambda img: task.draw(img, result, spec))
    return result, message, visual


class Pipeline:
    def __init__(self, manager: ModelManager, cpu_executor: Executor, limits: ImageLimits, urls: UrlFetcher,
                 budget: DecodeBudget, reduced_decode: bool = False, background_cpu: Executor | None = None,
                 turns: Turns = NO_TURNS, idle_cpu: Executor | None = None,
                 one_thread_beside_background: bool = False) -> None:
        self.manager, self.cpu, self.limits, self.urls, self.budget = manager, cpu_executor, limits, urls, budget
        self.reduced_decode = reduced_decode
        self.one_thread_beside_background = one_thread_beside_background
        self.background_cpu = background_cpu or cpu_executor
        self.turns, self.idle_cpu = turns, idle_cpu  # SCHED_IDLE threads for background work beside interactive

    def working(self, background: bool) -> contextlib.AbstractContextManager[None]:
        """Around a request's work once its model is held: an interactive one holds background work back."""
        return contextlib.nullcontext() if background else self.turns.interactive()

    async def turn(self, background: bool) -> None:
        """Before a stage of a request's work: a background one waits for its turn (see the module)."""
        if background:
            await self.turns.turn()

    def pool(self, background: bool) -> Executor:
        """The CPU pool for a request's own work: for work that yields to interactive requests, the background
        one, or the SCHED_IDLE one while interactive requests are about (``Turns.contended``)."""
        if not background:
            return self.cpu
        return self.idle_cpu if self.idle_cpu is not None and self.turns.contended else self.background_cpu

    def _one_thread(self) -> bool:
        """An interactive request alone on its model runs on one thread (the model's one-thread session, where
        it has one) while background work is about (see the module)."""
        return self.one_thread_beside_background and self.turns.background_about

    async def infer(self, record: ModelRecord, image: ImageInput, params: InferenceParams,
                    keep_pixels: bool = False, background: bool = False) -> InferenceOutput:
        """One image; ``keep_pixels``: the output keeps the decoded image (decoded at full size)."""
        started = time.perf_counter()
        resolved = params.resolve(record.spec)
        image = await self._fetched(image)
        series = ModelSeries.of(record.model_id)
        t_acquire = time.perf_counter()
        model, cold = await self.manager.acquire(record)
        t_acquired = time.perf_counter()
        if cold:
            series.cold_starts.inc()
        reservation = self.budget.reservation()
        try:
            with self.working(background):
                batch, prepared, finished, waited, t_post, postprocess_s = await self._one(
                    model, record, image, resolved, reservation, keep_pixels, background, t_acquired, series)
        finally:
            reservation.release()
            self.manager.release(model)
        if tracing.ACTIVE:
            _record_spans(record.model_id, cold, (t_acquire, t_acquired), prepared, waited, batch, t_post,
                          postprocess_s)
        return _output(record, prepared, finished, batch, postprocess_s, started, cold, series, keep_pixels)

    async def _one(self, model: HeldModel, record: ModelRecord, image: ImageInput, resolved: ResolvedParams,
                   reservation: Reservation, keep_pixels: bool, background: bool, t_acquired: float,
                   series: ModelSeries) -> tuple[BatchOutput, _Prepared, _Finished, tuple[float, float], float, float]:
        """``infer``'s work on the held model: alone when it has nothing else to do, else batched."""
        loop = asyncio.get_running_loop()
        alone = None
        await self.turn(background)
        if model.batcher.idle(background):
            # A background request alone on a model with nothing else to do holds its lane's slot, on the
            # lane's session, at the worker's priority: there is no request of this model to yield to (and
            # a model loading beside it must not hold it up), unless interactive requests of other models are
            # about (then on the SCHED_IDLE threads); under load it joins its lane's batches.
            run = model.session.run_background if background or self._one_thread() else model.session.run
            pool = self.idle_cpu if background and self.idle_cpu is not None and self.turns.contended else self.cpu
            try:
                async with model.batcher.exclusive(background):
                    alone = await loop.run_in_executor(pool, run_alone, image, record.spec,
                                                       self.limits, resolved, run, reservation.reserve,
                                                       self.reduced_decode, keep_pixels)
            except BudgetWait as wait:  # nothing decoded yet; wait off the model, then join a batch
                await reservation.wait(wait.pixels)
        if alone is not None:
            if background:
                BACKGROUND_RUNS.inc()
            prepared, finished, infer_s, postprocess_s = alone
            # Alone: the wait is for a CPU thread; decode, pre-process, run and post-process follow at once.
            run_started = prepared.started + prepared.decode_s + prepared.preprocess_s
            batch = BatchOutput([], 1, max(0.0, prepared.started - t_acquired), infer_s, run_started)
            series.batch_size.observe(1)
            t_post, waited = run_started + infer_s, (t_acquired, prepared.started)
        else:
            model.batcher.announce(background)
            keep = _KEEP if keep_pixels else resolved
            prepared = await self._prepare(model, image, record.spec.input, keep, reservation, background)
            batch, finished, t_post, postprocess_s = await self._run(model, prepared, record.spec, resolved,
                                                                     reservation, background)
            waited = (batch.run_started - batch.queue_s, batch.run_started)
        return batch, prepared, finished, waited, t_post, postprocess_s

    async def infer_many(self, record: ModelRecord, images: list[ImageInput], params: InferenceParams,
                         background: bool = False) -> list[InferenceOutput | FleetError]:
        """Several images for one model, answered in order; each image fails alone.

        Every image is prepared first (each reserving its own decode budget), then all are
        submitted together, so the batcher runs them in as few ONNX Runtime runs as the model's
        batch size allows.
        """
        started = time.perf_counter()
        resolved = params.resolve(record.spec)
        fetched = await asyncio.gather(*(self._fetched(i) for i in images), return_exceptions=True)
        series = ModelSeries.of(record.model_id)
        model, cold = await self.manager.acquire(record)
        if cold:
            series.cold_starts.inc()
        reservations = [self.budget.reservation() for _ in fetched]
        try:
            with self.working(background):
                return await self._many(model, record, fetched, reservations, resolved, background, started, cold,
                                        series)
        finally:
            for reservation in reservations:
                reservation.release()
            self.manager.release(model)

    async def _many(self, model: HeldModel, record: ModelRecord, fetched: list[ImageInput | BaseException],
                    reservations: list[Reservation], resolved: ResolvedParams, background: bool, started: float,
                    cold: bool, series: ModelSeries) -> list[InferenceOutput | FleetError]:
        """``infer_many``'s work on the held model."""
        ready = [(i, r) for i, r in zip(fetched, reservations) if isinstance(i, ImageInput)]
        for _ in ready:
            model.batcher.announce(background)
        prepared = iter(await asyncio.gather(
            *(self._prepare(model, i, record.spec.input, resolved, r, background) for i, r in ready),
            return_exceptions=True))
        staged = [next(prepared) if isinstance(i, ImageInput) else i for i in fetched]
        ran = iter(await asyncio.gather(*(self._run(model, p, record.spec, resolved, r, background)
                                          for p, r in zip(staged, reservations) if isinstance(p, _Prepared)),
                                        return_exceptions=True))
        outcomes: list[InferenceOutput | FleetError] = []
        for p in staged:
            outcome = next(ran) if isinstance(p, _Prepared) else p
            if isinstance(outcome, tuple) and isinstance(p, _Prepared):
                batch, finished, _, postprocess_s = outcome
                outcomes.append(_output(record, p, finished, batch, postprocess_s, started, cold, series))
            elif isinstance(outcome, FleetError):
                outcomes.append(outcome)
            else:
                raise outcome  # not a caller's mistake: the whole request fails (INTERNAL)
        return outcomes

    async def encode(self, model: HeldModel, image: ImageInput, spec: InputSpec,
                     keep_pixels: bool = False, background: bool = False) -> tuple[_Prepared, BatchOutput]:
        """An image decoded (within the decode budget), pre-processed and run through the model's first graph,
        batched with other requests: for tasks that go on from its raw outputs (an image encoder); a
        ``background`` one in the background lane (see the module)."""
        image = await self.fetched(image)
        reservation = self.budget.reservation()
        try:
            model.batcher.announce(background)
            prepared = await self._prepare(model, image, spec, _KEEP if keep_pixels else _DROP, reservation,
                                           background)
            if not keep_pixels:
                reservation.release()
            return prepared, await model.batcher.submit(prepared.tensor, background)
        finally:
            reservation.release()

    async def decoded(self, image: ImageInput, background: bool = False) -> tuple[np.ndarray, float]:
        """An image's RGB pixels, decoded in the CPU pool within the decode budget (held until the pixels are
        returned), and the seconds decoding took: for tasks that work on the full image (OCR); a ``background``
        one in the background pool, on its turn."""
        image = await self.fetched(image)
        reservation = self.budget.reservation()
        loop = asyncio.get_running_loop()
        pool = self.pool(background)
        try:
            await self.turn(background)
            started = time.perf_counter()
            try:
                pixels = await loop.run_in_executor(pool, to_pixels, image, self.limits, reservation.reserve)
            except BudgetWait as wait:
                await reservation.wait(wait.pixels)
                pixels = await loop.run_in_executor(pool, to_pixels, image, self.limits, reservation.reserve)
            return pixels, time.perf_counter() - started
        finally:
            reservation.release()

    async def fetched(self, image: ImageInput) -> ImageInput:
        """The image with a URL fetched (encoded bytes), else as it is."""
        return await self._fetched(image)

    async def _fetched(self, image: ImageInput) -> ImageInput:
        return ImageInput(encoded=await self.urls.fetch(image.url)) if image.url is not None else image

    async def _prepare(self, model: HeldModel, image: ImageInput, spec: InputSpec, params: ResolvedParams | _Keep,
                       reservation: Reservation, background: bool = False) -> _Prepared:
        """Decode and pre-process an announced request in the thread pool, within the decode budget
        (waiting on the loop when it is full); the request is withdrawn if that fails."""
        loop = asyncio.get_running_loop()
        pool = self.pool(background)
        try:
            await self.turn(background)
            try:
                return await loop.run_in_executor(pool, prepare_image, image, spec, self.limits,
                                                  params.visualize, reservation.reserve, self.reduced_decode)
            except BudgetWait as wait:
                await reservation.wait(wait.pixels)
                return await loop.run_in_executor(pool, prepare_image, image, spec, self.limits,
                                                  params.visualize, reservation.reserve, self.reduced_decode)
        except BaseException:
            model.batcher.withdraw(background)
            raise

    async def _run(self, model: HeldModel, prepared: _Prepared, spec: ModelSpec, params: ResolvedParams,
                   reservation: Reservation, background: bool = False) -> tuple[BatchOutput, _Finished, float, float]:
        """Share a model run with other requests, then finish in the thread pool:
        (batch, finished, when post-processing started, its seconds)."""
        if prepared.pixels is None:  # the decoded image is gone: only the model-sized tensor remains
            reservation.release()
        batch = await model.batcher.submit(prepared.tensor, background)
        await self.turn(background)
        t_post = time.perf_counter()
        finished = await asyncio.get_running_loop().run_in_executor(self.pool(background), _finish, batch.outputs,
                                                                    spec, prepared, params)
        return batch, finished, t_post, time.perf_counter() - t_post


def _output(record: ModelRecord, prepared: _Prepared, finished: _Finished, batch: BatchOutput,
            postprocess_s: float, started: float, cold: bool, series: ModelSeries,
            keep_pixels: bool = False) -> InferenceOutput:
    result, message, visual = finished
    timings = Timings(
        decode_s=prepared.decode_s, preprocess_s=prepared.preprocess_s, queue_s=batch.queue_s,
        inference_s=batch.infer_s, postprocess_s=postprocess_s, total_s=time.perf_counter() - started,
        batch_size=batch.batch_size, cold_start=cold,
    )
    for stage in ("decode", "preprocess", "queue", "inference", "postprocess"):
        STAGE_SECONDS.labels(stage).observe(getattr(timings, f"{stage}_s"))
    series.queue_seconds.observe(timings.queue_s)
    series.inference_seconds.observe(timings.inference_s)
    t = prepared.transform
    return InferenceOutput(uuid.uuid4().hex, record, t.orig_width, t.orig_height, result, message, visual, timings,
                           prepared.pixels if keep_pixels else None)


def _record_spans(model_id: str, cold: bool, loading: tuple[float, float], prepared: _Prepared,
                  waited: tuple[float, float], batch: BatchOutput, t_post: float, postprocess_s: float) -> None:
    """The request's stages as child spans of the current (server) span."""
    if cold:
        tracing.record_span("model_load", *loading, **{"fleet.model_id": model_id})
    decoded = prepared.started + prepared.decode_s
    tracing.record_span("decode", prepared.started, decoded)
    tracing.record_span("preprocess", decoded, decoded + prepared.preprocess_s)
    tracing.record_span("queue", *waited, **{"fleet.batched": bool(batch.outputs)})
    tracing.record_span("inference", batch.run_started, batch.run_started + batch.infer_s,
                        **{"fleet.model_id": model_id, "fleet.batch_size": batch.batch_size})
    tracing.record_span("postprocess", t_post, t_post + postprocess_s)
