"""Model metadata (the registry's records) and aliases."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys


class ModelMetadata:
    """model id -> serialized record; alias -> model id; an index of all ids."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def put(self, model_id: str, record: bytes, aliases: tuple[str, ...] = ()) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k.model(model_id), record)
            pipe.sadd(self._k.models_index(), model_id)
            for alias in aliases:
                pipe.set(self._k.alias(alias), model_id.encode())
            await pipe.execute()

    @redis_call
    async def get(self, model_id: str) -> bytes | None:
        return await self._r.get(self._k.model(model_id))

    @redis_call
    async def resolve_alias(self, alias: str) -> str | None:
        value = await self._r.get(self._k.alias(alias))
        return value.decode() if value is not None else None

    @redis_call
    async def ids(self) -> list[str]:
        return sorted(v.decode() for v in await self._r.smembers(self._k.models_index()))

    @redis_call
    async def get_many(self, model_ids: list[str]) -> list[bytes | None]:
        if not model_ids:
            return []
        return await self._r.mget([self._k.model(m) for m in model_ids])

    @redis_call
    async def delete(self, model_id: str, aliases: tuple[str, ...] = ()) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._k.model(model_id))
            pipe.srem(self._k.models_index(), model_id)
            for alias in aliases:
                pipe.delete(self._k.alias(alias))
            await pipe.execute()
