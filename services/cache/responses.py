"""Response cache: serialized responses keyed by a digest of (model weights, image, parameters)."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys


class ResponseCache:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def get(self, digest: str) -> bytes | None:
        return await self._r.get(self._k.response(digest))

    @redis_call
    async def put(self, digest: str, payload: bytes, ttl_s: int) -> None:
        await self._r.set(self._k.response(digest), payload, ex=ttl_s)
