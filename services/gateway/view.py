"""The gateway's view of the workers, free of I/O: what routing and copy planning decide from.

``WorkerEndpoint`` (``endpoint``) is one worker as this gateway knows it (its last heartbeat plus what this
gateway's own calls found); ``FleetView`` holds them with two indexes kept up to date as they change:

- **holders**: model id -> the workers that hold some version of it (by heartbeat or a call's finding), so
  routing to a holder reads a handful of entries, not every worker;
- **ring**: a consistent-hash ring of the workers' addresses (``HashRing``), so every gateway computes the
  same home for a model nobody holds, in O(log N), whatever order it learnt of the workers in.

It also notes which models changed (``changed``): a copy's load figures, its version, the windows its
measurement covers (``windows``), or the workers holding it; incremental copy planning
(``placement.Backlog``) looks only at those.

The gRPC / Redis shell (``workers.WorkerPool``) owns a ``FleetView`` and applies heartbeats and call results
to it; the fleet simulator (``bench.fleet_sim``) drives the same classes with simulated ones.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Mapping

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.spread import Spread


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Consistent hashing of worker addresses, ``vnodes`` points each: a model's home is the first worker
    clockwise from the model's point, the next ones its alternatives. Adding or removing a worker moves only
    the models whose home it is or becomes."""

    def __init__(self, addresses: list[str] | tuple[str, ...] = (), vnodes: int = 40) -> None:
        self.vnodes = vnodes
        points = sorted((_hash64(f"{a}#{i}"), a) for a in set(addresses) for i in range(vnodes))
        self._keys = [p for p, _ in points]
        self._owners = [a for _, a in points]
        self.size = len(set(addresses))

    def walk(self, model_id: str) -> Iterator[str]:
        """Every worker address once, the model's home first, then clockwise."""
        if not self._keys:
            return
        start = bisect.bisect_right(self._keys, _hash64(model_id))
        seen: set[str] = set()
        n = len(self._keys)
        for step in range(n):
            owner = self._owners[(start + step) % n]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == self.size:
                    return


class FleetView:
    """The workers by address, with the holder index and the hash ring kept current."""

    def __init__(self, vnodes: int = 40) -> None:
        self.endpoints: dict[str, WorkerEndpoint] = {}
        self._holders: dict[str, list[WorkerEndpoint]] = {}
        self._loading: dict[str, list[WorkerEndpoint]] = {}  # model id -> workers whose heartbeat says it loads there
        self._vnodes = vnodes
        self._ring: HashRing | None = HashRing((), vnodes)
        self.busy_total = 0.0  # the workers' ``busy`` summed, kept as heartbeats arrive
        self.rate_total = 0.0  # the workers' ``rate`` summed, likewise
        # What copy planning looks at, kept as heartbeats arrive: models with more than one holder, and models
        # with a copy whose load (last interval or sustained) is above ``active_load``.
        self.active_load = 0.5
        self.shared: set[str] = set()
        self.active: dict[str, int] = {}  # model id -> copies above active_load
        # Models whose copies changed since copy planning last took them (an ordered set: oldest first), and the
        # windows (seconds) whose coverage by a copy's measurement counts as a change (planning waits for them).
        self.changed: dict[str, None] = {}
        self._windows: tuple[float, ...] = ()
        # model id -> copies (by heartbeat) not yet measured over the first window (copy planning's load window):
        # relief asks whether a saturated worker's models have a new copy elsewhere without walking their copies.
        self._fresh: dict[str, int] = {}
        self.spread = Spread(self.holding)  # how each model's requests spread over its holders (per heartbeat read)

    @property
    def windows(self) -> tuple[float, ...]:
        return self._windows

    @windows.setter
    def windows(self, windows: tuple[float, ...]) -> None:
        self._windows = tuple(windows)
        self._fresh = {}
        for endpoint in self.endpoints.values():
            endpoint.fresh = {}
            if endpoint.state is not None:
                self.track_fresh(endpoint, endpoint.loads, endpoint.state.interval_seconds)

    @property
    def mean_busy(self) -> float:
        return self.busy_total / len(self.endpoints) if self.endpoints else 0.0

    @property
    def mean_rate(self) -> float:
        """Requests per second a worker takes on average (the workers' last heartbeat intervals)."""
        return self.rate_total / len(self.endpoints) if self.endpoints else 0.0

    # ---- membership ----------------------------------------------------------------------------
    def add(self, endpoint: WorkerEndpoint) -> WorkerEndpoint:
        endpoint.view = self
        endpoint.fresh = {}
        self.track_fresh(endpoint, endpoint.loads, endpoint.state.interval_seconds if endpoint.state else 0.0)
        self.index_loading(endpoint, frozenset(), endpoint.loading)
        self.endpoints[endpoint.address] = endpoint
        self.busy_total += endpoint.busy
        self.rate_total += endpoint.rate
        endpoint.reindex()
        self._ring = None  # rebuilt when next needed (adding many workers builds it once)
        return endpoint

    def remove(self, address: str) -> WorkerEndpoint | None:
        endpoint = self.endpoints.pop(address, None)
        if endpoint is not None:
            for model_id in endpoint.indexed:
                self._unlist(model_id, endpoint)
            self.index_loading(endpoint, endpoint.loading, frozenset())
            self.track_active(endpoint.loads, {})
            self.track_fresh(endpoint, {}, 0.0)
            endpoint.indexed, endpoint.view = {}, None
            self.busy_total -= endpoint.busy
            self.rate_total -= endpoint.rate
            self._ring = None
            self.spread.drop()
        return endpoint

    def all(self) -> list[WorkerEndpoint]:
        return list(self.endpoints.values())

    # ---- the holder index ----------------------------------------------------------------------
    def reindex(self, endpoint: WorkerEndpoint) -> None:
        listed = dict.fromkeys(m for m in (*endpoint.loads, *endpoint.confirmed) if m not in endpoint.gone)
        if listed == endpoint.indexed:
            return
        # (As frozensets built in the order the ids are listed: the set operations below visit them in the same
        # order whatever form the ids are kept in between heartbeats, so the holder lists routing draws from and
        # the order planning takes changed models in do not depend on it.)
        now, before = frozenset(iter(listed)), frozenset(iter(endpoint.indexed))
        for model_id in before - now:
            self._unlist(model_id, endpoint)
        for model_id in now - before:
            self._holders.setdefault(model_id, []).append(endpoint)
        for model_id in now ^ before:
            if model_id in self.shared or len(self._holders.get(model_id, ())) > 1:
                self.changed[model_id] = None  # several holders now or before (one idle copy: nothing to decide)
            if len(self._holders.get(model_id, ())) > 1:
                self.shared.add(model_id)
            else:
                self.shared.discard(model_id)
        endpoint.indexed = listed

    def _unlist(self, model_id: str, endpoint: WorkerEndpoint,
                index: dict[str, list[WorkerEndpoint]] | None = None) -> None:
        index = self._holders if index is None else index
        listed = index.get(model_id)
        if listed is None:
            return
        try:
            listed.remove(endpoint)
        except ValueError:
            pass
        if not listed:
            del index[model_id]

    def index_loading(self, endpoint: WorkerEndpoint, before: frozenset[str], now: frozenset[str]) -> None:
        """One worker's loads in flight (from its heartbeat) replaced: keep the index of them per model."""
        for model_id in before - now:
            self._unlist(model_id, endpoint, self._loading)
        for model_id in now - before:
            self._loading.setdefault(model_id, []).append(endpoint)

    def _is_active(self, load: ModelLoad) -> bool:
        return load.outstanding > self.active_load or load.outstanding_low > self.active_load

    def track_active(self, before: Mapping[str, ModelLoad], after: Mapping[str, ModelLoad]) -> None:
        """One worker's heartbeat entries replaced: keep the count of busy copies per model."""
        for model_id, load in before.items():
            if self._is_active(load):
                left = self.active.get(model_id, 1) - 1
                if left > 0:
                    self.active[model_id] = left
                else:
                    self.active.pop(model_id, None)
        for model_id, load in after.items():
            if self._is_active(load):
                self.active[model_id] = self.active.get(model_id, 0) + 1

    def track_fresh(self, endpoint: WorkerEndpoint, loads: Mapping[str, ModelLoad], interval_s: float) -> None:
        """One worker's heartbeat entries replaced: keep the count of copies per model measured over less than the
        first window (as ``placement`` judges a copy's coverage: its measurement plus half an interval)."""
        window = self._windows[0] if self._windows else None
        now = {} if window is None else dict.fromkeys(
            m for m, load in loads.items() if load.measured_seconds + 0.5 * interval_s < window)
        before = endpoint.fresh
        if now == before:
            return
        fresh = self._fresh
        for model_id in before.keys() - now.keys():
            left = fresh.get(model_id, 1) - 1
            if left > 0:
                fresh[model_id] = left
            else:
                fresh.pop(model_id, None)
        for model_id in now.keys() - before.keys():
            fresh[model_id] = fresh.get(model_id, 0) + 1
        endpoint.fresh = now

    def fresh_index(self, window_s: float) -> Mapping[str, int] | None:
        """``fresh_copies`` for every model at once (models with none left out); None where not counted."""
        if not self._windows or self._windows[0] != window_s:
            return None
        return self._fresh

    def fresh_copies(self, model_id: str, window_s: float) -> int | None:
        """Copies of the model, by heartbeat, measured over less than ``window_s`` (a bound from above: failed,
        draining workers and copies a call found gone count too); None where the view does not count for that
        window."""
        if not self._windows or self._windows[0] != window_s:
            return None
        return self._fresh.get(model_id, 0)

    def _figures(self, load: ModelLoad, interval_s: float) -> tuple:
        covered = sum(load.measured_seconds + 0.5 * interval_s >= w for w in self._windows)
        return (load.sha256, load.pinned, load.outstanding, load.outstanding_low, load.outstanding_high,
                load.requests_per_second, covered)

    def note_changes(self, before: Mapping[str, ModelLoad], after: Mapping[str, ModelLoad], interval_s: float) -> None:
        """One worker's heartbeat entries replaced: note the models whose figures planning reads changed."""
        changed, holders = self.changed, self._holders
        for model_id, load in after.items():
            earlier = before.get(model_id)
            if earlier is None:
                if self._is_active(load):
                    changed[model_id] = None
            elif (self._figures(load, interval_s) != self._figures(earlier, interval_s)
                  and (self._is_active(load) or self._is_active(earlier) or len(holders.get(model_id, ())) > 1)):
                changed[model_id] = None  # (a lone copy idle before and after: nothing to decide for it)
        for model_id in before.keys() - after.keys():
            if self._is_active(before[model_id]) or len(holders.get(model_id, ())) > 1:
                changed[model_id] = None

    def to_plan(self) -> set[str]:
        """The models copy planning needs to look at (besides floors): several holders, or a busy copy."""
        return self.shared | self.active.keys()

    def holding(self, model_id: str) -> list[WorkerEndpoint]:
        """Workers that hold some version of the model (any state: callers filter), from the index."""
        return self._holders.get(model_id, [])

    def loading(self, model_id: str) -> list[WorkerEndpoint]:
        """Workers whose last heartbeat says they are loading the model (any state: callers filter)."""
        return self._loading.get(model_id, [])

    def held_models(self) -> list[str]:
        return list(self._holders)

    # ---- the ring ------------------------------------------------------------------------------
    @property
    def ring(self) -> HashRing:
        if self._ring is None:
            self._ring = HashRing(tuple(self.endpoints), self._vnodes)
        return self._ring

    def walk(self, model_id: str) -> Iterator[WorkerEndpoint]:
        """Every worker once, the model's home first (consistent hashing), then its alternatives in order."""
        for address in self.ring.walk(model_id):
            endpoint = self.endpoints.get(address)
            if endpoint is not None:
                yield endpoint
