"""The database behind a Redis read-through cache: what the registry's logic reads and invalidates.

Reads try Redis, then the database, and refill Redis (with a TTL). When Redis fails, reads go to the
database, and Redis is skipped for a moment so that every request does not wait on it. Invalidations
that cannot reach Redis are kept and retried until they do (entries written before the failure could
otherwise outlive the change by their TTL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from services.cache.registry_cache import RegistryCache
from services.cache.registry_records import Invalidation, PrincipalRecord
from services.common.errors import CacheUnavailable
from services.common.model_record import ModelRecord
from services.registry.metrics import CACHE_REQUESTS
from services.registry.store.records import StoredModel
from services.registry.store.store import Store, now_utc, split_model_id

log = logging.getLogger("fleet.registry.cache")

T = TypeVar("T")
SKIP_REDIS_S = 1.0


@dataclass(frozen=True)
class CacheTtls:
    principal_s: int = 600
    model_s: int = 3600
    alias_s: int = 3600


def version_key(model_id: str) -> tuple[int, int, str]:
    """Order of versions for ``<project>/latest``: numeric versions by value, above any other version."""
    version = split_model_id(model_id)[1]
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


def latest_of(models: list[StoredModel], workspace: str) -> StoredModel | None:
    visible = [m for m in models if m.record.visible_to(workspace)]
    return max(visible, key=lambda m: version_key(m.record.model_id), default=None)


class ReadThrough:
    def __init__(self, store: Store, cache: RegistryCache | None, ttls: CacheTtls) -> None:
        self.store, self.cache, self.ttls = store, cache, ttls
        self._skip_until = 0.0
        self.pending: list[Invalidation] = []

    # ---- Redis, tolerated when down ----------------------------------------------------------
    def _redis_usable(self) -> bool:
        return self.cache is not None and time.monotonic() >= self._skip_until

    def _redis_failed(self) -> None:
        if time.monotonic() >= self._skip_until:
            log.warning("Redis unavailable; answering from the database")
        self._skip_until = time.monotonic() + SKIP_REDIS_S

    async def _get(self, name: str, call: Callable[[], Awaitable[T | None]]) -> T | None:
        if not self._redis_usable():
            CACHE_REQUESTS.labels(name, "error").inc()
            return None
        try:
            value = await call()
        except CacheUnavailable:
            self._redis_failed()
            CACHE_REQUESTS.labels(name, "error").inc()
            return None
        CACHE_REQUESTS.labels(name, "hit" if value is not None else "miss").inc()
        return value

    async def _fill(self, call: Callable[[], Awaitable[None]]) -> None:
        if not self._redis_usable():
            return
        try:
            await call()
        except CacheUnavailable:
            self._redis_failed()

    # ---- reads -------------------------------------------------------------------------------
    async def principal(self, key_sha256: str) -> PrincipalRecord | None:
        """Who a live (not revoked) key belongs to."""
        hit = await self._get("principal", lambda: self.cache.principal(key_sha256))  # type: ignore[union-attr]
        if hit is not None:
            return hit
        async with self.store.read() as tx:
            key = await tx.key_by_hash(key_sha256)
        if key is None or key.revoked:
            return None
        principal = PrincipalRecord(workspace=key.workspace, key_id=key.id)
        await self._fill(lambda: self.cache.put_principal(key_sha256, principal, self.ttls.principal_s))  # type: ignore[union-attr]
        return principal

    async def model(self, model_id: str) -> tuple[ModelRecord, datetime | None] | None:
        """A model's record, and when it expires (upstream copies only; in the past: look it up again)."""
        raw = await self._get("model", lambda: self.cache.model(model_id))  # type: ignore[union-attr]
        if raw is not None:
            return ModelRecord.from_bytes(raw), None
        async with self.store.read() as tx:
            stored = await tx.model(model_id)
        if stored is None:
            return None
        ttl = self.ttls.model_s
        if stored.expires_at is not None:
            remaining = int((stored.expires_at - now_utc()).total_seconds())
            if remaining <= 0:
                return stored.record, stored.expires_at
            ttl = min(ttl, remaining)
        record = stored.record
        await self._fill(lambda: self.cache.put_model(model_id, record.to_bytes(), ttl))  # type: ignore[union-attr]
        return record, stored.expires_at

    async def alias(self, workspace: str, alias: str) -> str | None:
        hit = await self._get("alias", lambda: self.cache.alias(workspace, alias))  # type: ignore[union-attr]
        if hit is not None:
            return hit
        async with self.store.read() as tx:
            target = await tx.alias(workspace, alias)
        if target is not None:
            await self._fill(lambda: self.cache.put_alias(workspace, alias, target, self.ttls.alias_s))  # type: ignore[union-attr]
        return target

    async def latest(self, project: str, workspace: str) -> str | None:
        """The id of the highest version of ``project`` that ``workspace`` may use."""
        hit = await self._get("latest", lambda: self.cache.latest(project, workspace))  # type: ignore[union-attr]
        if hit is not None:
            return hit
        async with self.store.read() as tx:
            found = latest_of(await tx.project_models(project), workspace)
        if found is None:
            return None
        model_id = found.record.model_id
        await self._fill(lambda: self.cache.put_latest(project, workspace, model_id, self.ttls.model_s))  # type: ignore[union-attr]
        return model_id

    # ---- writes ------------------------------------------------------------------------------
    async def invalidate(self, invalidations: list[Invalidation]) -> None:
        """After a committed write: drop the cached entries it touched and announce it."""
        if self.cache is None or not invalidations:
            return
        batch = self.pending + invalidations
        try:
            await self.cache.invalidate(batch)
            self.pending = []
        except CacheUnavailable:
            self._redis_failed()
            self.pending = batch[-10_000:]
            log.warning("Redis unavailable: invalidations kept to retry", extra={"pending": len(self.pending)})

    async def retry_pending(self) -> None:
        """Retry invalidations Redis missed (run periodically)."""
        if self.pending:
            batch, self.pending = self.pending, []
            await self.invalidate(batch)
