"""Where pipelines are kept: definitions (sources, model, desired state, workspace, the sealed key) in the
registry's database, the system of record (``fleet.internal.v1.PipelineRecordService``); ownership leases
in Redis: ``<namespace>:pipelines:lease:<id>`` holds the owning replica's id (SET NX PX, renewed; released
or renewed only by compare-and-set).

Change counters in Redis say when a definition must be read again, so that renewing leases reads only Redis:
``<prefix>:revisions`` (a hash: pipeline id -> a counter bumped after every write of its record, the field
removed when it is deleted) and ``<prefix>:generation`` (bumped after a pipeline is created or deleted:
the set of ids changed). They are bumped after the registry's write, so a reader that sees a new counter
and then reads the record gets that write or a later one. Lost counters (Redis restarted) read as 0: a
change, noticed at the next renewal; a bump that failed is caught by the owners' periodic re-read.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.pipelines.sealing import KeySealer
from services.pipelines.spec import PipelineSpec
from services.registry.client import RegistryClient

log = logging.getLogger("fleet.pipelines")

# Renew a lease held by ARGV[1] and answer the pipeline's revision with it: one round trip, Redis only.
_RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return {0, 0} end
redis.call('pexpire', KEYS[1], ARGV[2])
return {1, tonumber(redis.call('hget', KEYS[2], ARGV[3]) or '0')}
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class PipelineStore:
    def __init__(self, registry: RegistryClient, redis: Redis, namespace: str,
                 sealer: KeySealer | None = None) -> None:
        self.registry, self.redis, self.prefix = registry, redis, f"{namespace}:pipelines"
        self.sealer = sealer or KeySealer("")
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def lease_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:lease:{pipeline_id}"

    @property
    def revisions_key(self) -> str:
        return f"{self.prefix}:revisions"

    @property
    def generation_key(self) -> str:
        return f"{self.prefix}:generation"

    async def _do(self, coro):  # noqa: ANN001, ANN202 - one place that turns Redis failures into UNAVAILABLE
        try:
            return await coro
        except RedisError:
            raise Unavailable("the pipelines' leases are unavailable (Redis); retry shortly") from None

    # -- definitions (the registry's database) ---------------------------------------------------------------
    async def save(self, spec: PipelineSpec, created: bool = False) -> int | None:
        """Write the record, then bump its revision (and the generation for a new one): the new revision, or
        None when Redis did not take the bump (owners then see the change at their periodic re-read)."""
        sealed = replace(spec, api_key=self.sealer.seal(spec.api_key))
        await self.registry.put_pipeline(spec.pipeline_id, spec.workspace, sealed.to_json())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(self.revisions_key, spec.pipeline_id, 1)
                if created:
                    pipe.incr(self.generation_key)
                revision, *_ = await pipe.execute()
            return int(revision)
        except RedisError:
            log.warning("pipeline change counter not bumped (Redis)", extra={"pipeline_id": spec.pipeline_id})
            return None

    async def load(self, pipeline_id: str) -> PipelineSpec | None:
        found = await self.registry.get_pipeline(pipeline_id)
        if found is None:
            return None
        spec = PipelineSpec.from_json(found[1])
        return replace(spec, api_key=self.sealer.open(spec.api_key))

    async def delete(self, spec: PipelineSpec) -> None:
        await self.registry.delete_pipeline(spec.pipeline_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hdel(self.revisions_key, spec.pipeline_id)
                pipe.incr(self.generation_key)
                await pipe.execute()
        except RedisError:
            log.warning("pipeline change counter not bumped (Redis)", extra={"pipeline_id": spec.pipeline_id})

    async def revision(self, pipeline_id: str) -> int:
        """The pipeline's change counter (0: none yet, or deleted); read before its record is."""
        return int(await self._do(self.redis.hget(self.revisions_key, pipeline_id)) or 0)

    async def generation(self) -> int:
        """Bumped whenever a pipeline is created or deleted (0: never, or Redis lost it)."""
        return int(await self._do(self.redis.get(self.generation_key)) or 0)

    async def all_ids(self) -> list[str]:
        return await self.registry.pipeline_ids()

    async def workspace_ids(self, workspace: str) -> list[str]:
        return await self.registry.pipeline_ids(workspace)

    # -- leases -------------------------------------------------------------------------------------------
    async def acquire(self, pipeline_id: str, owner: str, ttl_s: float) -> bool:
        return bool(await self._do(self.redis.set(self.lease_key(pipeline_id), owner, nx=True,
                                                  px=int(ttl_s * 1000))))

    async def renew(self, pipeline_id: str, owner: str, ttl_s: float) -> int | None:
        """The pipeline's revision when ``owner`` still held the lease (now renewed), else None."""
        held, revision = await self._do(self._renew(keys=[self.lease_key(pipeline_id), self.revisions_key],
                                                    args=[owner, int(ttl_s * 1000), pipeline_id]))
        return int(revision) if held else None

    async def release(self, pipeline_id: str, owner: str) -> None:
        await self._do(self._release(keys=[self.lease_key(pipeline_id)], args=[owner]))

    async def owner(self, pipeline_id: str) -> str:
        raw = await self._do(self.redis.get(self.lease_key(pipeline_id)))
        return (raw.decode() if isinstance(raw, bytes) else raw) or ""
