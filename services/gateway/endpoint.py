"""One worker as this gateway knows it, free of I/O: its last heartbeat plus what this gateway's own calls found
(a copy confirmed loaded, one found gone, whether it is in rotation, late or draining). A ``FleetView``
(``view``) holds the endpoints and keeps its indexes current as they change; routing and copy planning read
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.gateway.model_loads import ModelLoads

if TYPE_CHECKING:
    from services.gateway.view import FleetView
    from services.gateway.worker_client import WorkerClient


@dataclass(eq=False)  # compared and hashed by identity
class WorkerEndpoint:
    address: str
    client: WorkerClient | Any = None  # None where nothing is called (the simulator)
    worker_id: str = ""
    state: WorkerState | None = None  # the last heartbeat
    loads: ModelLoads = field(default_factory=ModelLoads)  # from ``state``, by model id (not tracked by gc per model)
    in_flight: int = 0  # this gateway's calls to the worker now
    others_at_beat: int = 0  # requests inside the worker that were not this gateway's, when ``state`` was read
    copy_calls: int = 0  # of ``in_flight``, calls to a copy it holds (not placements, which may wait for a load)
    rate: float = 0.0  # requests per second arriving at its models over its last heartbeat interval, all together
    failed: bool = False
    failed_at: tuple[str, int] | None = None  # (boot id, sequence) of the last heartbeat seen when it failed
    next_probe: float = 0.0
    late_since: float | None = None  # when its heartbeat record was first found missing (kept in grace: ``grace``)
    # model id -> (sha256, heartbeat sequence then): a call found it loaded; no heartbeat says so yet.
    confirmed: dict[str, tuple[str, int]] = field(default_factory=dict)
    # model id -> heartbeat sequence then: a call found it gone; heartbeats up to then are stale about it.
    gone: dict[str, int] = field(default_factory=dict)
    view: FleetView | None = field(default=None, repr=False)  # told when the models held change
    # Model ids the view's holder index lists this worker under; and those its index of fresh copies counts here
    # (``track_fresh``). Sets of ids kept as dicts of ids to None, which the garbage collector does not track (a
    # frozenset of 64 ids per heartbeat is 64 references for every young collection to walk).
    indexed: dict[str, None] = field(default_factory=dict)
    loading: frozenset[str] = frozenset()  # model ids its last heartbeat says it is loading (indexed by the view)
    loading_since: dict[str, int] = field(default_factory=dict)  # of those, the heartbeat sequence first listing each
    fresh: dict[str, None] = field(default_factory=dict)
    _measured: tuple[WorkerState | None, float] = field(default=(None, 0.0), repr=False)

    @property
    def label(self) -> str:
        """How logs and metrics name the worker: its id once known (never shown to callers)."""
        return self.worker_id or self.address

    @property
    def sequence(self) -> int:
        return self.state.sequence if self.state is not None else 0

    @property
    def draining(self) -> bool:
        return self.state is not None and self.state.draining

    @property
    def late(self) -> bool:
        """Its heartbeat record is missing; its last state is kept for a grace period (``grace``)."""
        return self.late_since is not None

    @property
    def busy(self) -> float:
        """Requests inside the worker on average over its last heartbeat interval (0 before one)."""
        return self.state.outstanding if self.state is not None else 0.0

    @property
    def measured_seconds(self) -> float:
        """How long its longest-measured copy has been measured (its last heartbeat's models), worked out once per
        heartbeat: copy planning asks it of every saturated worker in every step."""
        state, measured = self._measured
        if state is not self.state:
            models = self.state.models if self.state is not None else ()
            measured = max((m.measured_seconds for m in models), default=0.0)
            self._measured = (self.state, measured)
        return measured

    def load_of(self, model_id: str) -> ModelLoad | None:
        return None if model_id in self.gone else self.loads.get(model_id)

    @property
    def takes_work(self) -> bool:
        """In rotation (no failed call since its last heartbeat) and not draining: new requests and copies may
        go there."""
        return not self.failed and not self.draining

    def serves(self, model_id: str, sha256: str) -> bool:
        """A copy of this version that counts (floors, ``AddModel``, routing): it takes work and holds the model.
        Its heartbeat may be late (``grace``): routing tries such a copy after the others."""
        return self.takes_work and self.holds(model_id, sha256)

    def holds(self, model_id: str, sha256: str) -> bool:
        """This version of the model is loaded there, as far as this gateway knows."""
        if model_id in self.gone:
            return False
        load = self.loads.get(model_id)
        if load is not None and load.sha256 == sha256:
            return True
        confirmed = self.confirmed.get(model_id)
        return confirmed is not None and confirmed[0] == sha256

    def call_began(self, existing: bool) -> None:
        """This gateway sent it a call: to a copy it holds (``existing``), or placing a model there."""
        self.in_flight += 1
        self.copy_calls += existing

    def call_ended(self, existing: bool) -> None:
        self.in_flight -= 1
        self.copy_calls -= existing

    def outstanding(self) -> int:
        """Work waiting at the worker's models: this gateway's calls to copies it holds now plus the others'
        (from the heartbeat). Calls that placed a model there are left out: behind a long load queue they wait
        for a load thread, not for the models loaded, and counting them made a new copy on such a worker look
        busier than the lone holder it was placed to relieve."""
        return self.copy_calls + self.others_at_beat

    def apply(self, state: WorkerState) -> bool:
        """Take a heartbeat; returns whether it brought a failed worker back."""
        revived = False
        if self.failed:
            boot, sequence = self.failed_at or ("", -1)
            # The heartbeat read after the failure may have been published just before it: wait for the next.
            if state.boot_id != boot or state.sequence > sequence + 1:
                self.failed, self.failed_at, revived = False, None, True
        if self.state is not None and state.boot_id != self.state.boot_id:
            self.confirmed.clear()
            self.gone.clear()
            self.loading_since = {}  # (a new process counts its heartbeats from 1 again)
        busy_before, rate_before = self.busy, self.rate
        self.state, self.worker_id, self.late_since = state, state.worker_id, None
        self.rate = sum(m.requests_per_second for m in state.models)
        loads = ModelLoads(state)
        if self.view is not None:
            self.view.busy_total += self.busy - busy_before
            self.view.rate_total += self.rate - rate_before
            self.view.track_active(self.loads, loads)
            self.view.note_changes(self.loads, loads, state.interval_seconds)
            self.view.track_fresh(self, loads, state.interval_seconds)
        self.loads = loads
        self._set_loading(frozenset(state.models_loading))
        # The heartbeat's figures include this gateway's calls then: what is left is other gateways' work.
        self.others_at_beat = max(0, sum(m.in_flight for m in state.models) - self.copy_calls)
        # A heartbeat published after a call's finding is authoritative again.
        self.confirmed = {m: c for m, c in self.confirmed.items() if state.sequence <= c[1] + 1}
        self.gone = {m: s for m, s in self.gone.items() if state.sequence <= s + 1}
        self.reindex()
        return revived

    def forget_state(self) -> None:
        """No heartbeat any more: its models and load are unknown."""
        if self.view is not None:
            self.view.busy_total -= self.busy
            self.view.rate_total -= self.rate
            self.view.track_active(self.loads, {})
            self.view.track_fresh(self, {}, 0.0)
        self.state, self.loads, self.others_at_beat, self.late_since = None, ModelLoads(), 0, None
        self.rate = 0.0
        self._set_loading(frozenset())
        self.reindex()

    def found_serving(self, model_id: str, sha256: str) -> None:
        """A call found this version of the model loaded there (or just loaded it)."""
        self.gone.pop(model_id, None)
        if not self.holds(model_id, sha256):
            self.confirmed[model_id] = (sha256, self.sequence)
        self.reindex()

    def found_gone(self, model_id: str) -> None:
        """A call found the model not loaded there (evicted, unloaded or replaced)."""
        self.confirmed.pop(model_id, None)
        self.gone[model_id] = self.sequence
        self.reindex()

    def reindex(self) -> None:
        if self.view is not None:
            self.view.reindex(self)

    def _set_loading(self, now: frozenset[str]) -> None:
        if now != self.loading:
            if self.view is not None:
                self.view.index_loading(self, self.loading, now)
            self.loading = now
            since, sequence = self.loading_since, self.sequence
            self.loading_since = {m: since.get(m, sequence) for m in now}

    def loading_for(self, model_id: str) -> int:
        """Heartbeats since the first that listed the model among its loads (0: only the last one)."""
        since = self.loading_since.get(model_id)
        return self.sequence - since if since is not None else 0


def lighter_first(a: WorkerEndpoint, b: WorkerEndpoint) -> list[WorkerEndpoint]:
    """Two workers, the one with less outstanding work first (``a`` where they are even): power of two choices."""
    return [a, b] if a.outstanding() <= b.outstanding() else [b, a]
