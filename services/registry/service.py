"""The registry's data-plane logic: authenticate key hashes, resolve ids and aliases, list models.

Resolution of a name for a caller's workspace: a model id (``project/version``), ``project/latest``
(the highest version the workspace may use), then an alias of that workspace, then (for a
``project/version`` not known here) the upstream model source. A private model of another workspace
answers exactly as an unknown id does, so its existence does not leak.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from cachetools import TTLCache

from services.cache.registry_records import Invalidation
from services.common.errors import FleetError, InvalidArgument, ModelNotFound, Unauthenticated, Unavailable
from services.common.model_record import ModelRecord, check_model_id
from services.registry.cached import ReadThrough
from services.registry.catalog import LATEST
from services.registry.metrics import RESOLUTIONS
from services.registry.store.records import UPSTREAM
from services.registry.store.store import Store, now_utc
from services.registry.upstream import Upstream

log = logging.getLogger("fleet.registry")

MAX_PAGE_SIZE = 500
ADMIN_KEY_ID = "admin"
LAST_USED_EVERY_S = 300.0


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to: a workspace's key, or the fleet's admin token."""

    workspace: str
    key_id: str
    admin: bool = False


def not_found(model_id: str) -> ModelNotFound:
    """The one answer for unknown ids and for other workspaces' private models."""
    return ModelNotFound(f"model {model_id!r} is not registered; check the id or alias")


def check_hash(key_sha256: str) -> str:
    if len(key_sha256) != 64 or any(c not in "0123456789abcdef" for c in key_sha256):
        raise InvalidArgument("api_key_sha256 must be a lowercase hex sha256 digest")
    return key_sha256


class Registry:
    def __init__(self, store: Store, lookups: ReadThrough, admin_sha256: str = "",
                 upstream: Upstream | None = None, negative_ttl_s: float = 30.0) -> None:
        self.store, self.lookups, self.admin_sha256, self.upstream = store, lookups, admin_sha256, upstream
        self._upstream_missing: TTLCache[tuple[str, str], bool] | None = (
            TTLCache(10_000, negative_ttl_s) if negative_ttl_s else None)
        self._last_used: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- credentials -------------------------------------------------------------------------
    def is_admin(self, key_sha256: str) -> bool:
        """Constant-time comparison with the admin token's hash (False when none is configured)."""
        return bool(self.admin_sha256) and hmac.compare_digest(key_sha256.encode(), self.admin_sha256.encode())

    async def authenticate(self, key_sha256: str) -> Principal:
        check_hash(key_sha256)
        if self.is_admin(key_sha256):
            return Principal(workspace="", key_id=ADMIN_KEY_ID, admin=True)
        found = await self.lookups.principal(key_sha256)
        if found is None:
            raise Unauthenticated("the API key is not valid")
        self._note_use(found.key_id)
        return Principal(found.workspace, found.key_id)

    def _note_use(self, key_id: str) -> None:
        """Record ``last_used`` coarsely: at most once per key every few minutes, off the request path."""
        now = time.monotonic()
        if now - self._last_used.get(key_id, -LAST_USED_EVERY_S) < LAST_USED_EVERY_S:
            return
        self._last_used[key_id] = now

        async def touch() -> None:
            try:
                async with self.store.write() as tx:
                    await tx.touch_key(key_id, now_utc())
            except FleetError as exc:
                log.warning("could not record a key's last use", extra={"key_id": key_id, "details": exc.message})

        task = asyncio.get_running_loop().create_task(touch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- resolution --------------------------------------------------------------------------
    async def resolve(self, model_id: str, workspace: str) -> ModelRecord:
        try:
            check_model_id(model_id)
            record, outcome = await self._resolve(model_id, workspace)
        except InvalidArgument:
            RESOLUTIONS.labels("invalid").inc()
            raise
        except Unavailable:
            RESOLUTIONS.labels("unavailable").inc()
            raise
        if record is None or not record.visible_to(workspace):
            RESOLUTIONS.labels("not_found").inc()
            raise not_found(model_id)
        RESOLUTIONS.labels(outcome).inc()
        return record

    async def _resolve(self, name: str, workspace: str) -> tuple[ModelRecord | None, str]:
        project, _, version = name.partition("/")
        if version == LATEST:
            target = await self.lookups.latest(project, workspace)
            return (await self._record(target) if target else None), "found"
        found = await self.lookups.model(name) if version else None
        if found is not None:
            record, expires = found
            if expires is not None and expires <= now_utc() and self.upstream is not None:
                return await self._refresh_upstream(record, workspace), "upstream"
            return record, "found"
        target = await self.lookups.alias(workspace, name)
        if target is not None:
            return await self._record(target), "found"
        if version and self.upstream is not None:
            return await self._from_upstream(name, workspace), "upstream"
        return None, "not_found"

    async def _record(self, model_id: str) -> ModelRecord | None:
        found = await self.lookups.model(model_id)
        return found[0] if found else None

    async def _from_upstream(self, model_id: str, workspace: str) -> ModelRecord | None:
        assert self.upstream is not None
        if self._upstream_missing is not None and (workspace, model_id) in self._upstream_missing:
            return None
        answer = await self.upstream.lookup(model_id, workspace)
        if answer is None:
            if self._upstream_missing is not None:
                self._upstream_missing[(workspace, model_id)] = True
            return None
        record, ttl_s = answer
        await self._store_upstream(record, ttl_s)
        return record

    async def _refresh_upstream(self, stale: ModelRecord, workspace: str) -> ModelRecord | None:
        """An upstream copy past its TTL: ask again; keep serving the copy while upstream is unavailable."""
        assert self.upstream is not None
        try:
            answer = await self.upstream.lookup(stale.model_id, workspace)
        except Unavailable:
            log.warning("upstream unavailable; serving the expired copy", extra={"model_id": stale.model_id})
            return stale
        if answer is None:
            async with self.store.write() as tx:
                await tx.delete_model(stale.model_id)
            await self.lookups.invalidate([Invalidation("model", model_id=stale.model_id)])
            return None
        await self._store_upstream(*answer)
        return answer[0]

    async def _store_upstream(self, record: ModelRecord, ttl_s: int) -> None:
        now = now_utc()
        async with self.store.write() as tx:
            await tx.ensure_workspace(record.workspace, now)
            existing = await tx.model(record.model_id)
            if existing is not None and existing.source != UPSTREAM:
                return  # registered here meanwhile: the local registration wins
            await tx.put_model(record, UPSTREAM, now, expires_at=now + timedelta(seconds=ttl_s))
        await self.lookups.invalidate([Invalidation("model", model_id=record.model_id)])

    def forget_missing(self, invalidation: Invalidation) -> None:
        """A model was registered somewhere: stop remembering that upstream lacked it."""
        if invalidation.kind == "model" and self._upstream_missing is not None:
            for key in [k for k in self._upstream_missing if k[1] == invalidation.model_id]:
                self._upstream_missing.pop(key, None)

    # ---- listing -----------------------------------------------------------------------------
    async def list(self, workspace: str, page_size: int, page_token: str) -> tuple[list[ModelRecord], str]:
        """One page of the models ``workspace`` may use, by id; the token is the last id returned."""
        size = min(page_size or 100, MAX_PAGE_SIZE)
        async with self.store.read() as tx:
            page = await tx.models(after=page_token, limit=size + 1, visible_to=workspace)
        records = [m.record for m in page]
        if len(records) > size:
            return records[:size], records[size - 1].model_id
        return records, ""

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        if self.upstream is not None:
            await self.upstream.close()
