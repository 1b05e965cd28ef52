"""Which pipelines this replica runs: each under a Redis lease (SET NX PX) renewed every ``renew_s``.

A replica claims pipelines without a live lease (a dead owner's expire after ``ttl_s``) up to its limit;
on each renewal it publishes each pipeline's status report and, when the pipeline's revision (a counter in
Redis bumped on every write of its record, ``store.PipelineStore``) moved, reads the definition again and
applies it (desired state, sources); else it re-reads it only every ``refresh_s`` (a bound on staleness
should a bump have been lost): renewals touch Redis, not the registry. The claim loop lists the pipelines
in the registry only when the generation (bumped on create and delete) moved, or every ``refresh_s``.
A lease found lost (another replica owns it) stops the pipeline here. ``drain`` (SIGTERM)
releases every lease and keeps each pipeline running until another replica holds it and has written
``HANDOVER_RESULTS`` results of its own (or a bound passes), then stops it: both replicas produce results for
a few frame intervals, so the new owner is past its first frames (a live source's first keyframe, its first
batch) before the old one stops, and the handover adds no gap to the results. Stopping, the old replica
still processes the batch in flight and the frames its slots hold (a pushed frame there was acknowledged to
its client): no frame it took is lost at the switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.cancelling import cancel_all
from services.common.errors import FleetError, NotFound, ResourceExhausted, Unavailable
from services.pipelines.metrics import PIPELINES, TAKEOVERS
from services.pipelines.pipeline import Pipeline
from services.pipelines.readers import PushReader, Reader
from services.pipelines.sinks import ResultSinks
from services.pipelines.spec import PipelineSpec, SourceSpec
from services.pipelines.store import PipelineStore

log = logging.getLogger("fleet.pipelines")
HANDOVER_RESULTS = 3  # results the new owner writes before a draining replica stops the pipeline

PipelineFactory = Callable[[PipelineSpec], Pipeline]
ReaderFactory = Callable[[SourceSpec, Pipeline], Reader]


class Ownership:
    def __init__(self, store: PipelineStore, sinks: ResultSinks, redis: Redis, build: PipelineFactory,
                 reader: ReaderFactory,
                 replica_id: str, max_pipelines: int, ttl_s: float, renew_s: float, claim_s: float,
                 terminate_timeout_s: float, refresh_s: float = 30.0) -> None:
        self.store, self.sinks, self.redis, self.build, self.reader = store, sinks, redis, build, reader
        self.replica_id, self.max_pipelines = replica_id, max_pipelines
        self.ttl_s, self.renew_s, self.claim_s, self.terminate_timeout_s = ttl_s, renew_s, claim_s, terminate_timeout_s
        self.refresh_s = refresh_s
        self.running: dict[str, Pipeline] = {}
        self._read: dict[str, tuple[int | None, float]] = {}  # id -> (revision applied, monotonic time read)
        self._ids: list[str] = []  # every pipeline's id, as last listed
        self._listed: tuple[int, float] | None = None  # (generation, monotonic time) of that listing
        self.draining = False
        self._tasks: list[asyncio.Task] = []

    def report_key(self, pipeline_id: str) -> str:
        return f"{self.store.prefix}:report:{pipeline_id}"

    def check_capacity(self) -> None:
        if len(self.running) >= self.max_pipelines:
            raise ResourceExhausted(f"this pipelines replica runs {self.max_pipelines} pipelines already; retry "
                                    "later or on another replica")
        if self.draining:
            raise Unavailable("this pipelines replica is shutting down; retry on another replica")

    def local_report(self, pipeline_id: str) -> dict | None:
        pipeline = self.running.get(pipeline_id)
        return pipeline.report() if pipeline is not None else None

    # -- starting and stopping ----------------------------------------------------------------------------
    async def adopt(self, spec: PipelineSpec, save: Callable[[], Awaitable[int | None]]) -> None:
        """Run a new pipeline here: its lease is taken before ``save`` stores its record (which returns the
        revision), so no other replica's claim can take a pipeline whose creation is still under way."""
        if not await self.store.acquire(spec.pipeline_id, self.replica_id, self.ttl_s):
            raise Unavailable("the pipeline is being started elsewhere; retry shortly")
        try:
            revision = await save()
        except BaseException:
            with contextlib.suppress(FleetError):
                await self.store.release(spec.pipeline_id, self.replica_id)
            raise
        self._start(spec, revision)

    def _start(self, spec: PipelineSpec, revision: int | None) -> None:
        pipeline = self.build(spec)
        pipeline.start()
        self.running[spec.pipeline_id] = pipeline
        self._read[spec.pipeline_id] = (revision, time.monotonic())
        PIPELINES.set(len(self.running))
        log.info("pipeline started", extra={"pipeline_id": spec.pipeline_id, "sources": len(spec.sources)})

    async def _stop(self, pipeline_id: str, finish: bool = False) -> None:
        pipeline = self.running.pop(pipeline_id, None)  # first: frames pushed from now on go to the owner
        self._read.pop(pipeline_id, None)
        PIPELINES.set(len(self.running))
        if pipeline is not None:
            await pipeline.stop(self.terminate_timeout_s, finish=finish)
            with contextlib.suppress(RedisError):
                await self.redis.delete(self.report_key(pipeline_id))

    async def drop(self, pipeline_id: str) -> None:
        """The pipeline was terminated: stop it here (if here) and free its lease."""
        await self._stop(pipeline_id)
        with contextlib.suppress(FleetError):
            await self.store.release(pipeline_id, self.replica_id)

    async def reconcile(self, spec: PipelineSpec, revision: int | None = None) -> None:
        """Apply a changed definition to the pipeline when it runs here (else its owner does, on renewal).
        ``revision``: the one ``spec`` was read at (None: unknown, read again at the next renewal, so that
        writes racing this one converge on the record)."""
        pipeline = self.running.get(spec.pipeline_id)
        if pipeline is None:
            return
        self._read[spec.pipeline_id] = (revision, time.monotonic())
        pipeline.apply_desired(spec.desired)
        wanted = {s.source_id: s for s in spec.sources}
        for source_id in [sid for sid in pipeline.readers if sid not in wanted]:
            await pipeline.remove_reader(source_id, self.terminate_timeout_s)
        for source_id, source in wanted.items():
            if source_id not in pipeline.readers:
                pipeline.add_reader(self.reader(source, pipeline))
        pipeline.spec = spec

    def push(self, pipeline_id: str, source_id: str, encoded: bytes, captured_at: float | None) -> int:
        pipeline = self.running.get(pipeline_id)
        if pipeline is None:
            raise Unavailable("the pipeline runs on another replica; push its frames there (retry to reconnect)")
        reader = pipeline.readers.get(source_id)
        if not isinstance(reader, PushReader):
            raise NotFound(f"the pipeline has no push source {source_id[:128]}")
        return reader.push(encoded, captured_at)

    # -- the loops ----------------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every(self.renew_s, self._renew_all)),
                       loop.create_task(self._every(self.claim_s, self._claim))]

    async def _every(self, interval: float, step: Callable) -> None:
        while True:
            try:
                await step()
            except FleetError as exc:  # Redis away: keep what runs, try again next time
                log.warning("pipelines ownership step failed", extra={"error": exc.message})
            except Exception:  # noqa: BLE001 - the loop must outlive one bad step
                log.exception("pipelines ownership step failed")
            await asyncio.sleep(interval)

    async def _renew_all(self) -> None:
        if self.draining:  # the leases were released: drain stops each pipeline once its new owner has it
            return
        for pipeline_id in list(self.running):
            revision = await self.store.renew(pipeline_id, self.replica_id, self.ttl_s)
            if revision is None:
                log.warning("pipeline lease lost; stopping it here", extra={"pipeline_id": pipeline_id})
                await self._stop(pipeline_id)
                continue
            applied, read_at = self._read.get(pipeline_id, (None, 0.0))
            if revision != applied or time.monotonic() - read_at >= self.refresh_s:
                spec = await self.store.load(pipeline_id)  # changed (or not read for long): the registry
                if spec is None:  # terminated through another replica
                    await self.drop(pipeline_id)
                    continue
                await self.reconcile(spec, revision)
            if (pipeline := self.running.get(pipeline_id)) is not None:
                with contextlib.suppress(RedisError):
                    await self.redis.set(self.report_key(pipeline_id), json.dumps(pipeline.report()),
                                         px=int(self.ttl_s * 3000))

    async def _claim(self) -> None:
        if self.draining:
            return
        for pipeline_id in await self._all_ids():
            if len(self.running) >= self.max_pipelines:
                return
            if pipeline_id in self.running or not await self.store.acquire(pipeline_id, self.replica_id, self.ttl_s):
                continue
            revision = await self.store.revision(pipeline_id)  # before the record: a later write bumps it again
            spec = await self.store.load(pipeline_id)
            if spec is None:
                await self.store.release(pipeline_id, self.replica_id)
                continue
            self._start(spec, revision)
            TAKEOVERS.inc()
            log.info("pipeline taken over", extra={"pipeline_id": pipeline_id})

    async def _all_ids(self) -> list[str]:
        """Every pipeline's id: listed from the registry when one was created or deleted, or every refresh_s."""
        generation = await self.store.generation()
        if (self._listed is None or self._listed[0] != generation
                or time.monotonic() - self._listed[1] >= self.refresh_s):
            self._ids = await self.store.all_ids()
            self._listed = (generation, time.monotonic())
        return self._ids

    async def drain(self, handover_s: float) -> None:
        """SIGTERM: hand every pipeline to another replica (running here until one holds it), then stop."""
        self.draining = True
        for pipeline_id in list(self.running):
            with contextlib.suppress(FleetError):
                await self.store.release(pipeline_id, self.replica_id)
        deadline = time.monotonic() + handover_s
        waiting = set(self.running)
        while waiting and time.monotonic() < deadline:
            for pipeline_id in list(waiting):
                try:
                    owner = await self.store.owner(pipeline_id)
                except FleetError:
                    owner = ""
                if owner and owner != self.replica_id and await self._resumed_by(pipeline_id, owner):
                    waiting.discard(pipeline_id)
                    await self._stop(pipeline_id, finish=True)  # what it took already is processed here
            # Every 0.1 s, not faster: each look reads the latest results of every pipeline waiting, work
            # taken from the pipelines still running here (a later stop only lengthens the overlap).
            await asyncio.sleep(0.1)
        await self.close()

    async def _resumed_by(self, pipeline_id: str, owner: str) -> bool:
        """The new owner has written ``HANDOVER_RESULTS`` results (a pipeline without frames now has nothing
        to hand over; one fed only by pushed frames hands over at once: its frames go to the lease's holder)."""
        pipeline = self.running.get(pipeline_id)
        if pipeline is None or pipeline.state in ("paused", "finished"):
            return True
        if all(isinstance(reader, PushReader) for reader in pipeline.readers.values()):
            return True
        recent = await self.sinks.recent_replicas(pipeline_id, 4 * HANDOVER_RESULTS)
        return sum(replica == owner for replica in recent) >= HANDOVER_RESULTS

    async def close(self) -> None:
        if not await cancel_all(self._tasks):
            log.warning("pipelines ownership loops still running after close; abandoned")
        self._tasks = []
        await asyncio.gather(*(self.drop(pid) for pid in list(self.running)))  # records stay: others resume
