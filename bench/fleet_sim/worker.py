"""A simulated model worker, restating ``services.model_worker`` where routing depends on it:

- the model table: limited by count (``max_models``) and bytes (``capacity_bytes``), the victim chosen by the
  worker's own eviction policy (``services.model_worker.eviction``, the scenario's ``eviction``: the load
  cost it weighs is the simulated load time) once a load finishes (never the model just loaded), as
  ``ModelManager._enforce_limits``; a load is one use of the requests that started it or waited for it, and each
  request that finds the model loaded one more (``ModelManager.acquire``);
- loads: two at a time (the worker's load pool), ``0.2 s + size / 250 MB/s`` each, the waiting ones taken in
  the worker's own order (``services.model_worker.load_queue.pick``: the most requests waiting per second of
  loading, ageing); requests for a model being loaded here wait for that load (the per-model lock); a request that asked for an existing copy
  (``require_loaded``) of a model not loaded here is answered "not held";
- runs: one request at a time, ``run_s`` each, first come first served; more than ``max_queue`` requests
  waiting for one model: "queue full" (the batcher's RESOURCE_EXHAUSTED);
- heartbeats: a real ``WorkerState`` with the worker's load summaries and the models it is loading
  (``model_worker.state``), built by a
  real ``BusyMeter`` per model on the simulated clock, encoded as Redis holds it by the real
  ``CompactEncoder`` (the full record, and the compact one: what changed since the beat before).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.cache.heartbeat_codec import CompactEncoder
from services.model_worker.busyness import BusyMeter
from services.model_worker.eviction import Eviction
from services.model_worker.load_queue import LOAD_BYTES_PER_S, LOAD_FIXED_S, Waiting, load_cost, pick
from services.model_worker.state import intervals

if TYPE_CHECKING:
    from bench.fleet_sim.engine import Fleet, Request

SHA = "ab" * 32
BOOT_ID = "0f" * 16  # a uuid4 hex, as the worker's
LOAD_THREADS = 2
WINDOW_S, RELEASE_WINDOW_S = 10.0, 60.0


@dataclass
class Held:
    size: int
    meter: BusyMeter
    queued: int = 0  # requests waiting for the runner or running
    last_used: float = 0.0


@dataclass
class SimWorker:
    index: int
    fleet: Fleet
    held: OrderedDict[str, Held] = field(default_factory=OrderedDict)  # least recently used first, as listed
    eviction: Eviction = field(init=False)
    loading: dict[str, list[Request]] = field(default_factory=dict)  # model -> requests waiting for its load
    load_queue: list[tuple[str, int, Waiting]] = field(default_factory=list)  # loads waiting for a thread
    loads_running: int = 0
    run_queue: deque[tuple[Request, Held]] = field(default_factory=deque)
    running: bool = False
    used: int = 0
    sequence: int = 0
    state: WorkerState | None = None  # the full record of the last beat (what a reader of every beat holds)
    compact: WorkerState | None = None  # the compact record of the same beat
    state_bytes: int = 0  # their encoded sizes
    compact_bytes: int = 0
    encoder: CompactEncoder = field(default_factory=CompactEncoder)
    totals: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    loading_copy: frozenset[str] = frozenset()  # models loading here as copies the controller decided
    requested: set[str] = field(default_factory=set)  # models a request is loading here (heartbeats list them)

    def __post_init__(self) -> None:
        self.eviction = Eviction(self.fleet.scenario.eviction)

    @property
    def address(self) -> str:
        return f"10.{self.index // 65536}.{self.index // 256 % 256}.{self.index % 256}:50053"

    # ---- requests --------------------------------------------------------------------------------
    def call(self, request: Request, existing: bool, overflow: bool = False) -> str:
        """``ok`` (taken: it will finish), ``not_held`` or ``full``."""
        model = request.model
        held = self.held.get(model)
        if held is not None:
            if held.queued >= self.fleet.scenario.max_queue:
                return "full"
            self.held.move_to_end(model)
            self.eviction.used(model)
            request.hit = True
            self._enqueue(request, held)
            return "ok"
        if existing:
            return "not_held"
        request.reached = self.fleet.now
        waiting = self.loading.get(model)
        if waiting is not None:
            # As ModelManager.acquire: no more requests wait for a load than the model's queue takes.
            if sum(not callable(w) for w in waiting) >= self.fleet.scenario.max_queue:
                return "full"
            waiting.append(request)
            return "ok"
        self.loading[model] = [request]
        self.requested.add(model)
        self.fleet.load_started(model, self, copy=False, overflow=overflow)
        self._queue_load(model)
        return "ok"

    def load_copy(self, model: str, done) -> None:  # noqa: ANN001 - a () -> None
        """LoadModel from the copies controller: ``done`` is called once it is loaded (or was already)."""
        if model in self.held:
            done()
            return
        waiting = self.loading.get(model)
        if waiting is None:
            waiting = self.loading[model] = []
            self.fleet.load_started(model, self, copy=True)
            self._queue_load(model)
        waiting.append(done)  # type: ignore[arg-type]

    def prefill(self, models: list[str]) -> None:
        """Start holding these models, idle, as far as the limits allow (``Scenario.prefill``)."""
        scenario = self.fleet.scenario
        for model in models:
            size = self.fleet.size_of(model)
            if len(self.held) >= scenario.max_models or self.used + size > scenario.capacity_bytes:
                break
            if model not in self.held:
                self._hold(model, size)

    def _hold(self, model: str, size: int, last_used: float = 0.0) -> Held:
        """Put a loaded model in the table and tell the eviction policy (every model held is one it may evict)."""
        held = self.held[model] = Held(size, BusyMeter(intervals(RELEASE_WINDOW_S, self.fleet.scenario.heartbeat_s),
                                                       clock=self.fleet.clock), last_used=last_used)
        self.used += size
        self.eviction.loaded(model, size, load_cost(size))
        return held

    def unload(self, model: str) -> None:
        held = self.held.pop(model, None)
        if held is not None:
            self.used -= held.size
            self.eviction.forget(model)

    def _enqueue(self, request: Request, held: Held, arrived: float | None = None) -> None:
        held.queued += 1
        held.meter.enter(arrived)  # (a request that waited for the load: when it arrived, as the manager says)
        self.run_queue.append((request, held))
        if not self.running:
            self._run_next()

    def _run_next(self) -> None:
        if not self.run_queue:
            self.running = False
            return
        self.running = True
        request, held = self.run_queue.popleft()
        self.fleet.at(self.fleet.now + self.fleet.scenario.run_s, self._ran, request, held)

    def _ran(self, request: Request, held: Held) -> None:
        held.queued -= 1
        held.last_used = self.fleet.now
        held.meter.leave()
        self.fleet.finished(request, self)
        self._run_next()

    # ---- loads -----------------------------------------------------------------------------------
    def _queue_load(self, model: str) -> None:
        size = self.fleet.size_of(model)
        demand = self._demand(model)
        self.load_queue.append((model, size, Waiting(demand, load_cost(size), self.fleet.now)))
        self._start_loads()

    def _demand(self, model: str):  # noqa: ANN202 - () -> int
        return lambda: len(self.loading.get(model, ()))  # requests (and copy orders) waiting for the load

    def _start_loads(self) -> None:
        while self.loads_running < LOAD_THREADS and self.load_queue:
            queue = self.load_queue
            model, size, _ = queue.pop(pick([w for _, _, w in queue], self.fleet.now) if len(queue) > 1 else 0)
            self.loads_running += 1
            self.fleet.at(self.fleet.now + LOAD_FIXED_S + size / LOAD_BYTES_PER_S, self._loaded, model, size)

    def _loaded(self, model: str, size: int) -> None:
        self.loads_running -= 1
        self.requested.discard(model)
        self.fleet.load_done(model, self)
        held = self._hold(model, size, last_used=self.fleet.now)
        scenario = self.fleet.scenario
        while len(self.held) > scenario.max_models or self.used > scenario.capacity_bytes:
            victim = self.eviction.victim(skip=model.__eq__)
            if victim is None:
                break
            self.eviction.evicted(victim)
            self.unload(victim)
        for waiter in self.loading.pop(model, []):
            if callable(waiter):
                waiter()
            elif held.queued >= scenario.max_queue:
                self.fleet.rejected_by_worker(waiter, self)
            else:
                self._enqueue(waiter, held, arrived=waiter.reached)
        self._start_loads()

    # ---- heartbeats ------------------------------------------------------------------------------
    def beat(self) -> None:
        interval = self.fleet.scenario.heartbeat_s
        low_n, high_n = intervals(WINDOW_S, interval), intervals(RELEASE_WINDOW_S, interval)
        models, total = [], 0.0
        for model, held in self.held.items():
            meter = held.meter
            meter.sample()
            total += meter.last
            models.append(ModelLoad(
                model_id=model, sha256=SHA, workspace="demo", size_bytes=held.size, in_flight=meter.inside,
                queued=held.queued, requests_per_second=meter.rate, outstanding=meter.last,
                outstanding_low=meter.low(low_n), outstanding_high=meter.high(high_n),
                measured_seconds=meter.sampled * interval, idle_seconds=self.fleet.now - held.last_used,
            ))
        self.totals.appendleft(total)
        totals = list(self.totals)
        self.sequence += 1
        published = Timestamp()
        published.FromNanoseconds(int(self.fleet.now * 1e9))
        state = WorkerState(
            worker_id=f"worker-{self.index}", address=self.address, boot_id=BOOT_ID, sequence=self.sequence,
            published_at=published,
            interval_seconds=interval, max_models=self.fleet.scenario.max_models, loaded_bytes=self.used,
            capacity_bytes=self.fleet.scenario.capacity_bytes, models=models, outstanding=total,
            outstanding_low=min(totals[:low_n]), outstanding_high=max(totals[:high_n]),
            load_window_seconds=WINDOW_S, release_window_seconds=RELEASE_WINDOW_S,
            loads_in_progress=self.loads_running + len(self.load_queue), models_loading=sorted(self.requested),
        )
        self.state, self.compact = self.encoder.encode(state)
        self.state_bytes, self.compact_bytes = self.state.ByteSize(), self.compact.ByteSize()
