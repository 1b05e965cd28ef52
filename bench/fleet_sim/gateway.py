"""A simulated gateway: the real ``FleetView``, ``routing.attempts`` and ``placement.plan`` on its own view.

Its view is as stale as a real gateway's: heartbeats (published every ``heartbeat_s`` by each worker) are
read every ``refresh_s``, at this gateway's own phase; between reads it learns only from its own calls (a
copy loaded, a copy found gone, its calls in flight), as ``WorkerPool`` does. Placements claim the shared
placement record (Redis in the fleet, a dict here: instantly visible to every gateway) as ``gateway.loads``
does; copies are planned every refresh and acted on as ``CopyController`` does (pending loads counted).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from services.cache.heartbeat_codec import StaleBase, apply
from services.gateway import routing
from services.gateway.placement import CopyPolicy, Target, plan
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView

if TYPE_CHECKING:
    from bench.fleet_sim.engine import Fleet, Request
    from bench.fleet_sim.worker import SimWorker

from bench.fleet_sim.worker import SHA

INDEX_ENTRY_BYTES = 40  # a worker's id and score in the index, and the reply saying its record is still there
HISTORY_BYTES_PER_MODEL = 60 * 4 + 3  # the 60 packed floats each model carried before summaries
SETTLE_S = 6.0  # a placement record outlives its load by three heartbeat intervals (gateway.loads)


def _cpu() -> float:
    """This process's CPU seconds: what the decisions cost, whatever else the machine runs (wall-clock time on a
    shared machine counts the waits for a core too)."""
    return time.process_time()


class _GcClock:
    """Seconds this process has spent in garbage collection (the simulator's heap is large: a full collection
    can stall a planning step for seconds, which is the simulator's cost, not planning's)."""

    def __init__(self) -> None:
        self.seconds, self._began = 0.0, 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = _cpu()
        else:
            self.seconds += _cpu() - self._began


GC = _GcClock()


class SimGateway:
    def __init__(self, index: int, fleet: Fleet, policy: CopyPolicy, seed: int) -> None:
        self.index, self.fleet, self.policy = index, fleet, policy
        self.rng = random.Random(seed * 1000 + index)
        self.view = FleetView()
        self.view.active_load = policy.release_load
        self.workers: dict[str, SimWorker] = {}
        for worker in fleet.workers:
            self.view.add(WorkerEndpoint(worker.address))
            self.workers[worker.address] = worker
        self.targets = _Targets(fleet)
        self.backlog = fleet.backlog()
        self.view.windows = (policy.up_window_s, policy.release_window_s)
        self.plan_deferred = 0  # models a step left to the next (over its budget), summed over the steps
        self.acting: set[tuple[str, str]] = set()
        self.unplaced: dict[str, tuple] = {}
        self.route_seconds: list[float] = []
        self.plan_seconds: list[float] = []
        self.plan_gc_seconds: list[float] = []  # of each step, the time the process spent collecting garbage
        self.bytes_read = 0
        self.bytes_read_measured = 0  # of those, once warm-up is over (every gateway read each full record once)
        self.bytes_full = 0  # the same reads, of full records only (before compact ones)
        self.bytes_before = 0
        self.full_reads = self.compact_reads = 0
        self.decode_seconds = 0.0
        self.spread_seconds = 0.0  # working out the routed models' shares at each read (``spread``)

    # ---- heartbeats ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the heartbeats published since the last read (as ``Heartbeats.live`` does: the index, then only
        the changed records: the compact one where this gateway holds the beat it refers to, else the full one)
        and apply them; count what that reads, what reading full records (before) and every record with a
        60-sample history per model (before that) would have."""
        before = self.bytes_read
        for worker in self.fleet.workers:
            full, compact = worker.state, worker.compact
            if full is None or compact is None:
                continue
            self.bytes_read += INDEX_ENTRY_BYTES
            self.bytes_before += worker.state_bytes + len(full.models) * HISTORY_BYTES_PER_MODEL
            endpoint = self.view.endpoints[worker.address]
            held = endpoint.state
            if held is not None and held.sequence == full.sequence and held.boot_id == full.boot_id:
                continue  # unchanged in the index: not fetched
            self.bytes_full += worker.state_bytes
            started = _cpu()
            try:
                state = apply(held, compact)
                self.bytes_read += worker.compact_bytes
                self.compact_reads += 1
            except StaleBase:
                state = full
                self.bytes_read += worker.state_bytes
                self.full_reads += 1
            self.decode_seconds += _cpu() - started
            endpoint.apply(state)
        started = _cpu()
        self.view.spread.new_read()
        self.spread_seconds += _cpu() - started
        if self.fleet.now >= self.fleet.measured_from_s:
            self.bytes_read_measured += self.bytes_read - before
        self.plan_copies()

    # ---- requests --------------------------------------------------------------------------------
    def route(self, request: Request) -> None:
        fleet, model = self.fleet, request.model
        started = _cpu()
        attempts = routing.attempts(self.view, model, SHA, fleet.size_of(model), self.rng)
        first, tried = True, set()
        for attempt in attempts:
            if first:
                self.route_seconds.append(_cpu() - started)
                first = False
            endpoint, existing = attempt.endpoint, attempt.existing
            overflow = joined = False
            if not existing:
                endpoint, overflow, joined = self._claim(model, endpoint, tried)
            tried.add(endpoint.address)
            worker = self.workers[endpoint.address]
            outcome = worker.call(request, existing, overflow)
            if outcome == "ok":
                request.gateway, request.endpoint, request.placed = self, endpoint, not existing
                request.joined = joined
                endpoint.call_began(existing)
                return
            if outcome == "not_held":
                endpoint.found_gone(model)
            elif outcome == "full":
                fleet.stats.queue_full_retries += 1
        fleet.reject(request)

    def _claim(self, model: str, endpoint: WorkerEndpoint, tried: set[str]) -> tuple[WorkerEndpoint, bool, bool]:
        """As ``LoadsInFlight.claim``: where to place, whether it is an overflow (the recorded worker was tried
        already in this request: its queue was full, so a further copy is loaded beside it), whether it joined."""
        record = self.fleet.records.get(model)
        now = self.fleet.now
        if record is not None and record[1] > now:
            if record[0] in tried:
                return endpoint, True, False
            loading = self.view.endpoints.get(record[0])
            if loading is not None and loading.takes_work:
                self.fleet.records[model] = (record[0], max(record[1], now + 120.0))  # joined: extended
                return loading, False, True  # joins the load under way there
            return endpoint, False, False
        self.fleet.records[model] = (endpoint.address, now + 120.0)
        return endpoint, False, False

    def done(self, request: Request) -> None:
        request.endpoint.call_ended(not request.placed)
        if request.placed:  # the call returned: the copy it loaded (or joined) is known here before heartbeats
            request.endpoint.found_serving(request.model, SHA)
            if not request.joined:  # only the claimant shortens the record (LoadsInFlight.settle)
                self.fleet.settle(request.model, request.endpoint.address)

    # ---- copies ----------------------------------------------------------------------------------
    def plan_copies(self) -> None:
        """One step of the copies controller: incremental (the models whose copies changed), bounded."""
        started, gc_before = _cpu(), GC.seconds
        pending = {m: len(at) for m, at in self.fleet.copying.items()}  # cache.placements: every gateway's
        actions = plan(self.view, self.targets, self.policy, pending, self.unplaced, self.backlog, floors=())
        self.plan_seconds.append(_cpu() - started)
        self.plan_gc_seconds.append(GC.seconds - gc_before)
        self.plan_deferred += self.backlog.deferred
        for action in actions:
            key = (action.model_id, action.endpoint.address)
            if key in self.acting:
                continue
            worker = self.workers[action.endpoint.address]
            if action.kind == "add":
                copying = self.fleet.copying.setdefault(action.model_id, set())
                if action.endpoint.address in copying:
                    continue  # another gateway loads this very copy
                copying.add(action.endpoint.address)
                self.acting.add(key)
                self.fleet.stats.copies_added += 1
                worker.load_copy(action.model_id, lambda k=key, e=action.endpoint: self._copied(k, e))
            else:
                self.fleet.stats.copies_released += 1
                action.endpoint.found_gone(action.model_id)
                worker.unload(action.model_id)

    def _copied(self, key: tuple[str, str], endpoint: WorkerEndpoint) -> None:
        model = key[0]
        self.acting.discard(key)
        copying = self.fleet.copying.get(model)
        if copying is not None:
            copying.discard(key[1])
            if not copying:
                del self.fleet.copying[model]
        endpoint.found_serving(model, SHA)


class _Targets(Mapping):
    """Every model of the workload as the copies controller resolves it, made when first looked up."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._made: dict[str, Target] = {}

    def __getitem__(self, model_id: str) -> Target:
        target = self._made.get(model_id)
        if target is None:
            target = self._made[model_id] = Target(model_id, SHA, "demo", self.fleet.size_of(model_id))
        return target

    def get(self, model_id: str, default: Target | None = None) -> Target | None:  # type: ignore[override]
        return self[model_id] if model_id in self else default

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id.startswith("m") and model_id.endswith("/1")

    def __iter__(self) -> Iterator[str]:
        return iter(self._made)

    def __len__(self) -> int:
        return len(self._made)
