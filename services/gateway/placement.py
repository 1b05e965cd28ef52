"""Copies of models: when to place one more, when to release one, and where. Pure decisions.

The inputs are the workers' heartbeats (each copy's mean load over each past heartbeat interval,
published by the worker itself) and the floors ``AddModel(copies=N)`` stored in Redis, so every
gateway replica reading them reaches the same decisions, without a history of its own: a replica
started a second ago decides as one that ran for a day. Acting on a decision is idempotent (a
worker loads a model once; unloading twice unloads once), so replicas acting together do no harm.

- **Floor**: fewer copies than ``AddModel`` asked for: place one.
- **Hot**: every copy has been busier than ``up_load`` requests on average (its quietest heartbeat
  interval over ``up_window_s``, summed over copies, per copy) and there are fewer than
  ``max_copies``: place one. A copy placed a moment ago has not a full window yet, which holds the
  next decision back until the new copy's effect shows.
- **Saturated holders**: a worker has held more than ``up_load`` requests on average, all its models
  together (its quietest interval over ``up_window_s``), while another worker with room has held fewer
  than ``up_load`` throughout that window: place one copy of the model that loads the saturated worker
  most, if every holder of that model is saturated (else routing already moves its load to one with
  room), it has fewer than ``max_copies`` and it is busy enough not to be released as cold at once. A
  worker with a copy placed a moment ago (any of its models' copies without a full window) waits for
  its effect. So idle workers do not sit beside one busy with several models each below the threshold.
- **Cold**: over ``release_window_s`` the copies' busiest intervals, summed, would stay under
  ``release_load`` per copy with one copy fewer, and there are more than the floor (or one): release
  one. Also when there are more than ``max_copies``.

A new copy goes to the best worker by the placement order (room first, then the least busy), and
only to a worker with room or whose eviction victims are all colder than this model's copies (never
a pinned model, nor one kept by a floor). The copy released is the last holder by rendezvous hash,
the same on every replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.routing import Room, placement_order, rendezvous, room_for
from services.gateway.workers import WorkerEndpoint

Copy = tuple[WorkerEndpoint, ModelLoad]


@dataclass(frozen=True)
class CopyPolicy:
    max_copies: int = 3
    up_load: float = 4.0
    up_window_s: float = 10.0
    release_load: float = 0.5
    release_window_s: float = 60.0


@dataclass(frozen=True)
class Target:
    """A model the plan considers: its current version and who owns it."""

    model_id: str
    sha256: str
    workspace: str
    size_bytes: int = 0
    floor: int = 0  # copies AddModel asked to keep


@dataclass(frozen=True)
class CopyAction:
    kind: Literal["add", "release"]
    model_id: str
    endpoint: WorkerEndpoint
    reason: Literal["floor", "hot", "saturated", "cold", "surplus"]


def copies_of(endpoints: list[WorkerEndpoint], target: Target) -> list[Copy]:
    """The copies taking traffic, by heartbeat: this version, on workers in rotation and not draining."""
    out = []
    for endpoint in endpoints:
        load = endpoint.load_of(target.model_id)
        if load is not None and load.sha256 == target.sha256 and not endpoint.failed and not endpoint.draining:
            out.append((endpoint, load))
    return out


def _window(copy: Copy, window_s: float) -> list[float] | None:
    """The copy's mean loads over the last ``window_s`` (newest first), or None before it has them all."""
    endpoint, load = copy
    interval = endpoint.state.interval_seconds if endpoint.state is not None else 0.0
    needed = max(1, math.ceil(window_s / interval - 1e-9)) if interval > 0 else 1
    history = list(load.outstanding_history)
    return history[:needed] if len(history) >= needed else None


def is_hot(copies: list[Copy], policy: CopyPolicy) -> bool:
    windows = [_window(c, policy.up_window_s) for c in copies]
    if not copies or any(w is None for w in windows):
        return False
    return sum(min(w) for w in windows if w) / len(copies) > policy.up_load


def is_cold(copies: list[Copy], policy: CopyPolicy) -> bool:
    windows = [_window(c, policy.release_window_s) for c in copies]
    if len(copies) < 2 or any(w is None for w in windows):
        return False
    return sum(max(w) for w in windows if w) / (len(copies) - 1) < policy.release_load


def worker_window(endpoint: WorkerEndpoint, window_s: float) -> list[float] | None:
    """Requests inside the worker, all models together, over each interval of the last ``window_s`` (newest
    first); None before its heartbeats cover the window."""
    state = endpoint.state
    if state is None:
        return None
    interval = state.interval_seconds
    needed = max(1, math.ceil(window_s / interval - 1e-9)) if interval > 0 else 1
    histories = [list(m.outstanding_history) for m in state.models]
    if max((len(h) for h in histories), default=0) < needed:
        return None
    return [sum(h[i] for h in histories if len(h) > i) for i in range(needed)]


def _saturated(endpoint: WorkerEndpoint, policy: CopyPolicy) -> bool:
    window = worker_window(endpoint, policy.up_window_s)
    return window is not None and min(window) > policy.up_load


def _relief(endpoints: list[WorkerEndpoint], by_id: dict[str, Target], policy: CopyPolicy) -> set[str]:
    """Models to copy because their holders are saturated by everything they serve: one per such holder."""
    chosen: set[str] = set()
    for holder in sorted(endpoints, key=lambda e: e.label):
        if holder.failed or holder.draining or holder.state is None or not _saturated(holder, policy):
            continue
        held = [by_id[m.model_id] for m in holder.state.models if m.model_id in by_id]
        all_copies = {t.model_id: copies_of(endpoints, t) for t in held}
        if any(_window(c, policy.up_window_s) is None for copies in all_copies.values() for c in copies):
            continue  # a copy placed a moment ago: its effect has not shown yet
        own = []  # (the model's load on this holder over the window, model id)
        for target in held:
            mine = next((load for e, load in all_copies[target.model_id] if e is holder), None)
            if mine is not None:
                own.append((min(_window((holder, mine), policy.up_window_s) or [0.0]), target.model_id))
        if not own:
            continue
        _, model_id = max(own)  # only the model loading it most: copying a lighter one would barely help
        copies = all_copies[model_id]
        if len(copies) >= policy.max_copies or not all(_saturated(e, policy) for e, _ in copies):
            continue  # copied as far as it goes, or another holder has room (routing moves load there)
        windows = [w for c in copies if (w := _window(c, policy.up_window_s))]
        if sum(min(w) for w in windows) / len(copies) > policy.release_load:  # else released as cold at once
            chosen.add(model_id)
    return chosen


def _busiest(endpoint: WorkerEndpoint, room: Room, window_s: float) -> float:
    """The worker's busiest interval over the window (its last one where its heartbeats do not cover it yet)."""
    window = worker_window(endpoint, window_s)
    return max(window) if window else room.busy


def _target_for(endpoints: list[WorkerEndpoint], target: Target, copies: list[Copy], protected: set[str],
                taken: set[int], room_below: tuple[float, float] | None = None) -> WorkerEndpoint | None:
    """The best worker for one more copy; with ``room_below`` (load, window), only one that has held fewer
    requests than that load throughout the window."""
    holders = {id(e) for e, _ in copies}
    candidates = [e for e in endpoints
                  if id(e) not in holders and id(e) not in taken and not e.failed and not e.draining
                  and e.state is not None and e.load_of(target.model_id) is None]
    rate = sum(load.requests_per_second for _, load in copies) / max(1, len(copies))
    size = next((load.size_bytes for _, load in copies if load.size_bytes), target.size_bytes)

    def eligible(endpoint: WorkerEndpoint) -> bool:
        room = room_for(endpoint, size)
        if room is None or not room.fits:
            return False
        if room_below is not None and _busiest(endpoint, room, room_below[1]) >= room_below[0]:
            return False
        return all(v.requests_per_second < rate and v.model_id not in protected for v in room.victims)

    return next((e for e in placement_order(candidates, target.model_id, size) if eligible(e)), None)


def plan(endpoints: list[WorkerEndpoint], targets: list[Target], policy: CopyPolicy) -> list[CopyAction]:
    """At most one action per model, at most one new copy per worker; the same whatever order the lists are in."""
    targets = sorted(targets, key=lambda t: t.model_id)
    protected = {t.model_id for t in targets if t.floor}
    relief = _relief(endpoints, {t.model_id: t for t in targets}, policy)
    taken: set[int] = set()  # workers given a new copy in this round
    actions = []
    for target in targets:
        copies = copies_of(endpoints, target)
        floor = min(target.floor, policy.max_copies)
        grow: Literal["floor", "hot", "saturated"] | None = None
        if len(copies) < floor:
            grow = "floor"
        elif copies and len(copies) < policy.max_copies and is_hot(copies, policy):
            grow = "hot"
        elif target.model_id in relief:
            grow = "saturated"
        if grow is not None:
            room_below = (policy.up_load, policy.up_window_s) if grow == "saturated" else None
            endpoint = _target_for(endpoints, target, copies, protected - {target.model_id}, taken, room_below)
            if endpoint is not None:
                taken.add(id(endpoint))
                actions.append(CopyAction("add", target.model_id, endpoint, grow))
            continue
        shrink: Literal["cold", "surplus"] | None = None
        if len(copies) > policy.max_copies:
            shrink = "surplus"
        elif len(copies) > max(1, floor) and is_cold(copies, policy):
            shrink = "cold"
        releasable = [e for e, load in copies if not load.pinned]
        if shrink is not None and releasable:
            victim = max(releasable, key=lambda e: rendezvous(target.model_id, e))
            actions.append(CopyAction("release", target.model_id, victim, shrink))
    return actions
