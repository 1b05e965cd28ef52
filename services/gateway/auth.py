"""API-key authentication: in-process TTL cache -> Redis (1 h TTL) -> registry.

Keys are hashed on arrival; only the hash is cached, sent to the registry or logged.
"""

from __future__ import annotations

import logging

from cachetools import TTLCache

from services.cache import FleetCache
from services.cache.api_keys import hash_api_key
from services.common import tracing
from services.common.errors import CacheUnavailable, Unauthenticated
from services.gateway.caller import Caller
from services.gateway.registry_client import RegistryClient

log = logging.getLogger("fleet.gateway.auth")

MAX_KEY_LENGTH = 512


MISSING_KEY = "missing API key: send call metadata 'authorization: Bearer <your API key>'"


def bearer_token(value: str | None) -> str | None:
    """The key in an ``authorization`` value of the form ``Bearer <key>`` (None when it is not one)."""
    scheme, _, token = str(value or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_key(metadata: object) -> str:
    """The API key from ``authorization: Bearer <key>`` call metadata."""
    for key, value in metadata or ():  # type: ignore[union-attr]
        if key == "authorization":
            if (token := bearer_token(value)) is not None:
                return token
            break
    raise Unauthenticated(MISSING_KEY)


class Authenticator:
    def __init__(self, cache: FleetCache, registry: RegistryClient, local_ttl_s: float, negative_ttl_s: float,
                 redis_ttl_s: int) -> None:
        self.cache, self.registry, self.redis_ttl_s = cache, registry, redis_ttl_s
        self._valid: TTLCache[str, str] | None = TTLCache(50_000, local_ttl_s) if local_ttl_s else None
        self._invalid: TTLCache[str, bool] | None = TTLCache(50_000, negative_ttl_s) if negative_ttl_s else None

    async def authenticate(self, metadata: object) -> Caller:
        """The caller behind a call's ``authorization: Bearer`` metadata (Unauthenticated otherwise)."""
        return await self.authenticate_key(bearer_key(metadata))

    async def authenticate_key(self, api_key: str | None, missing: str = MISSING_KEY) -> Caller:
        """The caller behind a raw API key, however an edge received it (header, query, body).

        Every edge (fleet.v1 and OIP gRPC, HTTP) comes through here, so all share one set of caches.
        ``missing`` is the message for a call that carried no key (it names the edge's way to send one).
        """
        if not api_key:
            raise Unauthenticated(missing)
        if len(api_key) > MAX_KEY_LENGTH:
            raise Unauthenticated("the API key is not valid")
        with tracing.span("auth"):
            return Caller(workspace=await self.workspace_for(api_key))

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
