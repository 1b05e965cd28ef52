"""The pipelines' system of record in Redis: definitions (with owner's desired state) and ownership leases.

Keys (under the fleet's namespace): ``pipelines:def:<id>`` the definition as JSON, ``pipelines:ids`` every
id, ``pipelines:ws:<workspace>`` a workspace's ids, ``pipelines:lease:<id>`` the owning replica's id (SET NX
PX, renewed; released or taken over only by compare-and-set), ``pipelines:results:<id>`` the Redis Stream sink.
"""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.pipelines.sealing import KeySealer
from services.pipelines.spec import PipelineSpec

_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class PipelineStore:
    def __init__(self, redis: Redis, namespace: str, sealer: KeySealer | None = None) -> None:
        self.redis, self.prefix, self.sealer = redis, f"{namespace}:pipelines", sealer or KeySealer("")
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def _def(self, pipeline_id: str) -> str:
        return f"{self.prefix}:def:{pipeline_id}"

    def lease_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:lease:{pipeline_id}"

    def results_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:results:{pipeline_id}"

    async def _do(self, coro):  # noqa: ANN001, ANN202 - one place that turns Redis failures into UNAVAILABLE
        try:
            return await coro
        except RedisError:
            raise Unavailable("the pipelines' store is unavailable; retry shortly") from None

    # -- definitions --------------------------------------------------------------------------------------
    async def save(self, spec: PipelineSpec) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._def(spec.pipeline_id), replace(spec, api_key=self.sealer.seal(spec.api_key)).to_json())
        pipe.sadd(f"{self.prefix}:ids", spec.pipeline_id)
        pipe.sadd(f"{self.prefix}:ws:{spec.workspace}", spec.pipeline_id)
        await self._do(pipe.execute())

    async def load(self, pipeline_id: str) -> PipelineSpec | None:
        raw = await self._do(self.redis.get(self._def(pipeline_id)))
        if not raw:
            return None
        spec = PipelineSpec.from_json(raw)
        return replace(spec, api_key=self.sealer.open(spec.api_key))

    async def delete(self, spec: PipelineSpec) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._def(spec.pipeline_id), self.results_key(spec.pipeline_id))
        pipe.srem(f"{self.prefix}:ids", spec.pipeline_id)
        pipe.srem(f"{self.prefix}:ws:{spec.workspace}", spec.pipeline_id)
        await self._do(pipe.execute())

    async def all_ids(self) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m
                      for m in await self._do(self.redis.smembers(f"{self.prefix}:ids")))

    async def workspace_ids(self, workspace: str) -> list[str]:
        return sorted(m.decode() if isinstance(m, bytes) else m
                      for m in await self._do(self.redis.smembers(f"{self.prefix}:ws:{workspace}")))

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
