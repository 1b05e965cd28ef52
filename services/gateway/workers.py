"""The gateway's view of the model workers, kept current: who is up, what each holds, how busy it is.

Each worker's last heartbeat (a typed ``WorkerState`` from Redis) says what it holds and its load;
this gateway adds what it knows first-hand: its own calls in flight to each worker, copies a call
has just confirmed (before a heartbeat lists them) and copies a call found gone.

Membership comes from a ``Discovery`` (static addresses, heartbeats or DNS, see ``discovery``): a worker
it stops naming leaves (its channel closed once this gateway's calls to it end); one it names without a
heartbeat stays, its load unknown. A worker whose heartbeat record went missing keeps its last state for
``grace_s`` (its copies count, routing prefers the others: see ``grace``). A worker that could not be
reached leaves the rotation until it heartbeats again: a heartbeat published after the failure (a later
sequence than any it could have sent before, or a new boot id), or, when heartbeats cannot tell (no Redis,
or the worker publishes none), a health check answered SERVING, probed in the background every
``probe_interval_s``.
Requests never wait on a dead worker to be tried again.

The view itself (``view.FleetView``: endpoints, the index of holders per model, the hash ring) is free of
I/O; this module is the shell that feeds it from discovery, heartbeats, calls and health checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator

from services.common.periodic import Periodic
from services.common.tls import ClientTls
from services.gateway.discovery import Discovery
from services.gateway.grace import kept_late, log_taken, take_states
from services.gateway.metrics import WORKER_IN_FLIGHT, WORKERS
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView
from services.gateway.worker_client import WorkerClient

log = logging.getLogger("fleet.gateway.workers")

RETIRE_WAIT_S = 60.0


class WorkerPool:
    def __init__(self, discovery: Discovery, max_message_bytes: int, probe_interval_s: float, refresh_s: float,
                 tls: ClientTls | None = None, rng: random.Random | None = None, grace_s: float = 0.0) -> None:
        self.discovery, self.max_message_bytes, self.tls = discovery, max_message_bytes, tls
        self.probe_interval_s, self.grace_s = probe_interval_s, grace_s
        self.rng = rng or random.Random()
        self.view = FleetView()
        self.endpoints = self.view.endpoints  # by address (the view keeps it)
        self._retiring: dict[WorkerEndpoint, asyncio.Task[None]] = {}  # departed, closed once their calls end
        for address in discovery.seeds:
            self._add(address)
        self._periodic = Periodic("placement-refresh", refresh_s, self._tick)

    def _add(self, address: str) -> WorkerEndpoint:
        endpoint = self.endpoints.get(address)
        if endpoint is None:
            client = WorkerClient(address, self.max_message_bytes + 1024 * 1024, self.tls)
            endpoint = self.view.add(WorkerEndpoint(address, client))
            log.info("worker added", extra={"address": address})
        return endpoint

    # ---- queries -------------------------------------------------------------------------------
    def all(self) -> list[WorkerEndpoint]:
        return list(self.endpoints.values())

    def live(self) -> list[WorkerEndpoint]:
        """Workers in rotation (draining ones included: they still finish and answer management calls)."""
        return [e for e in self.endpoints.values() if not e.failed]

    def holders(self, model_id: str, sha256: str) -> list[WorkerEndpoint]:
        """Workers in rotation, not draining, holding this version of the model, their heartbeat not late: whom
        routing sends its requests first."""
        return [e for e in self.copies(model_id, sha256) if not e.late]

    def copies(self, model_id: str, sha256: str) -> list[WorkerEndpoint]:
        """``holders`` and the holders whose heartbeat is late, within their grace (``grace``): the copies that
        readiness, ``AddModel`` and copy floors count."""
        return [e for e in self.view.holding(model_id) if e.serves(model_id, sha256)]

    def report(self) -> None:
        """fleet_gateway_workers{state}: how many known workers are healthy, draining, late (heartbeat missing,
        within its grace), out of rotation."""
        failed = sum(1 for e in self.endpoints.values() if e.failed)
        draining = sum(1 for e in self.endpoints.values() if not e.failed and e.draining)
        late = sum(1 for e in self.endpoints.values() if e.takes_work and e.late)
        WORKERS.labels("healthy").set(len(self.endpoints) - failed - draining - late)
        WORKERS.labels("draining").set(draining)
        WORKERS.labels("late").set(late)
        WORKERS.labels("unhealthy").set(failed)

    # ---- what calls found ----------------------------------------------------------------------
    @contextlib.contextmanager
    def calling(self, endpoint: WorkerEndpoint, existing: bool = True) -> Iterator[None]:
        """Count one call to ``endpoint`` as in flight (the gauge, draining) and, for a call to a copy it holds
        (``existing``), as work at its models (load-aware choice: ``WorkerEndpoint.outstanding``)."""
        gauge = WORKER_IN_FLIGHT.labels(endpoint.label)
        endpoint.call_began(existing)
        gauge.inc()
        try:
            yield
        finally:
            endpoint.call_ended(existing)
            gauge.dec()

    def mark_failed(self, endpoint: WorkerEndpoint) -> None:
        if endpoint.failed:
            return
        endpoint.failed = True
        endpoint.failed_at = (endpoint.state.boot_id, endpoint.state.sequence) if endpoint.state else None
        endpoint.next_probe = time.monotonic() + self.probe_interval_s
        endpoint.confirmed.clear()
        endpoint.reindex()
        self.report()
        log.warning("worker unreachable; out of rotation until it heartbeats again",
                    extra={"worker": endpoint.label, "address": endpoint.address})

    def note_serving(self, endpoint: WorkerEndpoint, model_id: str, sha256: str) -> None:
        """A call found this version of the model loaded there (or just loaded it): the worker is reachable."""
        if endpoint.failed:
            endpoint.failed, endpoint.failed_at = False, None
            self.report()
            log.info("worker back in rotation (a call succeeded)", extra={"worker": endpoint.label})
        endpoint.found_serving(model_id, sha256)

    def note_gone(self, endpoint: WorkerEndpoint, model_id: str) -> None:
        """A call found the model not loaded there (evicted, unloaded or replaced)."""
        endpoint.found_gone(model_id)

    # ---- membership ----------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Ask discovery who the workers are and take their heartbeats; probe failed workers that heartbeats
        cannot vouch for."""
        found = await self.discovery.find()
        now = time.monotonic()
        kept = None if found.states is None else kept_late(self.endpoints.values(), found.states, now, self.grace_s)
        if found.members is not None:
            members = found.members
            if kept is not None and self.discovery.kind == "heartbeats":  # membership by heartbeat: the late stay
                members = members | kept
            await self._apply_members(members)
        if found.states is not None:
            log_taken(take_states(self.view, found.states, now, self.grace_s, kept), self.grace_s)
        await self._probe_failed(heartbeats_known=found.states is not None)

    async def _apply_members(self, members: frozenset[str]) -> None:
        for address in sorted(members - self.endpoints.keys()):
            self._add(address)
        for address in [a for a in self.endpoints if a not in members]:
            endpoint = self.view.remove(address)
            assert endpoint is not None
            log.info("worker left", extra={"worker": endpoint.label, "address": address})
            if endpoint.in_flight:  # a draining pod leaves DNS while it finishes this gateway's calls
                task = asyncio.get_running_loop().create_task(self._retire(endpoint))
                self._retiring[endpoint] = task
                task.add_done_callback(lambda _, e=endpoint: self._retiring.pop(e, None))
            else:
                await self._retire(endpoint)

    async def _retire(self, endpoint: WorkerEndpoint) -> None:
        """Close a departed worker's channel once this gateway's calls to it are over (at most RETIRE_WAIT_S)."""
        deadline = time.monotonic() + RETIRE_WAIT_S
        while endpoint.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        with contextlib.suppress(KeyError):
            WORKER_IN_FLIGHT.remove(endpoint.label)
        await endpoint.client.close()

    async def _probe_failed(self, heartbeats_known: bool) -> None:
        now = time.monotonic()
        due = [e for e in self.endpoints.values()
               if e.failed and now >= e.next_probe and not (heartbeats_known and e.state is not None)]
        if not due:
            return
        answers = await asyncio.gather(*(e.client.serving() for e in due))
        for endpoint, serving in zip(due, answers):
            endpoint.next_probe = now + self.probe_interval_s
            if serving:
                endpoint.failed, endpoint.failed_at = False, None
                log.info("worker back in rotation (health check)", extra={"worker": endpoint.label})

    async def _tick(self) -> None:
        try:
            await self.refresh()
        finally:
            self.report()

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.stop()
        retiring = dict(self._retiring)
        for task in retiring.values():
            task.cancel()
        await asyncio.gather(*retiring.values(), return_exceptions=True)
        for endpoint in retiring:
            await endpoint.client.close()
        for endpoint in self.endpoints.values():
            await endpoint.client.close()
