"""The worker's model manager: lazy loads under per-model locks, evictions by count and memory.

All bookkeeping happens on the event loop thread, so the model table needs no lock of
its own; per-model ``asyncio.Lock``s (``model_locks``, acquired with a timeout) serialize load, reload and
unload of one model, so concurrent first requests load it once and concurrent add/remove
never builds two copies. Fetching and opening (``loading``) run in a thread pool: requests for models
already loaded keep flowing meanwhile. Over a limit, the eviction policy (``eviction``: GDSF or LRU) picks
the victim; pinned models and the model just loaded are never evicted, and an evicted model's requests in
flight finish before it is closed. What it holds per model: ``held_model.HeldModel``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import psutil

from services.common.background import NO_TURNS, Turns
from services.common.errors import FleetError, ModelLoadError, ResourceExhausted
from services.common.model_record import ModelRecord
from services.model_worker.artifacts import ArtifactStore
from services.model_worker.batcher import Background, Batcher
from services.common.labels import model_label
from services.model_worker.busyness import BusyMeter
from services.model_worker.eviction import Eviction, EvictionKind
from services.model_worker.held_model import HeldModel
from services.model_worker.load_queue import LoadQueue, load_cost
from services.model_worker.loading import open_files
from services.model_worker.metrics import (
    CAPACITY_BYTES,
    EVICTIONS,
    IN_FLIGHT,
    LOADED_BYTES,
    LOADED_MODELS,
    MAX_MODELS,
    MODEL_BYTES,
    MODEL_LOAD_SECONDS,
    MODEL_LOADED,
    MODEL_LOADS,
    ModelSeries,
)
from services.model_worker.model_locks import ModelLocks
from services.model_worker.runtime import (
    CUDA,
    RuntimeOptions,
    available_providers,
    device_free_bytes,
    requested_providers,
)

log = logging.getLogger("fleet.worker.models")


@dataclass(frozen=True)
class ManagerLimits:
    max_models: int = 8
    capacity_bytes: int = 0  # 0: no byte limit
    memory_free_threshold: float = 0.0  # 0: no pressure check
    lock_timeout_s: float = 60.0
    max_queue_delay_s: float = 0.002
    max_queue: int = 256
    concurrent_runs: int = 0  # 0: the session's batch runs (one per intra-op thread with adaptive threads, else 1)
    load_history: int = 60  # heartbeat intervals of load kept per model (see BusyMeter)
    background_runs: int = 0  # background runs of a model at once (0: half its concurrent runs, at least 1)
    background_max_queue: int = 64  # background requests queued per model
    eviction: EvictionKind = "gdsf"  # which model goes over a limit (services.model_worker.eviction)
    load_slots: int = 2  # loads at once (the load executor's threads); the others wait in demand order (load_queue)


def memory_free_fraction(on_device: bool = False) -> float:
    """Free/total memory: the GPU's when models run on one, else the host's."""
    device = device_free_bytes() if on_device else None
    if device is not None:
        return device[0] / device[1]
    vm = psutil.virtual_memory()
    return vm.available / vm.total


class ModelManager:
    def __init__(
        self,
        artifacts: ArtifactStore,
        runtime: RuntimeOptions,
        limits: ManagerLimits,
        load_executor: Executor,
        infer_executor: Executor,
        free_fraction: Callable[[], float] | None = None,
        background_executor: Executor | None = None,
        background_turns: Turns = NO_TURNS,
        background_idle_executor: Executor | None = None,
    ) -> None:
        self.artifacts, self.runtime, self.limits = artifacts, runtime, limits
        self._load_executor, self._infer_executor = load_executor, infer_executor
        self._background_executor = background_executor  # None: background requests share the model's lane
        self._background_turns = background_turns  # background batches start on their turn (``batcher``)
        self._background_idle = background_idle_executor  # and run there while interactive requests are about
        self.on_device = on_device = requested_providers(runtime.execution_provider, available_providers())[0] == CUDA
        self._free_fraction = free_fraction or (lambda: memory_free_fraction(on_device))
        MAX_MODELS.set(limits.max_models)
        CAPACITY_BYTES.set(limits.capacity_bytes)
        self._models: OrderedDict[str, HeldModel] = OrderedDict()
        self._eviction = Eviction(limits.eviction)
        self._locks = ModelLocks(limits.lock_timeout_s)
        self._load_queue = LoadQueue(limits.load_slots)
        self._retiring: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        self._opening: set[asyncio.Task[None]] = set()  # batch sessions being opened
        self.loads_started = 0  # for tests and describe: how many loads ran
        self.on_drop: list[Callable[[str], None]] = []  # told each model id unloaded, evicted or replaced
        self.loads_in_progress = 0  # loads under way now (waiting for a load thread included)
        # Models a request is loading now (published: gateways send the model's requests to wait for it; loads
        # the copies controller asked for are not listed: a request placing the model again is a further copy).
        self.loading: set[str] = set()

    # ---- queries -------------------------------------------------------------------------
    def get(self, model_id: str) -> HeldModel | None:
        return self._models.get(model_id)

    def models(self) -> list[HeldModel]:
        return list(self._models.values())

    def free_fraction(self) -> float:
        return self._free_fraction()

    @property
    def total_bytes(self) -> int:
        return sum(m.size_bytes for m in self._models.values())

    # ---- request path --------------------------------------------------------------------
    async def acquire(self, record: ModelRecord) -> tuple[HeldModel, bool]:
        """The loaded model for ``record`` (loading it if needed) and whether this call loaded it.

        The caller must ``release`` it; an acquired model is never closed under a request.
        """
        model = self._models.get(record.model_id)
        cold, arrived = False, None
        if model is None or model.sha256 != record.spec.sha256:
            arrived = time.monotonic()  # (the meter's clock) its arrival counts from now, not once loaded
            # Admission: no more requests wait for a load here than the model's queue takes once it lands (the
            # rest would be refused then, after waiting for nothing): past that, another worker takes them now.
            if (waiting := self._locks.waiting(record.model_id)) >= self.limits.max_queue:
                raise ResourceExhausted(f"model {record.model_id!r} is loading on this worker with {waiting} "
                                        "requests waiting for it already; another worker takes this one")
            model, already = await self.load(record, requested=True)
            cold = not already
        self._models.move_to_end(model.model_id)
        if arrived is None:
            # A use for the eviction policy only where the model was found loaded: the load is the one use of the
            # requests that started it or waited for it (a burst at one moment, not reuse). Counting each of them
            # let a model asked for once by a burst outrank one used steadily: in the fleet simulator, which
            # drives this policy, 1.5 points of hit rate at 20 workers and 0.7 at 200 (issue 30).
            self._eviction.used(model.model_id)
        model.meter.enter(arrived)
        IN_FLIGHT.inc()
        return model, cold

    def holds(self, record: ModelRecord) -> bool:
        """This version of the model is loaded (a request for it would not load anything)."""
        model = self._models.get(record.model_id)
        return model is not None and model.sha256 == record.spec.sha256

    def release(self, model: HeldModel) -> None:
        model.meter.leave()
        IN_FLIGHT.dec()
        model.request_count += 1
        model.last_used = time.time()

    # ---- management ------------------------------------------------------------------------
    async def load(self, record: ModelRecord, pin: bool = False, requested: bool = False) -> tuple[HeldModel, bool]:
        """Load ``record`` unless that exact version is loaded; returns (model, already_loaded). ``requested``: for
        a request (listed in ``loading`` while it loads), not for ``LoadModel``."""
        async with self._locks.hold(record.model_id):
            existing = self._models.get(record.model_id)
            if existing is not None and existing.sha256 == record.spec.sha256:
                existing.pinned = existing.pinned or pin
                return existing, True
            self.loads_in_progress += 1
            if requested:
                self.loading.add(record.model_id)  # (one load of a model at a time: under its lock)
            try:
                # The load's demand while it queues: every request waiting for this model (the count admission
                # bounds in ``acquire``).
                async with self._load_queue.slot(lambda: self._locks.waiting(record.model_id),
                                                 load_cost(record.spec.weights.size_bytes)):
                    model = await self._open(record, pin)
            finally:
                self.loads_in_progress -= 1
                self.loading.discard(record.model_id)
            if existing is not None:
                self._drop(existing, "replaced")
            self._models[record.model_id] = model
            self._eviction.loaded(model.model_id, model.size_bytes, model.load_seconds)
            label = model_label(model.model_id)
            MODEL_BYTES.labels(label).inc(model.size_bytes)
            MODEL_LOADED.labels(label).inc()
            self._update_gauges()
            self._enforce_limits(keep=record.model_id)
            return model, False

    async def unload(self, model_id: str) -> bool:
        async with self._locks.hold(model_id):
            model = self._models.get(model_id)
            if model is None:
                return False
            self._drop(model, "unloaded")
            return True

    async def clear(self, workspace: str = "") -> list[str]:
        ids = [m.model_id for m in self._models.values() if not workspace or m.record.workspace == workspace]
        return [model_id for model_id in ids if await self.unload(model_id)]

    async def close(self) -> None:
        for model in list(self._models.values()):
            self._drop(model, "shutdown")
        tasks = [*self._retiring, *self._opening]
        for task in tasks:  # shutting down: stop waiting for in-flight requests to drain
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.artifacts.close()

    # ---- internals -------------------------------------------------------------------------
    async def _open(self, record: ModelRecord, pin: bool) -> HeldModel:
        started = time.perf_counter()
        self.loads_started += 1
        try:
            opened = await open_files(self.artifacts, record, self.runtime, self._load_executor)
        except FleetError:
            MODEL_LOADS.labels(model_label(record.model_id), "failed").inc()
            raise
        except Exception:
            MODEL_LOADS.labels(model_label(record.model_id), "failed").inc()
            log.exception("unexpected error loading %s", record.model_id)
            raise
        elapsed, session = time.perf_counter() - started, opened.session
        MODEL_LOADS.labels(model_label(record.model_id), "loaded").inc()
        MODEL_LOAD_SECONDS.observe(elapsed)
        runs = self.limits.concurrent_runs or session.batch_runs
        background = None
        if self._background_executor is not None:
            background = Background(self._background_executor, self.limits.background_runs or max(1, runs // 2),
                                    self.limits.background_max_queue, session.run_background,
                                    self._background_turns, self._background_idle)
        batcher = Batcher(session.run_batch, self._infer_executor, session.max_batch_size,
                          self.limits.max_queue_delay_s, self.limits.max_queue, runs,
                          ModelSeries.of(record.model_id), background)
        log.info("model loaded", extra={"model_id": record.model_id, "seconds": round(elapsed, 3),
                                        "bytes": session.size_bytes, "provider": session.provider})
        model = HeldModel(record, session, batcher, elapsed, pinned=pin, meter=BusyMeter(self.limits.load_history),
                          graphs=opened.graphs, assets=opened.assets)
        if session.wants_batch_session:
            batcher.on_first_batch = functools.partial(self._open_batch_session, model)
        return model

    def _open_batch_session(self, model: HeldModel) -> None:
        """A first batch formed: open the model's one-thread batch session in the background."""
        task = asyncio.get_running_loop().create_task(self._add_batch_session(model))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _add_batch_session(self, model: HeldModel) -> None:
        session, label = model.session, model_label(model.model_id)
        try:
            opened = await asyncio.get_running_loop().run_in_executor(self._load_executor, session.open_batch_session)
        except ModelLoadError as exc:
            session.drop_batch_session()
            log.warning("batch session not opened; batches stay on the model's session",
                        extra={"model_id": model.model_id, "error": str(exc)})
            return
        except Exception:  # noqa: BLE001 - the model keeps serving on its first session
            session.drop_batch_session()
            log.exception("unexpected error opening a batch session", extra={"model_id": model.model_id})
            return
        if model.retired or self._models.get(model.model_id) is not model:
            return  # unloaded or replaced meanwhile; the session goes with this object
        session.attach_batch_session(*opened)
        MODEL_BYTES.labels(label).inc(session.batch_bytes)
        self._update_gauges()
        self._enforce_limits(keep=model.model_id)
        if self._memory_short() is not None:  # nothing else could be evicted: give the memory back
            MODEL_BYTES.labels(label).dec(session.drop_batch_session())
            self._update_gauges()
            log.warning("no memory for a batch session; batches stay on the model's session",
                        extra={"model_id": model.model_id})
            return
        log.info("batch session opened", extra={"model_id": model.model_id, "bytes": session.batch_bytes,
                                                "runs": session.batch_runs})

    def _over_limit(self) -> str | None:
        if len(self._models) > self.limits.max_models:
            return "count"
        return self._memory_short()

    def _memory_short(self) -> str | None:
        if self.limits.capacity_bytes and self.total_bytes > self.limits.capacity_bytes:
            return "memory"
        if self.limits.memory_free_threshold and self._free_fraction() < self.limits.memory_free_threshold:
            return "pressure"
        return None

    def _enforce_limits(self, keep: str) -> None:
        models = self._models
        while (reason := self._over_limit()) is not None:
            victim_id = self._eviction.victim(skip=lambda model_id: model_id == keep or models[model_id].pinned)
            if victim_id is None:
                log.warning("over the %s limit but nothing can be evicted", reason)
                return
            self._eviction.evicted(victim_id)
            victim = models[victim_id]
            EVICTIONS.labels(model_label(victim.model_id), reason).inc()
            self._drop(victim, f"evicted ({reason})")

    def _drop(self, model: HeldModel, why: str) -> None:
        """Remove from the table now; close once its in-flight requests are done."""
        if self._models.get(model.model_id) is model:
            del self._models[model.model_id]
            self._eviction.forget(model.model_id)
            label = model_label(model.model_id)
            MODEL_BYTES.labels(label).dec(model.size_bytes)
            MODEL_LOADED.labels(label).dec()
        self._update_gauges()
        if model.retired:
            return
        model.retired = True
        for forget in self.on_drop:
            forget(model.model_id)
        log.info("model %s", why, extra={"model_id": model.model_id, "bytes": model.size_bytes})
        task = asyncio.get_running_loop().create_task(self._retire(model))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(model: HeldModel, drain_timeout_s: float = 60.0) -> None:
        """Close the model's batcher once its in-flight requests are done (or at once when cancelled)."""
        deadline = time.monotonic() + drain_timeout_s
        try:
            while model.in_flight > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            await model.batcher.close()

    def _update_gauges(self) -> None:
        LOADED_MODELS.set(len(self._models))
        LOADED_BYTES.set(self.total_bytes)
