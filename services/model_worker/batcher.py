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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from services.common.errors import ResourceExhausted, Unavailable
from services.model_worker.metrics import CANCELLED, ModelSeries


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


def _fail(items: list[_Item], exc: BaseException) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(exc)


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
    ) -> None:
        self._run, self._executor = run, executor
        self._series = series or ModelSeries.of("unnamed")
        self._depth = self._series.queue_depth
        self.max_batch_size, self.max_delay_s, self.max_queue = max_batch_size, max_delay_s, max_queue
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._incoming = 0
        self._arrived = asyncio.Event()
        self.concurrent_runs = concurrent_runs
        self.on_first_batch: Callable[[], None] | None = None  # called once, when a first batch forms
        self._slots = asyncio.Semaphore(concurrent_runs)
        self._running = 0  # runs in progress, batched or exclusive
        self._runs: set[asyncio.Task[None]] = set()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def idle(self) -> bool:
        """Nothing running, queued or on its way: a request may run alone (see ``exclusive``)."""
        return self._running == 0 and self._queue.empty() and self._incoming <= 0 and not self._closed

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """``async with batcher.exclusive():`` hold one of the model's run slots for one unbatched request."""
        async with self._slots:
            self._running += 1
            try:
                yield
            finally:
                self._running -= 1

    def announce(self) -> None:
        """A request for this model has started its pre-processing."""
        self._incoming += 1

    def withdraw(self) -> None:
        """An announced request failed before submitting."""
        self._incoming -= 1
        self._arrived.set()

    async def submit(self, tensor: np.ndarray) -> BatchOutput:
        """Queue one announced request's input (C x H x W) and wait for its outputs."""
        self._incoming -= 1
        if self._closed:
            self._arrived.set()
            raise Unavailable("the model was unloaded while the request was queued; retry")
        if self._queue.qsize() >= self.max_queue:
            self._arrived.set()
            raise ResourceExhausted(
                f"the model's queue is full ({self.max_queue} requests); retry with backoff or add workers"
            )
        future: asyncio.Future[BatchOutput] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(tensor, future, time.perf_counter()))
        self._depth.inc()
        self._arrived.set()
        return await future

    def _keep(self, items: list[_Item], item: _Item) -> None:
        """Add a request taken off the queue to the batch, unless its caller has gone (cancelled)."""
        self._depth.dec()
        if item.future.done():
            CANCELLED.inc()
        else:
            items.append(item)

    def _take(self, items: list[_Item]) -> None:
        """Move queued requests into ``items``, up to the batch size, without waiting."""
        while len(items) < self.max_batch_size and not self._queue.empty():
            self._keep(items, self._queue.get_nowait())

    async def _collect(self, items: list[_Item]) -> None:
        """Fill ``items``: wait for a first live request, then for the announced ones, up to ``max_delay_s``."""
        while not items:
            self._keep(items, await self._queue.get())
        deadline = time.perf_counter() + self.max_delay_s
        while True:
            self._take(items)
            remaining = deadline - time.perf_counter()
            if len(items) >= self.max_batch_size or self._incoming <= 0 or remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _loop(self) -> None:
        while True:
            items: list[_Item] = []
            try:
                await self._collect(items)
                await self._slots.acquire()
            except asyncio.CancelledError:  # closing: these were taken off the queue already
                _fail(items, Unavailable("the model was unloaded while the request was queued; retry"))
                raise
            self._take(items)  # queued while waiting for a slot
            live = [i for i in items if not i.future.done()]  # drop callers that gave up meanwhile
            CANCELLED.inc(len(items) - len(live))
            if not live:
                self._slots.release()
                continue
            if self.on_first_batch is not None:
                first, self.on_first_batch = self.on_first_batch, None
                first()
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run_batch(live))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def _run_batch(self, live: list[_Item]) -> None:
        """One model run for ``live`` (holding a slot, released at the end); results to each waiter."""
        try:
            batch = live[0].tensor[None] if len(live) == 1 else np.stack([i.tensor for i in live])
            started = time.perf_counter()
            try:
                outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, batch)
            except asyncio.CancelledError:
                _fail(live, Unavailable("the model was unloaded during inference; retry"))
                raise
            except Exception as exc:  # noqa: BLE001 - delivered to every waiter
                _fail(live, exc)
                return
        finally:
            self._running -= 1
            self._slots.release()
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
        tasks = [self._task, *self._runs]
        for task in tasks:
            task.cancel()
        for task in tasks:
            # Awaiting each task (not gather) consumes its CancelledError; a kept one would hold this
            # batcher, and so the model's session, in a reference cycle until a full GC.
            try:
                await task
            except asyncio.CancelledError:
                pass
        pending = []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
            self._depth.dec()
        _fail(pending, Unavailable("the model was unloaded; retry"))
