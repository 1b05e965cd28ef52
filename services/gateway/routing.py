"""Whom a request goes to, and where a model goes when no worker holds it.

Among the workers holding the model (in rotation, not draining): power of two choices on
outstanding work (this gateway's calls in flight plus the others' from the heartbeat): two
holders at random, the less loaded first, then the rest by load for retries. Random pairs keep
several gateway replicas, each seeing slightly stale heartbeats, from all piling onto the one
worker that looked idlest. A request with an affinity key (promptable segmentation: its image) goes first
to the holder a rendezvous hash of model and key picks (``affinity_first``), where that image's cached
embedding most likely is; the other holders follow by load.

When none holds it, the placement order: workers with room for the model first (a free model slot
and bytes, from their heartbeats), then those whose eviction victims are coldest; ties go to the
less busy worker, then to a rendezvous hash of model and worker. Every gateway replica reading the
same heartbeats ranks the same way, so a cold model lands on one worker. Draining workers come last,
and only where they already hold the model; workers out of rotation after a failed call come after
everything else (never first: a dead worker costs a request nothing while others can serve).

When a round of attempts finds no worker that serves, the request waits ``retry_pauses`` (growing, with
jitter so requests that failed together do not come back together) and tries a fresh view.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.workers import WorkerEndpoint


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

    @property
    def hottest_victim(self) -> float:
        return max((v.requests_per_second for v in self.victims), default=0.0)


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
    busy = round(sum(m.outstanding_history[0] for m in state.models if m.outstanding_history), 1)
    return Room(not over(), tuple(victims), max(0, state.max_models - len(state.models)), busy)


def placement_order(endpoints: list[WorkerEndpoint], model_id: str, size_bytes: int) -> list[WorkerEndpoint]:
    """``endpoints`` best first for a model none of them holds."""

    def key(endpoint: WorkerEndpoint) -> tuple:
        room = room_for(endpoint, size_bytes)
        if room is None:
            tier, heat, busy, slots = 1, 0.0, 0.0, 0
        else:
            tier = 0 if room.fits and not room.victims else 2 if room.fits else 3
            heat, busy, slots = room.hottest_victim, room.busy, room.free_slots
        return tier, heat, busy, -slots, rendezvous(model_id, endpoint)

    return sorted(endpoints, key=key)


def least_loaded_first(holders: list[WorkerEndpoint], rng: random.Random) -> list[WorkerEndpoint]:
    """Power of two choices: of two holders drawn at random the less loaded, the other, then the rest by load."""
    n = len(holders)
    if n <= 1:
        return list(holders)
    i, j = rng.randrange(n), rng.randrange(n - 1)
    a, b = holders[i], holders[j + (j >= i)]  # two distinct holders
    pair = [a, b] if a.outstanding() <= b.outstanding() else [b, a]
    if n == 2:
        return pair
    return pair + sorted((h for h in holders if h is not a and h is not b), key=WorkerEndpoint.outstanding)


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


def size_hint(endpoints: list[WorkerEndpoint], model_id: str, declared_bytes: int) -> int:
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


def attempts(endpoints: list[WorkerEndpoint], model_id: str, sha256: str, declared_bytes: int,
             rng: random.Random, affinity: str = "") -> Iterator[Attempt]:
    """Workers to try for one request, in order (failed workers are not in rotation). Lazy: the placement
    order is only worked out when every holder has been tried. ``affinity``: the request's key for
    ``affinity_first`` (empty: holders by load)."""
    holders = [e for e in endpoints if not e.failed and e.holds(model_id, sha256)]
    serving = [e for e in holders if not e.draining]
    for endpoint in affinity_first(serving, model_id, affinity, rng) if affinity else least_loaded_first(serving, rng):
        yield Attempt(endpoint, True)
    # Worked out now, after the holders' answers: one that found its copy gone is a place to load it again.
    live = [e for e in endpoints if not e.failed]
    others = [e for e in live if not e.draining and not e.holds(model_id, sha256)]
    for endpoint in placement_order(others, model_id, size_hint(live, model_id, declared_bytes)):
        yield Attempt(endpoint, False)
    for endpoint in holders:
        if endpoint.draining and endpoint.holds(model_id, sha256):
            yield Attempt(endpoint, True)
    # Last resort, when nothing in rotation could serve: workers out of rotation after a failed call (a lone
    # worker's one dropped connection must not fail every request until its next heartbeat).
    for endpoint in endpoints:
        if endpoint.failed:
            yield Attempt(endpoint, False)
