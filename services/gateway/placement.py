"""Copies of models: how many each needs, where a new one goes, which one to release. Pure decisions.

The inputs are the workers' heartbeats, as summaries (per copy: its mean load over the last interval, the
lowest over the worker's load window, the highest over its release window, how long it has been measured;
see ``model_worker.state``) and the floors ``AddModel(copies=N)`` stored in Redis, so every gateway replica
reading them reaches the same decisions without a history of its own. Acting on a decision is idempotent (a
worker loads a model once; unloading twice unloads once), so replicas acting together do no harm.

- **Floor**: fewer copies than ``AddModel`` asked for: place the missing ones.
- **Demand**: the copies follow the model's load against what one copy should carry (``up_load`` requests
  inside at once): ``ceil(sum of the copies' loads / up_load)`` copies, up to ``max_copies`` (0: every worker).
  A copy's load counts as its own demand by its share of its worker's (``own_low``: squared over the worker's):
  on a worker busy with several models every model's requests wait behind the others', so a model that is one
  of many there is not copied for a queue it did not make (``relief`` answers that worker's load).
  A sustained load (each copy's quietest interval over ``up_window_s``) adds the missing copies at once; a
  load plainly over capacity (the last interval above ``surge`` times ``up_load`` per copy) adds them without
  waiting for a window, so the hottest models reach the copies they need in a few seconds. Copies being
  loaded (``pending``) count as copies.
  By rate (``rate_up``): a model whose copies take more than ``rate_up`` times the mean worker's requests per
  second each, over their last interval (measured over the load window), gets copies enough to bring that to
  ``rate_to`` times the mean: a lone holder of a hot model at ~90 % busy is often between queues, under every
  requests-inside rule, and is the fleet's busiest worker (max / mean requests per worker, issue 30). A copy's
  requests are weighed by what they cost its worker (``copy_demand.rate_by_cost``: a 3 ms classifier's many
  requests beside a 30 ms segmenter count for less than the segmenter's few). Not while a holder is saturated
  (below): that rule copies the worker's heaviest model. Never
  more copies than the release rule below would keep (their busiest intervals' load summed, over
  ``release_load`` each but one): in a quiet fleet a model can take most of the requests yet little load.
  And none where the copies never held more than one request each at their busiest interval: a lone caller
  of a fast model makes many requests a second, one at a time, and a copy would serve none of them sooner.
- **Saturated holders**: a worker has held more than ``up_load`` requests on average, all its models
  together, throughout ``up_window_s``, while another worker with room has not: place one copy of the model
  that loads the saturated worker most, if every holder of that model is saturated (else routing already
  moves its load to one with room) and it is busy enough not to be released as cold at once. It waits while
  a copy of one of the worker's models placed elsewhere is new (its effect not shown yet), not for models
  just loaded on the worker itself (on a worker whose other slots turn over, one always is).
- **Cold**: over ``release_window_s`` the copies' busiest intervals, summed, would stay under
  ``release_load`` per copy with one copy fewer, and there are more than the floor (or one): release one.
  Also when there are more than ``max_copies``. ``up_load`` well above ``release_load`` and the long release
  window are the hysteresis: a copy added is not released while its demand lasts.

The rules of demand (how many copies; when one is too many) are in ``copy_demand``; this module decides which
models to look at, where a new copy goes and which copy goes. Only models that could need an action are looked
at (more than one copy, a floor, or a copy busier than ``release_load``, from the holder index), and a model
that needed a copy no worker could take is not looked at again until its copies' heartbeats change: planning
costs what the busy models cost, not the fleet. With a ``Backlog`` (kept by the caller from step to step) it is
incremental and bounded: a step looks only at the models whose copies changed since (``FleetView.changed``:
figures, holders, windows covered), at most ``Backlog.budget`` of them, oldest first; the rest wait for the
next step (floors and relief are looked at every step). A new copy goes to the best of the model's homes on
the hash ring (``routing.homes``: room first, then the coldest victims), only to a worker whose eviction
victims are all colder than this model's copies (never a pinned model, nor one kept by a floor), and with at
most ``COPY_LOADS_AT_MOST`` loads under way or waiting there (behind a long load queue a copy landed minutes
later, for demand that had moved, and was evicted before it served). The copy released
is the newest (measured for the fewest release windows: a copy placed to stand in for a holder whose
heartbeat was late goes, and the copies ``AddModel`` reported stay), then the last by rendezvous hash: the
same on every replica. A worker whose heartbeat is late (``grace``) keeps its copies counted, but its stale
figures decide nothing of its own: no copy is placed on it or released from it, and it is not read as
saturated.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from services.gateway.copy_demand import Copy, CopyPolicy, by_rate, covers, is_cold, wanted
from services.gateway.routing import homes, rendezvous, room_for
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView

# Workers examined for one new copy, along the model's ring: where the fleet's load threads are busy most of the
# time, 8 often found none with a short load queue and the hottest models stayed short of copies.
CANDIDATES_LOOKED_AT = 32
COPY_LOADS_AT_MOST = 2  # a new copy goes only to a worker with at most this many loads under way or waiting


@dataclass(frozen=True)
class Target:
    """A model the plan considers: its current version and who owns it."""

    model_id: str
    sha256: str
    workspace: str
    size_bytes: int = 0
    floor: int = 0  # copies AddModel asked to keep


@dataclass
class Backlog:
    """Incremental planning's memory, kept by the caller from step to step: the models still to look at."""

    budget: int = 1000  # models looked at in one step at most (floors and relief besides)
    examined_per_looked: int = 20  # and at most this many times as many changed ones examined (quiet ones dropped)
    waiting: OrderedDict[str, None] = field(default_factory=OrderedDict)  # oldest first
    relief_holders: int = 100  # saturated holders examined in one step at most, taking turns
    relief_turn: int = 0
    # Seconds one step may spend deciding (by ``clock``): the models it has not reached by then wait for the next
    # step, first in line (a model's cost grows with its copies: a count alone does not bound the step).
    seconds: float = 0.05
    clock: Callable[[], float] = time.perf_counter
    looked_at: int = 0  # in the last step
    deferred: int = 0  # left for a later step by the last one
    out_of_time: int = 0  # of those, taken but not reached in the last step's time

    def put_back(self, model_ids: list[str]) -> None:
        """Models a step took but did not reach: first in line for the next one."""
        waiting = self.waiting
        for model_id in reversed(model_ids):  # (an ordered dict: each put first in O(1), not the backlog rebuilt)
            waiting[model_id] = None
            waiting.move_to_end(model_id, last=False)
        self.out_of_time = len(model_ids)
        self.looked_at -= len(model_ids)
        self.deferred += len(model_ids)

    def take(self, view: FleetView, targets: Mapping[str, Target], policy: CopyPolicy) -> set[str]:
        """Up to ``budget`` changed models that could need an action: those with a busy copy first, the most busy
        copies first (at thousands of workers a step cannot reach them all), then the others oldest first (quiet
        ones are dropped as they come)."""
        waiting = self.waiting
        for model_id in view.changed:
            waiting[model_id] = None
        view.changed.clear()
        taken: set[str] = set()
        active = view.active
        for model_id in heapq.nlargest(self.budget, (m for m in active if m in waiting), key=active.__getitem__):
            del waiting[model_id]
            if model_id in targets:
                taken.add(model_id)
        examined, most = 0, self.budget * self.examined_per_looked
        while waiting and len(taken) < self.budget and examined < most:
            model_id, _ = waiting.popitem(last=False)  # (a dict's first entry, deleted, is found again in O(deleted))
            examined += 1
            target = targets.get(model_id)
            if target is not None and not _quiet(view, target, policy, set()):
                taken.add(model_id)
        self.looked_at, self.deferred, self.out_of_time = len(taken), len(waiting), 0
        return taken


@dataclass(frozen=True)
class CopyAction:
    kind: Literal["add", "release"]
    model_id: str
    endpoint: WorkerEndpoint
    reason: Literal["floor", "hot", "saturated", "cold", "surplus"]


def copies_of(view: FleetView, target: Target) -> list[Copy]:
    """The copies taking traffic, by heartbeat: this version, on workers in rotation and not draining (those
    whose heartbeat is late within their grace included: ``grace``)."""
    out = []
    for endpoint in view.holding(target.model_id):
        load = endpoint.load_of(target.model_id)
        if load is not None and load.sha256 == target.sha256 and endpoint.takes_work:
            out.append((endpoint, load))
    return out


def _newest(model_id: str, copies: list[Copy], policy: CopyPolicy) -> WorkerEndpoint:
    """The copy to release: the one measured for the fewest whole release windows (its age, in steps coarse
    enough that replicas reading heartbeats a moment apart agree), then the last by rendezvous hash."""
    window = max(policy.release_window_s, 1.0)
    return max(copies, key=lambda c: (-int(c[1].measured_seconds // window), rendezvous(model_id, c[0])))[0]


def _worker_covers(endpoint: WorkerEndpoint, window_s: float) -> bool:
    state = endpoint.state
    if state is None:
        return False
    return endpoint.measured_seconds + 0.5 * state.interval_seconds >= window_s


def _saturated(endpoint: WorkerEndpoint, policy: CopyPolicy) -> bool:
    state = endpoint.state
    return (state is not None and not endpoint.late and state.outstanding_low > policy.up_load
            and _worker_covers(endpoint, policy.up_window_s))


RELIEF_SHARE = 0.5  # of a step's time (``Backlog.seconds``), what relief may spend before the models' own turn


class _NewCopies:
    """Per model, its copies not measured over the load window yet, worked out once per planning step: a hot
    model's hundreds of copies are walked once, not once for every saturated holder of it (at 2,000 workers x 64
    models that walk was a third of relief's time and relief most of a step's, outside the step's time bound)."""

    def __init__(self, view: FleetView, policy: CopyPolicy) -> None:
        self._view, self._window = view, policy.up_window_s
        self._new: dict[str, list[WorkerEndpoint]] = {}

    def elsewhere(self, holder: WorkerEndpoint, target: Target) -> bool:
        """A copy of the model on another worker than ``holder`` not measured over the load window yet."""
        new = self._new.get(target.model_id)
        if new is None:
            new = self._new[target.model_id] = [
                c[0] for c in copies_of(self._view, target) if not covers(c, self._window)]
        return any(endpoint is not holder for endpoint in new)


def _relief(view: FleetView, by_id: Mapping[str, Target], policy: CopyPolicy, backlog: Backlog | None = None,
            began: float | None = None) -> set[str]:
    """Models to copy because their holders are saturated by everything they serve: one per such holder (with
    a backlog, ``backlog.relief_holders`` holders a step at most, and within ``RELIEF_SHARE`` of the step's time,
    taking turns: the holders not reached come first in the next step). A holder costs its own models
    (from its heartbeat, and the view's count of new copies per model: only a model it counts some for has its
    copies walked), plus the copies of the one model it would shed, worked out once per model in a step however
    many holders shed it."""
    chosen: set[str] = set()
    clock, until = None, 0.0  # relief's share of the step: the step's start (``plan`` passes it) plus that share
    if backlog is not None:
        clock = backlog.clock
        until = (clock() if began is None else began) + RELIEF_SHARE * backlog.seconds
    saturated = sorted((e for e in view.all() if e.takes_work and _saturated(e, policy)),
                       key=lambda e: e.label)
    start = 0
    if backlog is not None and saturated:
        start = backlog.relief_turn % len(saturated)
        saturated = (saturated + saturated)[start:start + min(len(saturated), backlog.relief_holders)]
        backlog.relief_turn = start + len(saturated)
    fresh = view.fresh_index(policy.up_window_s)  # (None: not counted for this window; walk every model's copies)
    decided: dict[str, bool] = {}  # model id -> whether to copy it (the same for every holder shedding it)
    new_copies = _NewCopies(view, policy)
    for n, holder in enumerate(saturated):
        if n and clock is not None and clock() > until and backlog is not None:
            backlog.relief_turn = start + n  # out of its share of the step: the rest first in the next step
            break
        own = []
        settled = True
        for model_id, load in holder.loads.items():
            if model_id not in by_id:
                continue
            target = by_id[model_id]
            # A copy elsewhere of one of its models, placed a moment ago, has not shown its effect yet. (Copies
            # elsewhere only: a model just loaded here moves no load off the holder, and on a worker whose other
            # slots turn over some model is always new: waiting for those would wait for ever.) The view's count
            # is a bound from above (failed and draining workers' copies count too): where it leaves none
            # elsewhere there is none; else the copies decide.
            if ((fresh is None or fresh.get(model_id, 0) > (model_id in holder.fresh))
                    and new_copies.elsewhere(holder, target)):
                settled = False
                break
            if model_id not in holder.gone and load.sha256 == target.sha256:
                own.append((load.outstanding_low, model_id))
        if not settled or not own:
            continue
        _, model_id = max(own)  # only the model loading it most: copying a lighter one would barely help
        if model_id not in decided:
            decided[model_id] = _sheds(copies_of(view, by_id[model_id]), policy)
        if decided[model_id]:
            chosen.add(model_id)
    return chosen


def _sheds(copies: list[Copy], policy: CopyPolicy) -> bool:
    """Whether a saturated holder's busiest model gets a further copy: measured over the window on every holder
    (itself new here: its load is not known yet), not copied as far as it goes, every holder saturated (else
    routing moves load to the one with room), and busy enough not to be released as cold at once."""
    if not all(covers(c, policy.up_window_s) for c in copies):
        return False
    if (policy.max_copies and len(copies) >= policy.max_copies) or not all(_saturated(e, policy) for e, _ in copies):
        return False
    return sum(load.outstanding_low for _, load in copies) / len(copies) > policy.release_load


def _target_for(view: FleetView, target: Target, copies: list[Copy], protected: set[str], taken: set[int],
                room_below: float | None = None, added: int = 0) -> WorkerEndpoint | None:
    """The best worker for one more copy, along the model's ring; with ``room_below``, only one whose load was
    below that both over its last interval and sustained (its quietest interval over the load window).
    ``added``: copies of the model this round has added already."""
    skip = {id(e) for e, _ in copies} | taken
    rate = sum(load.requests_per_second for _, load in copies) / max(1, len(copies))
    size = next((load.size_bytes for _, load in copies if load.size_bytes), target.size_bytes)

    def eligible(endpoint: WorkerEndpoint) -> bool:
        if endpoint.state is None or endpoint.late or endpoint.load_of(target.model_id) is not None:
            return False
        room = room_for(endpoint, size)
        if room is None or not room.fits or room.loads > COPY_LOADS_AT_MOST:
            return False  # (behind a long load queue a copy lands minutes later, for demand that has moved)
        if room_below is not None and max(endpoint.state.outstanding_low, room.busy) >= room_below:
            return False
        return all(v.requests_per_second < rate and v.model_id not in protected for v in room.victims)

    # The walk starts at a point of its own for each number of copies (the same on every replica): the model's
    # own walk leads with the workers its copies were placed on, so with hundreds of copies every new one
    # would first pass over all of them (planning cost growing with the copies, squared for a burst of adds).
    start = f"{target.model_id}#{len(copies) + added}" if copies or added else ""
    looked_at = itertools.islice(homes(view, target.model_id, size, skip=skip, start=start), CANDIDATES_LOOKED_AT)
    return next((e for e in looked_at if eligible(e)), None)


def _quiet(view: FleetView, target: Target, policy: CopyPolicy, relief: set[str]) -> bool:
    """Nothing to decide, seen from the holder index alone: no floor, one holder at most, and not busy."""
    if target.floor or target.model_id in relief:
        return False
    holders = view.holding(target.model_id)
    if len(holders) > 1:
        return False
    load = holders[0].load_of(target.model_id) if holders else None
    return load is None or (load.outstanding <= policy.release_load and load.outstanding_low <= policy.release_load)


def _signature(copies: list[Copy], pending: int) -> tuple:
    return tuple(sorted((e.address, e.sequence) for e, _ in copies)) + (pending,)


def plan(view: FleetView, targets: Iterable[Target] | Mapping[str, Target], policy: CopyPolicy,
         pending: Mapping[str, int] | None = None, unplaced: dict[str, tuple] | None = None,
         backlog: Backlog | None = None, floors: Collection[str] | None = None) -> list[CopyAction]:
    """The actions for this round: any number of new copies per model (one per worker in a round), at most one
    release; the same whatever order the lists are in. ``targets``: the models to consider, or a mapping from
    model id to them (looked up only for the models planning looks at). ``pending``: copies of a model being
    loaded now. ``unplaced`` (kept by the caller from round to round): models that needed a copy no worker
    could take, not looked at again until one of their copies' heartbeats changes. ``backlog``: incremental
    and bounded planning (see the module), within ``backlog.seconds``: floors first, then the models the
    relief asks for, then the busy ones, the most busy copies first. ``floors``: the models with a floor, where
    ``targets`` is a mapping too large to scan for them."""
    began = backlog.clock() if backlog is not None else 0.0
    pending = pending or {}
    unplaced = {} if unplaced is None else unplaced
    by_id: Mapping[str, Target] = targets if isinstance(targets, Mapping) else {t.model_id: t for t in targets}
    protected = set(floors) if floors is not None else {m for m, t in by_id.items() if t.floor}
    relief = _relief(view, by_id, policy, backlog, began)
    candidates = backlog.take(view, by_id, policy) if backlog is not None else view.to_plan()
    look = [m for m in candidates | protected | relief if m in by_id]
    active = view.active

    def rank(t: Target) -> tuple:
        m = t.model_id
        return m not in protected, m not in relief, -active.get(m, 0), m

    targets = sorted((by_id[m] for m in look if not _quiet(view, by_id[m], policy, relief)), key=rank)
    limit = policy.max_copies or len(view.endpoints)
    mean_rate = view.mean_rate
    taken: set[int] = set()  # workers given a new copy in this round
    actions = []

    def rated(copies: list[Copy], loading: int) -> int:
        """Copies by rate, none while a holder is saturated (the saturated-holder rule copies its heaviest)."""
        if any(_saturated(e, policy) for e, _ in copies):
            return 0
        return by_rate(copies, policy, mean_rate, loading)

    def over_time(n: int) -> bool:
        """Out of the step's time: the models from the ``n``-th on wait for the next step."""
        if backlog is None or backlog.clock() - began <= backlog.seconds:
            return False
        backlog.put_back([t.model_id for t in targets[n:] if t.model_id in candidates])
        return True

    for n, target in enumerate(targets):
        if over_time(n):
            break
        copies = copies_of(view, target)
        loading = pending.get(target.model_id, 0)
        signature = _signature(copies, loading)
        if unplaced.get(target.model_id) == signature:
            continue
        unplaced.pop(target.model_id, None)
        have = len(copies) + loading
        floor = min(target.floor, limit)
        grow: Literal["floor", "hot", "saturated"] | None = None
        want = 0
        if have < floor:
            grow, want = "floor", floor
        elif copies and have < limit and (demand := max(wanted(copies, policy, loading), rated(copies, loading))) > have:
            grow, want = "hot", min(demand, limit)
        elif target.model_id in relief and have < limit and not loading:
            grow, want = "saturated", have + 1
        if grow is not None:
            room_below = policy.up_load if grow == "saturated" else None
            placed = list(copies)
            for i in range(want - have):
                if i and over_time(n):  # (the copies added so far count as pending in the next step)
                    return actions
                endpoint = _target_for(view, target, placed, protected - {target.model_id}, taken, room_below, i)
                if endpoint is None:
                    unplaced[target.model_id] = signature
                    break
                taken.add(id(endpoint))
                actions.append(CopyAction("add", target.model_id, endpoint, grow))
            continue
        shrink: Literal["cold", "surplus"] | None = None
        if len(copies) > limit:
            shrink = "surplus"
        elif len(copies) > max(1, floor) and is_cold(copies, policy):
            shrink = "cold"
        releasable = [c for c in copies if not c[1].pinned and not c[0].late]
        if shrink is not None and releasable:
            actions.append(CopyAction("release", target.model_id, _newest(target.model_id, releasable, policy), shrink))
    return actions
