"""The simulated clock and fleet: events in time order, the workers, the gateways, the shared placement
records, and what is counted."""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.fleet_sim.gateway import GC, SETTLE_S, SimGateway
from bench.fleet_sim.worker import SimWorker
from bench.fleet_sim.workload import Scenario, Trace, model_name
from services.gateway.placement import Backlog, CopyPolicy


@dataclass(eq=False)
class Request:
    index: int
    model: str
    arrived: float
    hit: bool = False  # the worker held the model loaded when the request reached it
    placed: bool = False
    joined: bool = False
    gateway: SimGateway | None = None
    endpoint: Any = None
    reroutes: int = 0
    reached: float = 0.0  # when it reached the worker it is at (waiting there for a load, or queued)


@dataclass
class Stats:
    measured: int = 0
    hits: int = 0
    rejected: int = 0
    latencies: list[float] = field(default_factory=list)
    served_by: Counter[int] = field(default_factory=Counter)
    cold_loads: int = 0  # loads a request started
    duplicate_loads: int = 0  # of those, started while another request's load of the model was under way
    beside_copy_loads: int = 0  # started while only a copy the controller decided was loading
    overflow_loads: int = 0  # further copies a request loaded because the holders' queues were full
    copy_loads: int = 0  # loads the copies controller started
    loads_measured: int = 0  # loads of either kind started once warm-up was over
    copies_added: int = 0
    copies_released: int = 0
    queue_full_retries: int = 0


class Fleet:
    def __init__(self, scenario: Scenario, trace: Trace, seed: int, policy: CopyPolicy | None = None,
                 backlog: Backlog | None = None) -> None:
        self._backlog = backlog or Backlog()  # each gateway's planning bounds (a copy of this)
        self.scenario, self.trace = scenario, trace
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[..., None], tuple]] = []
        self._seq = 0
        self.stats = Stats()
        self.records: dict[str, tuple[str, float]] = {}  # model -> (worker address, expires): loads in flight
        self.copying: dict[str, set[str]] = {}  # model -> workers loading a copy decided as a copy (Redis hash)
        self.loading_at: Counter[str] = Counter()  # model -> workers loading it now
        self.copying_at: Counter[str] = Counter()  # of those, loads of a copy the controller decided
        self.workers = [SimWorker(i, self) for i in range(scenario.workers)]
        self.policy = policy or CopyPolicy(max_copies=0, up_load=4.0, up_window_s=10.0, release_load=0.5,
                                           release_window_s=60.0)
        self.gateways = [SimGateway(g, self, self.policy, seed) for g in range(scenario.gateways)]
        self._sizes = trace.sizes.tolist()
        self.measured_from_s = float(trace.times[trace.measured_from]) if len(trace.times) else 0.0
        self._names = {}
        rng = np.random.default_rng(seed + 2)
        if scenario.prefill:
            for worker in self.workers:
                worker.prefill([self.name(i) for i in rng.integers(0, scenario.models, 2 * scenario.max_models).tolist()])
        for worker, phase in zip(self.workers, rng.random(scenario.workers).tolist()):
            self.at(phase * scenario.heartbeat_s, self._beat, worker)
        for gateway, phase in zip(self.gateways, rng.random(scenario.gateways).tolist()):
            self.at(phase * scenario.refresh_s, self._refresh, gateway)

    def backlog(self) -> Backlog:
        """Each gateway's own, its step's time by this process's CPU time less its garbage collections (on a shared
        machine the wall clock counts waits for a core; and the collections of this process's heap, three
        gateways' views and 2,000 simulated workers, are the simulator's cost: they would stop steps early)."""
        return Backlog(budget=self._backlog.budget, relief_holders=self._backlog.relief_holders,
                       seconds=self._backlog.seconds, clock=lambda: time.process_time() - GC.seconds)

    # ---- the clock -------------------------------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, fn, args))

    def run(self) -> Stats:
        times, models, gateways = self.trace.times.tolist(), self.trace.models.tolist(), self.trace.gateways.tolist()
        events, n, i = self._events, len(times), 0
        while i < n or events:
            if i < n and (not events or times[i] <= events[0][0]):
                self.now = times[i]
                request = Request(i, self.name(models[i]), self.now)
                self.gateways[gateways[i]].route(request)
                i += 1
                continue
            when, _, fn, args = heapq.heappop(events)
            if i >= n and fn in (self._beat, self._refresh):
                continue  # the last requests are in: let the work in flight finish
            self.now = when
            fn(*args)
        return self.stats

    def _beat(self, worker: SimWorker) -> None:
        worker.beat()
        self.at(self.now + self.scenario.heartbeat_s, self._beat, worker)

    def _refresh(self, gateway: SimGateway) -> None:
        gateway.refresh()
        self.at(self.now + self.scenario.refresh_s, self._refresh, gateway)

    # ---- models ----------------------------------------------------------------------------------
    def name(self, index: int) -> str:
        name = self._names.get(index)
        if name is None:
            name = self._names[index] = model_name(index)
        return name

    def size_of(self, model: str) -> int:
        return self._sizes[int(model[1:-2])]

    def load_started(self, model: str, worker: SimWorker, copy: bool, overflow: bool = False) -> None:
        self.stats.loads_measured += self.now >= self.measured_from_s
        if overflow:
            self.stats.overflow_loads += 1
            copy = True  # a further copy because every holder's queue was full: counted with copies
        if copy:
            self.stats.copy_loads += 1
            self.copying_at[model] += 1
        else:
            self.stats.cold_loads += 1
            if self.loading_at[model] > self.copying_at[model]:
                self.stats.duplicate_loads += 1
            elif self.loading_at[model]:
                self.stats.beside_copy_loads += 1
        self.loading_at[model] += 1
        worker.loading_copy = worker.loading_copy | {model} if copy else worker.loading_copy

    def load_done(self, model: str, worker: SimWorker) -> None:
        if model in worker.loading_copy:
            worker.loading_copy = worker.loading_copy - {model}
            self.copying_at[model] -= 1
        self.loading_at[model] -= 1
        if self.loading_at[model] <= 0:
            del self.loading_at[model]
        self.settle(model, worker.address)

    def settle(self, model: str, address: str) -> None:
        record = self.records.get(model)
        if record is not None and record[0] == address:
            self.records[model] = (address, self.now + SETTLE_S)

    # ---- outcomes --------------------------------------------------------------------------------
    def _measured(self, request: Request) -> bool:
        return request.index >= self.trace.measured_from

    def finished(self, request: Request, worker: SimWorker) -> None:
        if request.gateway is not None:
            request.gateway.done(request)
        if self._measured(request):
            stats = self.stats
            stats.measured += 1
            stats.hits += request.hit
            stats.latencies.append(self.now - request.arrived)
            stats.served_by[worker.index] += 1

    def reject(self, request: Request) -> None:
        if self._measured(request):
            self.stats.measured += 1
            self.stats.rejected += 1

    def rejected_by_worker(self, request: Request, worker: SimWorker) -> None:
        """A request that waited for a load found the queue full once it was loaded: its gateway tries again."""
        if request.gateway is not None:
            request.endpoint.call_ended(not request.placed)
        if request.reroutes >= 3 or request.gateway is None:
            self.reject(request)
            return
        request.reroutes += 1
        request.gateway.route(request)
