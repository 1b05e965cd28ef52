"""Loads in flight, across gateway replicas: the shell around ``cache.placements`` that request routing uses.

Before a request places a model on a worker, its gateway claims the model's placement record; where another
gateway holds the claim, the request goes to the worker named there (the record extended to its deadline) and
waits for that load (bounded by the request's deadline) instead of starting another. A load that fails, or a worker found unreachable, clears the
record (only while it names that worker); a load that succeeds keeps it ``SETTLE_HEARTBEATS`` heartbeat
intervals more, until every gateway's heartbeat read lists the copy (a request that joined leaves it as it is). Without Redis requests place as before.
"""

from __future__ import annotations

import contextlib
from typing import Literal

from fleet.internal.v1 import descriptor_pb2
from services.cache import FleetCache
from services.common.errors import CacheUnavailable
from services.gateway.metrics import ROUTING_DECISIONS
from services.gateway.workers import WorkerEndpoint, WorkerPool

# A load done keeps its record this many heartbeat intervals more: until heartbeats list the copy, and until
# they have listed a load started again there (the model evicted at once, a late request loading it anew) in
# the heartbeats routing waits for (``routing.LISTED_LOAD_BEATS`` + 1 of them; two left a gap at s20).
SETTLE_HEARTBEATS = 3
Role = Literal["", "claimed", "joined"]


class LoadsInFlight:
    def __init__(self, cache: FleetCache | None, pool: WorkerPool) -> None:
        self.cache, self.pool = cache, pool

    async def claim(self, model: descriptor_pb2.ModelDescriptor, endpoint: WorkerEndpoint, remaining_s: float,
                    tried: set[str] = frozenset()) -> tuple[WorkerEndpoint, Role]:  # type: ignore[assignment]
        """Where to place the model, and the request's part in its placement record: ``claimed`` (``endpoint``,
        recorded now), ``joined`` (the worker the record names, where another request's load is under way) or
        ``""`` (``endpoint``, unrecorded: no Redis). A worker this request ``tried`` already (addresses) is not joined again: its queue
        was full or it failed, so the model goes to ``endpoint`` (a further copy) unrecorded."""
        if self.cache is None:
            return endpoint, ""
        try:
            address = await self.cache.placements.claim(model.model_id, model.sha256, endpoint.address, remaining_s)
        except CacheUnavailable:
            return endpoint, ""
        if address == endpoint.address:
            return endpoint, "claimed"
        loading = self.pool.endpoints.get(address)
        if loading is None or loading.failed or loading.draining or address in tried:
            return endpoint, ""  # a worker this gateway cannot use: place here, leaving that record alone
        with contextlib.suppress(CacheUnavailable):
            await self.cache.placements.join(model.model_id, model.sha256, address, remaining_s)
        ROUTING_DECISIONS.labels("joined_load").inc()
        return loading, "joined"

    async def clear(self, model: descriptor_pb2.ModelDescriptor, endpoint: WorkerEndpoint, clear: bool) -> None:
        """The load on ``endpoint`` failed (or its worker is gone): clear the record if it still names it."""
        if clear and self.cache is not None:
            with contextlib.suppress(CacheUnavailable):
                await self.cache.placements.clear(model.model_id, model.sha256, endpoint.address)

    async def settle(self, model: descriptor_pb2.ModelDescriptor, endpoint: WorkerEndpoint, role: Role) -> None:
        """Loaded: the record stays until heartbeats surely list the copy. Only the claimant shortens it: a request
        that joined may have found the model loaded while another joiner's load of it starts again there."""
        if self.cache is None or role != "claimed":
            return
        interval = endpoint.state.interval_seconds if endpoint.state is not None else 0.0
        with contextlib.suppress(CacheUnavailable):
            await self.cache.placements.settle(model.model_id, model.sha256, endpoint.address,
                                               SETTLE_HEARTBEATS * (interval or 2.0))
