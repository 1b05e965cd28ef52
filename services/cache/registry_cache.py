"""The registry's read-through cache in Redis: principals, model records, aliases, latest versions.

The database is the system of record; these entries only spare it reads. Each has a TTL; each write
deletes what it touched, sets a short tombstone (so a reader that fetched the old row just before the
write cannot put it back), and publishes an ``Invalidation`` on the namespace's channel, which gateways
and registries listen to (``services.cache.invalidation``).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys
from services.cache.registry_records import Invalidation, PrincipalRecord

TOMBSTONE_MS = 2_000

# SET key value EX ttl, unless the key was invalidated in the last few seconds.
_FILL = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
"""
_FILL_FIELD = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
"""


class RegistryCache:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys
        self._fill = client.register_script(_FILL)
        self._fill_field = client.register_script(_FILL_FIELD)

    async def _put(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._fill(keys=[key, self._k.tombstone(key)], args=[value, ttl_s])

    # ---- reads and fills ---------------------------------------------------------------------
    @redis_call
    async def principal(self, key_sha256: str) -> PrincipalRecord | None:
        raw = await self._r.get(self._k.principal(key_sha256))
        return PrincipalRecord.decode(raw) if raw is not None else None

    @redis_call
    async def put_principal(self, key_sha256: str, principal: PrincipalRecord, ttl_s: int) -> None:
        await self._put(self._k.principal(key_sha256), principal.encode(), ttl_s)

    @redis_call
    async def model(self, model_id: str) -> bytes | None:
        return await self._r.get(self._k.model(model_id))

    @redis_call
    async def put_model(self, model_id: str, record: bytes, ttl_s: int) -> None:
        await self._put(self._k.model(model_id), record, ttl_s)

    @redis_call
    async def alias(self, workspace: str, alias: str) -> str | None:
        value = await self._r.get(self._k.alias(workspace, alias))
        return value.decode() if value is not None else None

    @redis_call
    async def put_alias(self, workspace: str, alias: str, model_id: str, ttl_s: int) -> None:
        await self._put(self._k.alias(workspace, alias), model_id.encode(), ttl_s)

    @redis_call
    async def latest(self, project: str, workspace: str) -> str | None:
        value = await self._r.hget(self._k.latest(project), workspace)
        return value.decode() if value is not None else None

    @redis_call
    async def put_latest(self, project: str, workspace: str, model_id: str, ttl_s: int) -> None:
        key = self._k.latest(project)
        await self._fill_field(keys=[key, self._k.tombstone(key)], args=[workspace, model_id, ttl_s])

    # ---- writes ------------------------------------------------------------------------------
    def _keys_of(self, inv: Invalidation) -> list[str]:
        if inv.kind == "key":
            return [self._k.principal(inv.key_sha256)]
        if inv.kind == "model":
            return [self._k.model(inv.model_id), self._k.latest(inv.project)]
        if inv.kind == "workflow":  # not cached in Redis: only announced
            return []
        return [self._k.alias(inv.workspace, inv.alias)]

    @redis_call
    async def invalidate(self, invalidations: list[Invalidation]) -> None:
        """Delete (and tombstone) every entry the writes touched, then announce them."""
        if not invalidations:
            return
        async with self._r.pipeline(transaction=True) as pipe:
            for inv in invalidations:
                for key in self._keys_of(inv):
                    pipe.delete(key)
                    pipe.set(self._k.tombstone(key), b"1", px=TOMBSTONE_MS)
            for inv in invalidations:
                pipe.publish(self._k.invalidations(), inv.encode())
            await pipe.execute()
