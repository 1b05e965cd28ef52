"""API keys, stored and cached only as sha256 hashes of the key."""

from __future__ import annotations

import redis.asyncio as aioredis

from fleet.keys import hash_api_key
from services.cache.errors import redis_call
from services.cache.keys import Keys

__all__ = ["ApiKeyStore", "AuthCache", "hash_api_key"]

AUTH_CACHE_TTL_S = 3600


class ApiKeyStore:
    """The registry's table: key hash -> workspace (no expiry)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def put(self, key_sha256: str, workspace: str) -> None:
        await self._r.set(self._k.api_key(key_sha256), workspace.encode())

    @redis_call
    async def workspace_for(self, key_sha256: str) -> str | None:
        value = await self._r.get(self._k.api_key(key_sha256))
        return value.decode() if value is not None else None

    @redis_call
    async def delete(self, key_sha256: str) -> None:
        await self._r.delete(self._k.api_key(key_sha256))


class AuthCache:
    """The gateway's cache of successful authentications: key hash -> workspace, 1 h TTL."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def get(self, key_sha256: str) -> str | None:
        value = await self._r.get(self._k.auth_cache(key_sha256))
        return value.decode() if value is not None else None

    @redis_call
    async def put(self, key_sha256: str, workspace: str, ttl_s: int = AUTH_CACHE_TTL_S) -> None:
        await self._r.set(self._k.auth_cache(key_sha256), workspace.encode(), ex=ttl_s)

    @redis_call
    async def forget(self, key_sha256: str) -> None:
        await self._r.delete(self._k.auth_cache(key_sha256))
