"""Where pipelines are kept: definitions (sources, model, desired state, workspace, the sealed key) in the
registry's database, the system of record (``fleet.internal.v1.PipelineRecordService``); ownership leases
in Redis: ``<namespace>:pipelines:lease:<id>`` holds the owning replica's id (SET NX PX, renewed; released
or renewed only by compare-and-set).
"""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.pipelines.sealing import KeySealer
from services.pipelines.spec import PipelineSpec
from services.registry.client import RegistryClient

_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
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

    async def _do(self, coro):  # noqa: ANN001, ANN202 - one place that turns Redis failures into UNAVAILABLE
        try:
            return await coro
        except RedisError:
            raise Unavailable("the pipelines' leases are unavailable (Redis); retry shortly") from None

    # -- definitions (the registry's database) ---------------------------------------------------------------
    async def save(self, spec: PipelineSpec) -> None:
        sealed = replace(spec, api_key=self.sealer.seal(spec.api_key))
        await self.registry.put_pipeline(spec.pipeline_id, spec.workspace, sealed.to_json())

    async def load(self, pipeline_id: str) -> PipelineSpec | None:
        found = await self.registry.get_pipeline(pipeline_id)
        if found is None:
            return None
        spec = PipelineSpec.from_json(found[1])
        return replace(spec, api_key=self.sealer.open(spec.api_key))

    async def delete(self, spec: PipelineSpec) -> None:
        await self.registry.delete_pipeline(spec.pipeline_id)

    async def all_ids(self) -> list[str]:
        return await self.registry.pipeline_ids()

    async def workspace_ids(self, workspace: str) -> list[str]:
        return await self.registry.pipeline_ids(workspace)

    # -- leases -------------------------------------------------------------------------------------------
    async def acquire(self, pipeline_id: str, owner: str, ttl_s: float) -> bool:
        return bool(await self._do(self.redis.set(self.lease_key(pipeline_id), owner, nx=True,
                                                  px=int(ttl_s * 1000))))

    async def renew(self, pipeline_id: str, owner: str, ttl_s: float) -> bool:
        return bool(await self._do(self._renew(keys=[self.lease_key(pipeline_id)], args=[owner, int(ttl_s * 1000)])))

    async def release(self, pipeline_id: str, owner: str) -> None:
        await self._do(self._release(keys=[self.lease_key(pipeline_id)], args=[owner]))

    async def owner(self, pipeline_id: str) -> str:
        raw = await self._do(self.redis.get(self.lease_key(pipeline_id)))
        return (raw.decode() if isinstance(raw, bytes) else raw) or ""
