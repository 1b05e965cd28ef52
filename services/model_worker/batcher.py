"""Dynamic batching for one model: concurrent requests share one ONNX Runtime run.

A request is *announced* when it starts decoding and *submitted* once its tensor is
ready. The batching loop takes what is queued and, only while announced requests are
still on their way, waits up to ``max_delay_s`` for them to fill the batch. Under load
the next batch forms while the current one runs. Errors reach every waiter of the
failed batch.

At most ``concurrent_runs`` runs of the model happen at once (the *slots*; like Triton's
instance count: on CPUs where bigger batches gain little, overlapping runs keep the
cores busier than one). When the model is idle (no run, nothing queued or announced)
a request may take a slot itself and run decode, model and post-processing in one thread
hop (``exclusive``): at low load that skips the queue and two hand-offs; requests
arriving meanwhile queue up and form the next batch, which ``run_batch`` runs (on CPUs,
a session with one intra-op thread per run; see ``runtime``).

Background requests (``background=True``: a workflow's model steps) have a lane of their own
(``Background``): their own queue (bounded by its ``max_queue``), batches of background requests only,
at most ``runs`` of them at once on the lane's executor (threads of lowered CPU priority), apart from
the interactive slots. So an interactive request never queues behind background ones, background work
never takes an interactive slot, and a model busy only with background work still counts as idle for an
interactive request (which then runs alone, with every intra-op thread). A background batch also waits for
its turn (``Background.turns``, see ``services.common.background``): it starts only while no interactive
request is in flight in the worker, or once it has been held back ``max_hold_s``, and while interactive
requests are about it runs on SCHED_IDLE threads (``idle_executor``), so on a few cores it does not hold up
an interactive run that wants every core. Without a ``Background`` the background requests
share the one lane (first in, first served).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from services.common.background import NO_TURNS, Turns
from services.common.cancelling import cancel_all
from services.common.errors import ResourceExhausted, Unavailable
from prometheus_client import Gauge

from services.model_worker.metrics import (
    BACKGROUND_RUNS,
    BACKGROUND_QUEUE_DEPTH,
    BACKGROUND_REJECTED,
    CANCELLED,
    ModelSeries,
)

log = logging.getLogger("fleet.worker.batcher")


@dataclass
class BatchOutput:
    outputs: list[np.ndarray]  # this request's slice of each output (batch dimension removed)
    batch_size: int
    queue_s: float
    infer_s: float
    run_started: float = 0.0  # time.perf_counter() when the run began (for trace spans)


@dataclass
class _Item:
    tensor: np.ndarray
    future: asyncio.Future[BatchOutput]
    enqueued: float


@dataclass(frozen=True)
class Background:
    """Where and how much background work a model's batcher runs (see the module)."""

    executor: Executor  # threads of lowered CPU priority
    runs: int = 1  # background runs of the model at once
    max_queue: int = 64  # background requests queued per model before RESOURCE_EXHAUSTED
    run: Callable[[np.ndarray], list[np.ndarray]] | None = None  # how a background batch runs (None: as others)
    turns: Turns = NO_TURNS  # a batch starts on its turn: when no interactive request is in flight (bounded)
    idle_executor: Executor | None = None  # SCHED_IDLE threads: where a batch runs while ``turns.contended``


def _stacked_run(run: Callable[[np.ndarray], list[np.ndarray]], tensors: list[np.ndarray]) -> list[np.ndarray]:
    return run(tensors[0][None] if len(tensors) == 1 else np.stack(tensors))


def _fail(items: list[_Item], exc: BaseException) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(exc)


class _Lane:
    """One queue of requests and the runs that serve it."""

    def __init__(self, run: Callable[[np.ndarray], list[np.ndarray]], executor: Executor, runs: int, max_queue: int,
                 depth: Gauge, background: bool) -> None:
        self.run, self.executor, self.max_queue, self.depth, self.background = run, executor, max_queue, depth, background
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.incoming = 0  # announced, not yet submitted
        self.arrived = asyncio.Event()
        self.slots = asyncio.Semaphore(runs)
        self.running = 0  # runs in progress, batched or exclusive


class Batcher:
    def __init__(
        self,
        run: Callable[[np.ndarray], list[np.ndarray]],
        executor: Executor,
        max_batch_size: int,
        max_delay_s: float,
        max_queue: int,
        concurrent_runs: int = 1,
        series: ModelSeries | None = None,
        background: Background | None = None,
    ) -> None:
        self._series = series or ModelSeries.of("unnamed")
        self.max_batch_size, self.max_delay_s, self.max_queue = max_batch_size, max_delay_s, max_queue
        self.concurrent_runs = concurrent_runs
        self.on_first_batch: Callable[[], None] | None = None  # called once, when a first batch forms
        self._lane = _Lane(run, executor, concurrent_runs, max_queue, self._series.queue_depth, False)
        self._background = (self._lane if background is None else
                            _Lane(background.run or run, background.executor, background.runs, background.max_queue,
                                  BACKGROUND_QUEUE_DEPTH, True))
        self._turns = background.turns if background is not None else NO_TURNS
        self._idle_executor = background.idle_executor if background is not None else None
        self._runs: set[asyncio.Task[None]] = set()
        self._closed = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop(lane)) for lane in self._lanes()]

    def _lanes(self) -> list[_Lane]:
        return [self._lane] if self._background is self._lane else [self._lane, self._background]

    def _of(self, background: bool) -> _Lane:
        return self._background if background else self._lane

    @property
    def queued(self) -> int:
        return sum(lane.queue.qsize() for lane in self._lanes())

    def idle(self, background: bool = False) -> bool:
        """No interactive request running, queued or on its way: one may run alone (see ``exclusive``). For a
        background request: no request of either kind (it never delays an interactive one)."""
        lanes = self._lanes() if background else [self._lane]
        return not self._closed and all(
            lane.running == 0 and lane.queue.empty() and lane.incoming <= 0 for lane in lanes)

    @contextlib.asynccontextmanager
    async def exclusive(self, background: bool = False) -> AsyncIterator[None]:
        """``async with batcher.exclusive():`` hold one of the model's run slots (of its lane) for one unbatched
        request."""
        lane = self._of(background)
        async with lane.slots:
            lane.running += 1
            try:
                yield
            finally:
                lane.running -= 1

    def announce(self, background: bool = False) -> None:
        """A request for this model has started its pre-processing."""
        self._of(background).incoming += 1

    def withdraw(self, background: bool = False) -> None:
        """An announced request failed before submitting."""
        lane = self._of(background)
        lane.incoming -= 1
        lane.arrived.set()

    async def submit(self, tensor: np.ndarray, background: bool = False) -> BatchOutput:
        """Queue one announced request's input (C x H x W) and wait for its outputs."""
        lane = self._of(background)
        lane.incoming -= 1
        if self._closed:
            lane.arrived.set()
            raise Unavailable("the model was unloaded while the request was queued; retry")
        if lane.queue.qsize() >= lane.max_queue:
            lane.arrived.set()
            if lane.background:
                BACKGROUND_REJECTED.inc()
                raise ResourceExhausted(f"the model's background queue is full ({lane.max_queue} requests); "
                                        "background work yields to interactive requests: retry with backoff")
            raise ResourceExhausted(
                f"the model's queue is full ({lane.max_queue} requests); retry with backoff or add workers"
            )
        future: asyncio.Future[BatchOutput] = asyncio.get_running_loop().create_future()
        lane.queue.put_nowait(_Item(tensor, future, time.perf_counter()))
        lane.depth.inc()
        lane.arrived.set()
        return await future

    def _keep(self, lane: _Lane, items: list[_Item], item: _Item) -> None:
        """Add a request taken off the queue to the batch, unless its caller has gone (cancelled)."""
        lane.depth.dec()
        if item.future.done():
            CANCELLED.inc()
        else:
            items.append(item)

    def _take(self, lane: _Lane, items: list[_Item]) -> None:
        """Move queued requests into ``items``, up to the batch size, without waiting."""
        while len(items) < self.max_batch_size and not lane.queue.empty():
            self._keep(lane, items, lane.queue.get_nowait())

    async def _collect(self, lane: _Lane, items: list[_Item]) -> None:
        """Fill ``items``: wait for a first live request, then for the announced ones, up to ``max_delay_s``."""
        while not items:
            self._keep(lane, items, await lane.queue.get())
        deadline = time.perf_counter() + self.max_delay_s
        while True:
            self._take(lane, items)
            remaining = deadline - time.perf_counter()
            if len(items) >= self.max_batch_size or lane.incoming <= 0 or remaining <= 0:
                return
            lane.arrived.clear()
            try:
                await asyncio.wait_for(lane.arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _loop(self, lane: _Lane) -> None:
        while True:
            items: list[_Item] = []
            try:
                await self._collect(lane, items)
                await lane.slots.acquire()
                if lane.background:  # its turn comes once it could start (an interactive one may arrive meanwhile)
                    await self._turns.turn()
            except asyncio.CancelledError:  # closing: these were taken off the queue already
                _fail(items, Unavailable("the model was unloaded while the request was queued; retry"))
                raise
            self._take(lane, items)  # queued while waiting for a slot
            live = [i for i in items if not i.future.done()]  # drop callers that gave up meanwhile
            CANCELLED.inc(len(items) - len(live))
            if not live:
                lane.slots.release()
                continue
            if self.on_first_batch is not None:
                first, self.on_first_batch = self.on_first_batch, None
                first()
            lane.running += 1
            task = asyncio.get_running_loop().create_task(self._run_batch(lane, live))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run_batch(self, lane: _Lane, live: list[_Item]) -> None:
        """One model run for ``live`` (holding a slot, released at the end); results to each waiter."""
        try:
            started = time.perf_counter()
            if lane.background:
                BACKGROUND_RUNS.inc()
            executor = lane.executor
            if lane.background and self._idle_executor is not None and self._turns.contended:
                executor = self._idle_executor
            try:  # the inputs are stacked in the run's thread: a batch of large tensors is a long copy
                outputs = await asyncio.get_running_loop().run_in_executor(
                    executor, _stacked_run, lane.run, [i.tensor for i in live])
            except asyncio.CancelledError:
                _fail(live, Unavailable("the model was unloaded during inference; retry"))
                raise
            except Exception as exc:  # noqa: BLE001 - delivered to every waiter
                _fail(live, exc)
                return
        finally:
            lane.running -= 1
            lane.slots.release()
        infer_s = time.perf_counter() - started
        self._series.batch_size.observe(len(live))
        for index, item in enumerate(live):
            if not item.future.done():
                item.future.set_result(
                    BatchOutput([o[index] for o in outputs], len(live), started - item.enqueued, infer_s, started)
                )

    async def close(self) -> None:
        """Stop taking requests; fail what is still queued; wait for the loop to end."""
        self._closed = True
        self.on_first_batch = None  # it refers to the model that holds this batcher
        # Each task's CancelledError is consumed (cancel_all): a kept one would hold this batcher, and so the
        # model's session, in a reference cycle until a full GC. A loop that lost a cancellation (Python 3.11's
        # wait_for, in _collect) is cancelled again rather than waited for without end.
        if not await cancel_all([*self._tasks, *self._runs]):
            log.warning("a batcher's loop still running after close; abandoned")
        pending = []
        for lane in self._lanes():
            while not lane.queue.empty():
                pending.append(lane.queue.get_nowait())
                lane.depth.dec()
        _fail(pending, Unavailable("the model was unloaded; retry"))
