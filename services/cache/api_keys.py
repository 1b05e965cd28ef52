"""API keys, stored and cached only as sha256 hashes of the key."""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys

AUTH_CACHE_TTL_S = 3600


def hash_api_key(api_key: str) -> str:
    """The only form in which an API key is stored, cached, logged or sent between services."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


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
