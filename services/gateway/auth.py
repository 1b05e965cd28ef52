"""API-key authentication: in-process TTL cache -> Redis (1 h TTL) -> registry.

Keys are hashed on arrival; only the hash is cached, sent to the registry or logged.
"""

from __future__ import annotations

import logging

from cachetools import TTLCache

from services.cache import FleetCache
from services.cache.api_keys import hash_api_key
from services.common.errors import CacheUnavailable, Unauthenticated
from services.gateway.caller import Caller
from services.gateway.registry_client import RegistryClient

log = logging.getLogger("fleet.gateway.auth")

MAX_KEY_LENGTH = 512


def bearer_key(metadata: object) -> str:
    """The API key from ``authorization: Bearer <key>`` call metadata."""
    for key, value in metadata or ():  # type: ignore[union-attr]
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                break
            if len(token) > MAX_KEY_LENGTH:
                raise Unauthenticated("the API key is not valid")
            return token
    raise Unauthenticated("missing API key: send call metadata 'authorization: Bearer <your API key>'")


class Authenticator:
    def __init__(self, cache: FleetCache, registry: RegistryClient, local_ttl_s: float, negative_ttl_s: float,
                 redis_ttl_s: int) -> None:
        self.cache, self.registry, self.redis_ttl_s = cache, registry, redis_ttl_s
        self._valid: TTLCache[str, str] | None = TTLCache(50_000, local_ttl_s) if local_ttl_s else None
        self._invalid: TTLCache[str, bool] | None = TTLCache(50_000, negative_ttl_s) if negative_ttl_s else None

    async def authenticate(self, metadata: object) -> Caller:
        """The caller behind a call's ``authorization: Bearer`` metadata (Unauthenticated otherwise)."""
        return Caller(workspace=await self.workspace_for(bearer_key(metadata)))

    async def workspace_for(self, api_key: str) -> str:
        key_hash = hash_api_key(api_key)
        if self._valid is not None and (ws := self._valid.get(key_hash)) is not None:
            return ws
        if self._invalid is not None and key_hash in self._invalid:
            raise Unauthenticated("the API key is not valid")
        workspace = await self._from_redis(key_hash)
        if workspace is None:
            try:
                workspace = await self.registry.authenticate(key_hash)
            except Unauthenticated:
                if self._invalid is not None:
                    self._invalid[key_hash] = True
                raise Unauthenticated("the API key is not valid") from None
            await self._to_redis(key_hash, workspace)
        if self._valid is not None:
            self._valid[key_hash] = workspace
        return workspace

    async def _from_redis(self, key_hash: str) -> str | None:
        try:
            return await self.cache.auth.get(key_hash)
        except CacheUnavailable:
            log.warning("auth cache unavailable; asking the registry")
            return None

    async def _to_redis(self, key_hash: str, workspace: str) -> None:
        try:
            await self.cache.auth.put(key_hash, workspace, self.redis_ttl_s)
        except CacheUnavailable:
            log.warning("auth cache unavailable; not caching")
