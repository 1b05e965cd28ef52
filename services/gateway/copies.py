"""The copies controller: every refresh, plan copies from the heartbeats (``placement.plan``) and act.

The controller alone owns the copy floors ``AddModel(copies=N)`` asks for: ``keep`` / ``release`` write
them to Redis (shared by every gateway replica) and its own view, and each round reads them back.

A new copy is loaded with ``LoadModel``; traffic reaches it once that call returns (this gateway)
or once its heartbeat lists it (every replica): never while it loads. Copies being loaded count as
copies in the plan (``pending``): each is recorded in Redis while it loads (``cache.placements``), so
every replica counts it and demand is not answered once per replica; a copy for saturated holders waits
until heartbeats can list the last one placed. Several copies of one model may load at once (one per
worker). A copy is released by
taking it out of this gateway's routing, then ``UnloadModel``: the worker finishes the requests it
holds for it first, and other replicas' requests find it gone and go to another copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fleet.internal.v1 import descriptor_pb2
from services.cache import FleetCache
from services.cache.copies import CopyFloor
from services.common.errors import CacheUnavailable, FleetError, Unavailable
from services.common.labels import model_label
from services.common.periodic import Periodic
from services.gateway.metrics import MODEL_COPIES, ROUTING_DECISIONS
from services.gateway.placement import Backlog, CopyAction, CopyPolicy, Target, copies_of, plan
from services.gateway.resolver import ModelResolver
from services.gateway.worker_client import WorkerUnavailable
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.workers import WorkerPool

log = logging.getLogger("fleet.gateway.copies")

UNLOAD_TIMEOUT_S = 30.0
FAILED_LOAD_BACKOFF_S = 60.0


class CopyController:
    def __init__(self, pool: WorkerPool, resolver: ModelResolver, cache: FleetCache | None, policy: CopyPolicy,
                 interval_s: float, load_timeout_s: float) -> None:
        self.pool, self.resolver, self.cache, self.policy = pool, resolver, cache, policy
        pool.view.active_load = policy.release_load  # what the view marks as busy: what planning must look at
        pool.view.windows = (policy.up_window_s, policy.release_window_s)  # a copy covering one is a change
        self._backlog = Backlog()  # incremental planning: the models whose copies changed, a bounded number a step
        self.load_timeout_s = load_timeout_s
        self._floors: dict[str, CopyFloor] = {}
        self._floor_writes = 0  # a read of Redis begun before a keep/release must not undo it
        self._descriptors: dict[str, descriptor_pb2.ModelDescriptor] = {}
        self._busy: set[tuple[str, str]] = set()  # (model id, worker address) with an action under way
        self._pending: dict[str, int] = {}  # model id -> copies being loaded now
        self._unplaced: dict[str, tuple] = {}  # the plan's memory of models no worker could take a copy of
        # Copies being loaded, and until when a loaded one may be missing from heartbeats: invisible to the plan.
        self._loading, self._settling_until = 0, 0.0
        self._backoff: dict[tuple[str, str], float] = {}  # (model id, worker address) -> retry after
        self._tasks: set[asyncio.Task[None]] = set()
        self._gauged: set[str] = set()
        self._periodic = Periodic("copies", interval_s, self.step)

    def current_sha(self, model_id: str) -> str | None:
        """The version of the model the registry resolved last (None before it was considered)."""
        descriptor = self._descriptors.get(model_id)
        return descriptor.sha256 if descriptor is not None else None

    # ---- floors ---------------------------------------------------------------------------------
    def floor_of(self, model_id: str) -> int:
        """Copies kept of the model (0: none asked for)."""
        floor = self._floors.get(model_id)
        return floor.min_copies if floor is not None else 0

    def kept_in(self, workspace: str) -> list[str]:
        """The models of ``workspace`` with a floor."""
        return sorted(f.model_id for f in self._floors.values() if f.workspace == workspace)

    async def keep(self, floor: CopyFloor) -> None:
        """Keep ``floor.min_copies`` copies of the model until ``release``; every replica reads it from Redis."""
        if self.cache is None:
            raise Unavailable("cannot keep copies without Redis; add without copies")
        try:
            await self.cache.copy_floors.put(floor)
        except CacheUnavailable:
            raise Unavailable("cannot keep copies while Redis is unavailable; retry, or add without copies") from None
        self._floors[floor.model_id] = floor
        self._floor_writes += 1

    async def release(self, *model_ids: str) -> None:
        """Keep no copies of these models any more (their surplus copies go once cold)."""
        if not model_ids:
            return
        if self.cache is not None:
            try:
                await self.cache.copy_floors.delete(*model_ids)
            except CacheUnavailable:
                raise Unavailable("cannot release kept copies while Redis is unavailable; retry") from None
        for model_id in model_ids:
            self._floors.pop(model_id, None)
        self._floor_writes += 1

    # ---- one round ------------------------------------------------------------------------------
    async def step(self) -> None:
        await self._read_floors()
        targets, loaded_unlisted = await self._targets()
        self._gauge(targets)
        now = time.monotonic()
        settling = self._loading > 0 or now < self._settling_until
        releasing = {m for m, _ in self._busy}
        pending = await self._copies_loading(loaded_unlisted)
        by_id = {t.model_id: t for t in targets}
        for action in plan(self.pool.view, by_id, self.policy, pending, self._unplaced, self._backlog,
                           floors=[m for m, t in by_id.items() if t.floor]):
            key = (action.model_id, action.endpoint.address)
            if key in self._busy or self._backoff.get(key, 0) > now:
                continue
            if action.kind == "release" and action.model_id in releasing:
                continue  # one release of a model at a time
            if action.reason == "saturated" and settling:
                continue  # a copy just loaded is not in heartbeats yet: wait until they show its effect
            if action.reason == "floor" and self._floor_met(by_id[action.model_id]):
                continue  # AddModel reserved copies of its own while this step was planning
            if action.kind == "add":
                if not await self.record_copy(action.model_id, action.endpoint):
                    continue  # another gateway is loading this very copy
                self.reserve(action.model_id, action.endpoint)
            else:
                self._busy.add(key)
            task = asyncio.get_running_loop().create_task(self._act(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _floor_met(self, target: Target) -> bool:
        return len(copies_of(self.pool.view, target)) + self._pending.get(target.model_id, 0) >= target.floor

    async def _copies_loading(self, settling: dict[str, int]) -> dict[str, int]:
        """Copies loading now, by every gateway (this gateway's own where Redis cannot say), and ``settling``:
        copies loaded that heartbeats do not list yet."""
        loading = dict(self._pending)
        if self.cache is not None:
            try:
                shared = await self.cache.placements.copies_loading()
            except CacheUnavailable:
                pass
            else:
                loading = {m: max(n, self._pending.get(m, 0)) for m, n in {**self._pending, **shared}.items()}
        for model_id, n in settling.items():
            loading[model_id] = loading.get(model_id, 0) + n
        return loading

    async def record_copy(self, model_id: str, endpoint: WorkerEndpoint) -> bool:
        """Record a copy's load in Redis, where every replica counts it as pending; False if another gateway is
        loading this very copy (True where Redis cannot say)."""
        if self.cache is None:
            return True
        try:
            return await self.cache.placements.copy_started(model_id, endpoint.address, self.load_timeout_s)
        except CacheUnavailable:
            return True

    async def _read_floors(self) -> None:
        if self.cache is None:
            return
        writes = self._floor_writes
        try:
            floors = await self.cache.copy_floors.all()
        except CacheUnavailable:
            return  # keep the last floors read
        if writes == self._floor_writes:
            self._floors = floors

    async def _targets(self) -> tuple[list[Target], dict[str, int]]:
        """Every model some worker holds or a floor keeps, at its current version; and the copies a call of this
        gateway's loaded (or found loaded) that no heartbeat lists yet, by model: copies all the same, or a
        floor would be answered again in the moment between a load and the next heartbeat."""
        owners: dict[str, str] = {}
        settling: dict[str, int] = {}
        for endpoint in self.pool.live():
            for load in endpoint.loads.values():
                owners.setdefault(load.model_id, load.workspace)
            if endpoint.draining:
                continue
            for model_id in endpoint.confirmed:
                if endpoint.load_of(model_id) is None:
                    settling[model_id] = settling.get(model_id, 0) + 1
        for floor in self._floors.values():
            owners.setdefault(floor.model_id, floor.workspace)
        resolved = await asyncio.gather(*(self.resolver.resolve(m, ws) for m, ws in owners.items()),
                                        return_exceptions=True)
        targets = []
        for model_id, descriptor in zip(owners, resolved):
            if isinstance(descriptor, FleetError):
                continue  # gone from the registry, or the registry is down: leave its copies to the LRU
            if isinstance(descriptor, BaseException):
                raise descriptor
            self._descriptors[model_id] = descriptor
            targets.append(Target(model_id, descriptor.sha256, descriptor.workspace, descriptor.size_bytes,
                                  self.floor_of(model_id)))
        return targets, settling

    def _gauge(self, targets: list[Target]) -> None:
        now = set()
        for target in targets:
            label = model_label(target.model_id)
            count = len(copies_of(self.pool.view, target))
            if count:
                MODEL_COPIES.labels(label).set(count)
                now.add(label)
        for label in self._gauged - now:
            try:
                MODEL_COPIES.remove(label)
            except KeyError:
                pass
        self._gauged = now

    # ---- acting ---------------------------------------------------------------------------------
    async def _act(self, action: CopyAction) -> None:
        endpoint, model_id = action.endpoint, action.model_id
        fields = {"model_id": model_id, "worker": endpoint.label, "reason": action.reason}
        try:
            if action.kind == "add":
                try:
                    model = self._descriptors[model_id]
                    await endpoint.client.load(model, self.load_timeout_s)
                    self.pool.note_serving(endpoint, model_id, model.sha256)  # settling, not lost, once placed
                finally:
                    await self.placed(model_id, endpoint)
                ROUTING_DECISIONS.labels("new_copy").inc()
                log.info("copy placed", extra=fields)
            else:
                try:
                    self.pool.note_gone(endpoint, model_id)  # this gateway stops routing there at once
                    await endpoint.client.unload(model_id, UNLOAD_TIMEOUT_S)
                finally:
                    self._busy.discard((model_id, endpoint.address))
                ROUTING_DECISIONS.labels("released_copy").inc()
                log.info("copy released", extra=fields)
        except WorkerUnavailable as exc:
            if not exc.answered:
                self.pool.mark_failed(endpoint)
            log.warning("copy %s failed: worker unavailable", action.kind, extra=fields)
        except FleetError as exc:
            self._backoff[(model_id, endpoint.address)] = time.monotonic() + FAILED_LOAD_BACKOFF_S
            log.warning("copy %s failed: %s", action.kind, exc.message, extra=fields)

    def reserve(self, model_id: str, endpoint: WorkerEndpoint) -> None:
        """A copy about to be loaded, by this controller's plan or outside it (``AddModel``'s own loads): pending
        from now on, so a step of this controller, even one under way, does not answer the same floor again;
        ``placed`` ends it. Synchronous, so nothing runs between the decision and the reservation."""
        self._pending[model_id] = self._pending.get(model_id, 0) + 1
        self._busy.add((model_id, endpoint.address))
        self._loading += 1

    async def placed(self, model_id: str, endpoint: WorkerEndpoint) -> None:
        """A reserved copy's load ended (done or failed): no longer pending, here or in Redis; heartbeats may take
        a while to list it."""
        self._busy.discard((model_id, endpoint.address))
        self._loading -= 1
        left = self._pending.get(model_id, 1) - 1
        if left > 0:
            self._pending[model_id] = left
        else:
            self._pending.pop(model_id, None)
        if self.cache is not None:
            with contextlib.suppress(CacheUnavailable):
                await self.cache.placements.copy_ended(model_id, endpoint.address)
        interval = endpoint.state.interval_seconds if endpoint.state is not None else 0.0
        self._settling_until = time.monotonic() + 2 * (interval or 2.0)

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
