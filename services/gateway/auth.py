"""API-key authentication: an in-process stale-while-revalidate cache in front of the registry.

Keys are hashed on arrival; only the hash is cached, sent to the registry or logged. While the
registry (or its Redis) is unavailable, keys seen before keep working for ``max_stale_s``; a key never
seen fails closed with UNAVAILABLE. A revocation reaches this cache at once through the registry's
pub/sub invalidations (``forget``); without pub/sub, within ``refresh_after_s``.
"""

from __future__ import annotations

from cachetools import TTLCache

from fleet.keys import hash_api_key
from services.common import tracing
from services.common.errors import Unauthenticated
from services.gateway.caller import Caller
from services.gateway.metrics import AUTH_CACHE
from services.gateway.swr import StaleWhileRevalidate
from services.registry.client import RegistryClient

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
    def __init__(self, registry: RegistryClient, refresh_after_s: float, max_stale_s: float,
                 negative_ttl_s: float) -> None:
        self.registry = registry
        self._callers: StaleWhileRevalidate[str, Caller] = StaleWhileRevalidate(
            "auth", refresh_after_s, max_stale_s, 50_000, AUTH_CACHE)
        self._invalid: TTLCache[str, bool] | None = TTLCache(50_000, negative_ttl_s) if negative_ttl_s else None

    async def authenticate(self, metadata: object) -> Caller:
        """The caller behind a call's ``authorization: Bearer`` metadata (Unauthenticated otherwise)."""
        return await self.authenticate_key(bearer_key(metadata))

    async def caller_of(self, context: object) -> Caller:
        """The caller of a gRPC call (fleet.v1, OIP, admin: every gRPC servicer asks here, once per call)."""
        return await self.authenticate(context.invocation_metadata())  # type: ignore[attr-defined]

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
            return await self.caller_for(hash_api_key(api_key))

    async def caller_for(self, key_hash: str) -> Caller:
        if self._invalid is not None and key_hash in self._invalid:
            raise Unauthenticated("the API key is not valid")
        try:
            return await self._callers.get(key_hash, lambda: self._ask(key_hash))
        except Unauthenticated:
            if self._invalid is not None:
                self._invalid[key_hash] = True
            raise Unauthenticated("the API key is not valid") from None

    async def _ask(self, key_hash: str) -> Caller:
        reply = await self.registry.authenticate(key_hash)
        return Caller(workspace=reply.workspace, key_id=reply.key_id, admin=reply.admin)

    def forget(self, key_hash: str) -> None:
        """Drop a key at once (it was revoked)."""
        self._callers.drop(key_hash)

    def revalidate_all(self) -> None:
        self._callers.mark_all_due()

    async def close(self) -> None:
        await self._callers.close()
