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
from services.gateway.routing import placement_order, rendezvous, room_for
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
    reason: Literal["floor", "hot", "cold", "surplus"]


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


def _target_for(endpoints: list[WorkerEndpoint], target: Target, copies: list[Copy],
                protected: set[str]) -> WorkerEndpoint | None:
    holders = {id(e) for e, _ in copies}
    candidates = [e for e in endpoints
                  if id(e) not in holders and not e.failed and not e.draining and e.state is not None
                  and e.load_of(target.model_id) is None]
    rate = sum(load.requests_per_second for _, load in copies) / max(1, len(copies))
    size = next((load.size_bytes for _, load in copies if load.size_bytes), target.size_bytes)

    def eligible(endpoint: WorkerEndpoint) -> bool:
        room = room_for(endpoint, size)
        if room is None or not room.fits:
            return False
        return all(v.requests_per_second < rate and v.model_id not in protected for v in room.victims)

    return next((e for e in placement_order(candidates, target.model_id, size) if eligible(e)), None)


def plan(endpoints: list[WorkerEndpoint], targets: list[Target], policy: CopyPolicy) -> list[CopyAction]:
    """At most one action per model."""
    protected = {t.model_id for t in targets if t.floor}
    actions = []
    for target in targets:
        copies = copies_of(endpoints, target)
        floor = min(target.floor, policy.max_copies)
        grow: Literal["floor", "hot"] | None = None
        if len(copies) < floor:
            grow = "floor"
        elif copies and len(copies) < policy.max_copies and is_hot(copies, policy):
            grow = "hot"
        if grow is not None:
            endpoint = _target_for(endpoints, target, copies, protected - {target.model_id})
            if endpoint is not None:
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
