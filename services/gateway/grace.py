"""A worker whose heartbeat is late: who stays in the view, who is routable, whose copies count. Free of I/O.

A worker's heartbeat record expires three of its intervals after its last beat; a beat can be late without the
worker being gone (a loaded host, a long pause, Redis slow to take the write). Forgetting such a worker at once
dropped all its copies from every gateway's view: floors (``AddModel(copies=N)``) and the copies controller
placed stand-ins elsewhere, released again once it came back.

So a worker whose record is missing keeps its last state for ``grace_s`` more seconds (from the moment this
gateway first found the record missing), marked **late** (``WorkerEndpoint.late_since``):

- its copies still count as copies (floors, demand, ``AddModel``): no stand-in is placed while it is late;
- routing sends it no new request while a holder with a fresh heartbeat is left: its late holders come right
  after the fresh ones (a copy there beats loading a new one), and it is placed on last;
- copy planning neither places a copy on it, releases one of its copies nor reads it as saturated (its figures
  are stale).

No grace for a worker known to be gone: one a call marked failed (a connection error: routing already failed
over, at once), one whose last heartbeat said it was draining (it is leaving), or one superseded (its worker id
publishes from another address: a restarted instance). Nor with ``grace_s`` 0. After the grace the worker is
forgotten as before (its state dropped; with heartbeat discovery it leaves the view). A heartbeat read again
ends the lateness (a new boot id replaces the state as any heartbeat does).

``kept_late`` is the one place this is decided and ``take_states`` applies it: the gateway's ``WorkerPool``
calls both with the records it read from Redis (the first for membership too), and anything else holding a
``FleetView`` can (the fleet simulator models no expiry).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fleet.internal.v1.worker_pb2 import WorkerState
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView

log = logging.getLogger("fleet.gateway.workers")


def keeps(endpoint: WorkerEndpoint, now: float, grace_s: float, superseded: bool = False) -> bool:
    """Whether a worker whose heartbeat record is missing at ``now`` keeps its last state (it is late), rather
    than being forgotten now."""
    if grace_s <= 0 or endpoint.state is None or endpoint.failed or endpoint.draining or superseded:
        return False
    return endpoint.late_since is None or now - endpoint.late_since < grace_s


def _superseded(endpoint: WorkerEndpoint, live_ids: set[str]) -> bool:
    """Its worker id publishes from another address (its own address has no record, or it would not be missing)."""
    return bool(endpoint.worker_id) and endpoint.worker_id in live_ids


def kept_late(endpoints: Iterable[WorkerEndpoint], states: Mapping[str, WorkerState], now: float,
              grace_s: float) -> set[str]:
    """The addresses of the workers without a record in ``states`` that keep their last state at ``now``: what
    heartbeat discovery keeps as members although their records are gone."""
    missing = [e for e in endpoints if e.address not in states and e.state is not None]
    if not missing:
        return set()
    live_ids = {s.worker_id for s in states.values()}  # (worked out only where some record is missing)
    return {e.address for e in missing if keeps(e, now, grace_s, _superseded(e, live_ids))}


@dataclass
class Taken:
    """What one read of the heartbeats changed."""

    revived: list[WorkerEndpoint] = field(default_factory=list)  # failed workers a later heartbeat brought back
    late: list[WorkerEndpoint] = field(default_factory=list)  # found late by this read (their grace begins)
    forgotten: list[WorkerEndpoint] = field(default_factory=list)  # states dropped (no grace due)
    expired: list[WorkerEndpoint] = field(default_factory=list)  # states dropped at the end of their grace
    back: list[WorkerEndpoint] = field(default_factory=list)  # late ones whose heartbeat came again


def take_states(view: FleetView, states: Mapping[str, WorkerState], now: float, grace_s: float,
                kept: set[str] | None = None) -> Taken:
    """Apply one read of the heartbeats (by address) to every worker of the view: a record applied, a missing
    one a late worker (within its grace) or a forgotten state. ``kept``: ``kept_late``'s answer for this read,
    where the caller worked it out already (membership); else worked out here."""
    taken = Taken()
    if kept is None:
        kept = kept_late(view.endpoints.values(), states, now, grace_s)
    for endpoint in view.endpoints.values():
        state = states.get(endpoint.address)
        if state is None:
            if endpoint.state is None:
                continue  # nothing known to forget
            if endpoint.address in kept:
                if endpoint.late_since is None:
                    endpoint.late_since = now
                    taken.late.append(endpoint)
            else:
                (taken.forgotten if endpoint.late_since is None else taken.expired).append(endpoint)
                endpoint.forget_state()  # (clears late_since)
            continue
        if state is endpoint.state:
            continue  # the same record as last time (not fetched again): nothing to apply
        if endpoint.late_since is not None:
            taken.back.append(endpoint)
        if endpoint.apply(state):  # (clears late_since)
            taken.revived.append(endpoint)
    view.spread.new_read()
    return taken


def log_taken(taken: Taken, grace_s: float) -> None:
    for endpoint in taken.late:
        log.warning("worker heartbeat late; its copies still count, routing prefers others, for up to %.1fs",
                    grace_s, extra={"worker": endpoint.label, "address": endpoint.address})
    for endpoint in taken.expired:
        log.warning("worker heartbeat still missing after the grace; forgotten", extra={"worker": endpoint.label})
    for endpoint in taken.back:
        log.info("worker heartbeat back in time", extra={"worker": endpoint.label})
    for endpoint in taken.revived:
        log.info("worker back in rotation (heartbeat)", extra={"worker": endpoint.label})
