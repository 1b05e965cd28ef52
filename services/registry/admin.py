"""The registry's admin operations: catalogs, model registrations, aliases, API keys.

Callers are verified as the fleet's admin at the edge (the admin servicer); this module trusts that.
Every write commits to the database first, then invalidates the caches it touched (Redis entries and,
through pub/sub, every gateway's in-process entries).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from fleet.keys import hash_api_key, new_api_key
from services.cache.registry_records import Invalidation
from services.common.errors import AlreadyExists, InvalidArgument, NotFound
from services.common.model_record import WORKSPACE_PATTERN, ModelRecord, check_model_id
from services.registry.cached import ReadThrough
from services.registry.catalog import LATEST, Catalog, check_alias, parse_catalog
from services.registry.catalog_apply import Change, apply_catalog
from services.registry.metrics import REVOCATIONS
from services.registry.service import Registry, not_found
from services.registry.store.records import ADMIN, ApiKey, StoredModel
from services.registry.store.store import Store, now_utc

log = logging.getLogger("fleet.registry.admin")

MAX_NAME = 128


def check_workspace(workspace: str) -> str:
    if not WORKSPACE_PATTERN.fullmatch(workspace or ""):
        raise InvalidArgument("workspace must be 1-64 letters, digits, '.', '_', '-'")
    return workspace


class Admin:
    def __init__(self, store: Store, lookups: ReadThrough, registry: Registry) -> None:
        self.store, self.lookups, self.registry = store, lookups, registry

    # ---- catalogs ----------------------------------------------------------------------------
    async def apply_catalog_text(self, text: str, source: str, base_dir: str, prune: bool,
                                 dry_run: bool) -> list[Change]:
        base = Path(base_dir or ".")
        catalog = await asyncio.to_thread(parse_catalog, text, source or "catalog", base)
        return await self.apply(catalog, prune, dry_run)

    async def apply(self, catalog: Catalog, prune: bool = False, dry_run: bool = False) -> list[Change]:
        changes, invalidations = await apply_catalog(self.store, catalog, prune, dry_run)
        if not dry_run:
            await self.lookups.invalidate(invalidations)
            revoked = sum(1 for c in changes if c.kind == "key" and c.action == "removed")
            if revoked:
                REVOCATIONS.inc(revoked)
            if changes:
                log.info("catalog applied", extra={"source": catalog.source, "changes": len(changes),
                                                   "prune": prune})
        return changes

    # ---- models ------------------------------------------------------------------------------
    async def register(self, record: ModelRecord, replace: bool) -> StoredModel:
        if record.model_id.partition("/")[2] == LATEST:
            raise InvalidArgument("version 'latest' is reserved: it resolves to the highest version")
        for alias in record.aliases:
            if (why := check_alias(alias)) is not None:
                raise InvalidArgument(why)
        now = now_utc()
        async with self.store.write() as tx:
            existing = await tx.model(record.model_id)
            if existing is not None and not replace:
                raise AlreadyExists(f"model {record.model_id!r} is already registered; set replace to overwrite")
            await tx.ensure_workspace(record.workspace, now)
            await tx.put_model(record, ADMIN, now)
            for alias in record.aliases:
                await tx.set_alias(record.workspace, alias, record.model_id, ADMIN, now)
            stored = await tx.model(record.model_id)
        invalidations = [Invalidation("model", model_id=record.model_id)]
        invalidations += [Invalidation("alias", workspace=record.workspace, alias=a) for a in record.aliases]
        await self.lookups.invalidate(invalidations)
        assert stored is not None
        return stored

    async def delete_model(self, model_id: str) -> None:
        check_model_id(model_id)
        async with self.store.write() as tx:
            if await tx.model(model_id) is None:
                raise not_found(model_id)
            aliases = await tx.aliases(model_ids=[model_id])
            await tx.delete_model(model_id)
        await self.lookups.invalidate([Invalidation("model", model_id=model_id)] + [
            Invalidation("alias", workspace=a.workspace, alias=a.alias) for a in aliases])

    async def list_models(self, workspace: str, page_size: int, page_token: str) -> tuple[list[StoredModel], str]:
        size = min(page_size or 100, 500)
        async with self.store.read() as tx:
            page = await tx.models(after=page_token, limit=size + 1, workspace=workspace or None)
        if len(page) > size:
            return page[:size], page[size - 1].record.model_id
        return page, ""

    # ---- aliases -----------------------------------------------------------------------------
    async def set_alias(self, workspace: str, alias: str, model_id: str) -> str:
        """Point ``alias`` of ``workspace`` at ``model_id`` (one atomic write); returns the previous target."""
        check_workspace(workspace)
        check_model_id(model_id)
        if (why := check_alias(alias)) is not None:
            raise InvalidArgument(why)
        now = now_utc()
        async with self.store.write() as tx:
            target = await tx.model(model_id)
            if target is None or not target.record.visible_to(workspace):
                raise not_found(model_id)
            previous = await tx.alias(workspace, alias)
            await tx.ensure_workspace(workspace, now)
            await tx.set_alias(workspace, alias, model_id, ADMIN, now)
        invalidations = [Invalidation("alias", workspace=workspace, alias=alias),
                         Invalidation("model", model_id=model_id)]
        if previous and previous != model_id:
            invalidations.append(Invalidation("model", model_id=previous))
        await self.lookups.invalidate(invalidations)
        return previous or ""

    async def delete_alias(self, workspace: str, alias: str) -> None:
        check_workspace(workspace)
        async with self.store.write() as tx:
            previous = await tx.alias(workspace, alias)
            if previous is None:
                raise NotFound(f"workspace {workspace!r} has no alias {alias!r}")
            await tx.delete_alias(workspace, alias)
        await self.lookups.invalidate([Invalidation("alias", workspace=workspace, alias=alias),
                                       Invalidation("model", model_id=previous)])

    # ---- API keys ----------------------------------------------------------------------------
    async def create_key(self, workspace: str, name: str) -> tuple[ApiKey, str]:
        """A new key for ``workspace``: the record and the key itself (shown once, stored only as a hash)."""
        check_workspace(workspace)
        if len(name) > MAX_NAME:
            raise InvalidArgument(f"a key's name has at most {MAX_NAME} characters")
        secret = new_api_key()
        sha = hash_api_key(secret)
        if self.registry.is_admin(sha):  # astronomically unlikely; never let a workspace key be the admin's
            raise InvalidArgument("try again")
        now = now_utc()
        key = ApiKey(f"key_{secrets.token_hex(6)}", secret[:7], sha, workspace, name, ADMIN, now)
        async with self.store.write() as tx:
            await tx.ensure_workspace(workspace, now)
            await tx.insert_key(key)
        log.info("API key created", extra={"key_id": key.id, "workspace": workspace})
        return key, secret

    async def list_keys(self, workspace: str) -> list[ApiKey]:
        async with self.store.read() as tx:
            return await tx.keys(workspace or None)

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with self.store.write() as tx:
            key = await tx.key_by_id(key_id)
            if key is None:
                raise NotFound(f"no API key {key_id!r}; `fleet keys list` shows the ids")
            if not key.revoked:
                await tx.revoke_key(key_id, now_utc())
            revoked = await tx.key_by_id(key_id)
        assert revoked is not None
        # Announce even a repeated revocation: it costs nothing and heals a cache that missed the first.
        await self.lookups.invalidate([Invalidation("key", key_sha256=key.sha256)])
        if not key.revoked:
            REVOCATIONS.inc()
            log.info("API key revoked", extra={"key_id": key_id, "workspace": key.workspace})
        return revoked
