"""Whom a request goes to, and where a model goes when no worker holds it. Pure decisions over a ``FleetView``.

**Holders** (in rotation, not draining), from the view's index of holders per model, so the cost does not
grow with the fleet: power of two choices on outstanding work (this gateway's calls in flight plus the
others' from the heartbeat): two holders drawn by the model's shares (``spread``: a holder busy with other
models is drawn less, so each holder's total evens out; evenly where no rate is known), the less loaded first,
then the rest by load for retries. Random pairs keep several gateway replicas, each seeing slightly stale
heartbeats, from all piling onto the one worker that looked idlest.
A request with an affinity key (promptable segmentation: its image) goes first to the holder a rendezvous hash
of model and key picks (``affinity_first``), where that image's cached embedding most likely is; the other
holders follow by load.

**A load in flight**: when some gateway has already placed the model on a worker and the load is under way
(a placement record, see ``gateway``), that worker comes next: the request joins the load there (the worker
loads a model once however many requests ask) instead of starting another elsewhere. So do the workers whose
heartbeat lists the model among the loads requests started (``models_loading``) in ``LISTED_LOAD_BEATS`` + 1
heartbeats, where no holder is left: a record lives for one request's deadline and is shortened once its load
is done, while a load can wait in a long load queue for longer, or start again where the model was evicted as
soon as it loaded (a request that joined late loads it there anew). Not sooner: a fresh load is what the
record covers, and sending every request to every listed load piled them behind long load queues. (Where
holders are left, their queues were full: a further copy, not a wait.)

**Placement** (no holder): the model's homes on a consistent-hash ring of the workers' addresses, the same on
every gateway whoever asks and whenever, with bounded load: a worker busier than ``LOAD_SHARE`` times the
fleet's mean (plus one request), or taking more than ``RATE_SHARE`` times the mean worker's requests per second
(a steadier figure than the requests inside at one interval: it keeps a lone holder of a hot model, often
between queues when its heartbeat measures, from taking other models too), is passed over. Of the first
``PLACEMENT_CHOICES`` homes left, the one with room for the model (a free slot and bytes, from its heartbeat)
wins, else the one whose eviction victims are coldest, ties to ring order; then the rest of the ring for
retries, the busy ones last. That costs O(log N) plus a few workers looked at, not the whole fleet. Draining
workers come last, and only where they already hold the model; workers out of rotation after a failed call come
after everything else (never first: a dead worker costs a request nothing while others can serve). A worker whose
heartbeat is late (``grace``) is tried as a holder only after the holders with a fresh heartbeat, and placed on
after every worker in rotation.

When a round of attempts finds no worker that serves, the request waits ``retry_pauses`` (growing, with
jitter so requests that failed together do not come back together) and tries a fresh view.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.endpoint import WorkerEndpoint, lighter_first
from services.gateway.view import FleetView

PLACEMENT_CHOICES = 3
LISTED_LOAD_BEATS = 2  # a load listed in this many heartbeats more than its first: past what records cover
LOAD_SHARE = 1.25
RATE_SHARE = 1.25


@dataclass(frozen=True)
class Attempt:
    endpoint: WorkerEndpoint
    existing: bool  # an existing copy (the worker must not load it) rather than a placement


@dataclass(frozen=True)
class Room:
    """What loading a model on a worker would take, predicted from its heartbeat."""

    fits: bool  # False: not even evicting every unpinned model makes room
    victims: tuple[ModelLoad, ...]  # models its LRU would evict, least recently used first
    free_slots: int
    busy: float  # mean requests inside the worker over its last heartbeat interval
    loads: int = 0  # models being loaded there now

    @property
    def hottest_victim(self) -> float:
        return max((v.requests_per_second for v in self.victims), default=0.0)

    @property
    def victims_idle(self) -> float:
        """Seconds since the most recently used victim was last used (how cold the victims are)."""
        return min((v.idle_seconds for v in self.victims), default=float("inf"))


def rendezvous(model_id: str, endpoint: WorkerEndpoint) -> bytes:
    return hashlib.blake2b(f"{model_id}|{endpoint.label}".encode(), digest_size=8).digest()


def room_for(endpoint: WorkerEndpoint, size_bytes: int) -> Room | None:
    """None when the worker has published no heartbeat (nothing known)."""
    state = endpoint.state
    if state is None:
        return None
    count, loaded = len(state.models), state.loaded_bytes

    def over() -> bool:
        return count + 1 > state.max_models or bool(state.capacity_bytes and loaded + size_bytes > state.capacity_bytes)

    victims = []
    for model in state.models:  # least recently used first, as the worker's LRU evicts
        if not over():
            break
        if model.pinned:
            continue
        victims.append(model)
        count, loaded = count - 1, loaded - model.size_bytes
    return Room(not over(), tuple(victims), max(0, state.max_models - len(state.models)), round(state.outstanding, 1),
                state.loads_in_progress)


def _key(endpoint: WorkerEndpoint, size_bytes: int) -> tuple:
    room = room_for(endpoint, size_bytes)
    if room is None:
        return 1, 0, 0.0, 0.0, 0.0, 0
    tier = 0 if room.fits and not room.victims else 2 if room.fits else 3
    return KEY(tier, room)


def _key_default(tier: int, room: Room) -> tuple:
    return tier, room.hottest_victim, -room.victims_idle, room.loads, room.busy, -room.free_slots


KEY = _key_default


def over_share(endpoint: WorkerEndpoint, mean_busy: float, mean_rate: float = 0.0) -> bool:
    """Busier than its bounded-load share of the fleet's work: more requests inside than ``LOAD_SHARE`` times the
    mean (plus one), or more requests a second than ``RATE_SHARE`` times the mean worker's."""
    return endpoint.busy > LOAD_SHARE * mean_busy + 1.0 or (mean_rate > 0.0 and endpoint.rate > RATE_SHARE * mean_rate)


def _within_share(walk: Iterator[WorkerEndpoint], view: FleetView, skip: set[int] | None,
                  busy: list[WorkerEndpoint], late: list[WorkerEndpoint]) -> Iterator[WorkerEndpoint]:
    """The workers of ``walk`` to place on in ring order; those over their share go to ``busy`` and those whose
    heartbeat is late (``grace``) to ``late`` as the walk passes them; failed, draining and ``skip``ped ones
    (ids) are left out."""
    mean_busy, mean_rate = view.mean_busy, view.mean_rate
    for endpoint in walk:
        if not endpoint.takes_work or (skip and id(endpoint) in skip):
            continue
        if endpoint.late:
            late.append(endpoint)
        elif over_share(endpoint, mean_busy, mean_rate):
            busy.append(endpoint)
        else:
            yield endpoint


def homes(view: FleetView, model_id: str, size_bytes: int, skip: set[int] | None = None,
          choices: int | None = None, start: str = "") -> Iterator[WorkerEndpoint]:
    """Workers to place the model on, best first, lazily: the best of its first ``choices`` homes on the ring
    within their load share, the rest of the ring, then those over their share, then those whose heartbeat is
    late. Failed, draining and ``skip``ped workers (ids) are left out. ``start``: walk the ring from this key's
    point instead of the model's (copy planning: see ``placement._target_for``)."""
    busy: list[WorkerEndpoint] = []
    late: list[WorkerEndpoint] = []
    within = _within_share(view.walk(start or model_id), view, skip, busy, late)
    first = list(itertools.islice((((*_key(e, size_bytes), position), e) for position, e in enumerate(within)),
                                  choices or PLACEMENT_CHOICES))
    for _, endpoint in sorted(first, key=lambda pair: pair[0]):
        yield endpoint
    yield from within  # the rest of the ring, only if retries get this far
    yield from busy
    yield from late


def least_loaded_first(holders: list[WorkerEndpoint], rng: random.Random) -> Iterator[WorkerEndpoint]:
    """Power of two choices: of two holders drawn at random the less loaded, the other, then the rest by load."""
    n = len(holders)
    if n <= 1:
        yield from holders
        return
    i, j = rng.randrange(n), rng.randrange(n - 1)
    a, b = holders[i], holders[j + (j >= i)]  # two distinct holders
    yield from lighter_first(a, b)
    if n > 2:  # sorted only when a retry needs it
        yield from sorted((h for h in holders if h is not a and h is not b), key=WorkerEndpoint.outstanding)


def two_choices(listed: list[WorkerEndpoint], usable: Callable[[WorkerEndpoint], bool],
                rng: random.Random, draws: int = 4) -> list[WorkerEndpoint] | None:
    """``least_loaded_first``'s pair without filtering every holder first: two distinct entries of ``listed``
    drawn at random until both are ``usable`` (at most ``draws`` tries), the less loaded first; [] or the one
    where fewer than two are listed; None where the draws found no such pair (then filter them all). A hot
    model has hundreds of holders: this costs two checks, not hundreds, for every request."""
    n = len(listed)
    if n <= 1:
        return [e for e in listed if usable(e)]
    for _ in range(draws):
        i, j = rng.randrange(n), rng.randrange(n - 1)
        a, b = listed[i], listed[j + (j >= i)]
        if usable(a) and usable(b):
            return lighter_first(a, b)
    return None


def affinity_first(holders: list[WorkerEndpoint], model_id: str, affinity: str,
                   rng: random.Random) -> list[WorkerEndpoint]:
    """The holder a rendezvous hash of (model, ``affinity``) picks, then the rest by load: every gateway replica
    sends requests with one affinity key (an image's prompts) to the same holder while the holders stay the same,
    so what that worker keeps for the key (the image's embedding) is found there."""
    if len(holders) <= 1:
        return list(holders)
    key = f"{model_id}|{affinity}"
    first = max(holders, key=lambda e: rendezvous(key, e))
    return [first, *least_loaded_first([h for h in holders if h is not first], rng)]


def size_hint(endpoints: Iterable[WorkerEndpoint], model_id: str, declared_bytes: int) -> int:
    """The model's measured footprint where some worker holds it, else its declared weights size."""
    for endpoint in endpoints:
        load = endpoint.load_of(model_id)
        if load is not None and load.size_bytes:
            return load.size_bytes
    return declared_bytes


RETRY_PAUSE_FIRST_S, RETRY_PAUSE_MAX_S = 0.05, 0.5


def retry_pauses(rng: random.Random) -> Iterator[float]:
    """Pauses between rounds of attempts: 50 ms doubling to 0.5 s, each drawn between half and all of that."""
    pause = RETRY_PAUSE_FIRST_S
    while True:
        yield pause * (0.5 + rng.random() / 2)
        pause = min(pause * 2, RETRY_PAUSE_MAX_S)


def _by_load(view: FleetView, model_id: str, usable: Callable[[WorkerEndpoint], bool],
             tried: list[WorkerEndpoint]) -> Iterator[WorkerEndpoint]:
    yield from sorted((e for e in view.holding(model_id) if e not in tried and usable(e)),
                      key=WorkerEndpoint.outstanding)


def attempts(view: FleetView, model_id: str, sha256: str, declared_bytes: int, rng: random.Random,
             loading: WorkerEndpoint | None = None, affinity: str = "") -> Iterator[Attempt]:
    """Workers to try for one request, in order (failed workers are not in rotation); ``loading``: the worker a
    placement record says is loading the model now; ``affinity``: the request's key for ``affinity_first``
    (empty: holders by load). Lazy: placement is only worked out when every holder has been tried."""
    def usable(e: WorkerEndpoint) -> bool:
        return not e.late and e.serves(model_id, sha256)

    listed = view.holding(model_id)
    pair = None
    if not affinity:  # drawn by the holders' shares (``spread``), else evenly
        pair = view.spread.pair(model_id, listed, usable, rng)
        if pair is None:
            pair = two_choices(listed, usable, rng)
    if pair is None:
        serving = [e for e in listed if usable(e)]
        order = affinity_first(serving, model_id, affinity, rng) if affinity else least_loaded_first(serving, rng)
    else:  # the rest by load, worked out only where a retry gets this far
        order = itertools.chain(pair, _by_load(view, model_id, usable, pair))
    for endpoint in order:
        yield Attempt(endpoint, True)
    # Holders whose heartbeat is late (``grace``): only once no holder with a fresh one is left to try (a copy
    # there still beats loading a new one; one that does not answer is marked failed and tried no more).
    yield from (Attempt(e, True) for e in _by_load(view, model_id, lambda e: e.late and e.serves(model_id, sha256), []))
    tried: set[int] = set()
    if loading is not None and loading.takes_work:
        tried.add(id(loading))
        yield Attempt(loading, False)  # wait for the load already under way there
    # Loads the workers' heartbeats list, however old their record, where no holder is left: where one is (its
    # queue was full), the new copy is an overflow, not a wait behind a load that its requests would overfill.
    if not any(usable(e) for e in view.holding(model_id)):
        for endpoint in view.loading(model_id):
            if (id(endpoint) not in tried and endpoint.takes_work
                    and endpoint.loading_for(model_id) >= LISTED_LOAD_BEATS):
                tried.add(id(endpoint))
                yield Attempt(endpoint, False)
    # Worked out now, after the holders' answers: one that found its copy gone is a place to load it again.
    size = size_hint(view.holding(model_id), model_id, declared_bytes)
    placed = {id(e) for e in view.holding(model_id) if e.holds(model_id, sha256)} | tried
    for endpoint in homes(view, model_id, size, skip=placed):
        yield Attempt(endpoint, False)
    for endpoint in list(view.holding(model_id)):
        if not endpoint.failed and endpoint.draining and endpoint.holds(model_id, sha256):
            yield Attempt(endpoint, True)
    # Last resort, when nothing in rotation could serve: workers out of rotation after a failed call (a lone
    # worker's one dropped connection must not fail every request until its next heartbeat).
    for endpoint in view.all():
        if endpoint.failed:
            yield Attempt(endpoint, False)
