"""The registry's logic: resolve ids and aliases, authenticate key hashes, manage records."""

from __future__ import annotations

import logging
import re

from services.cache import FleetCache
from services.common.errors import AlreadyExists, InvalidArgument, ModelNotFound, PermissionDenied, Unauthenticated
from services.common.model_record import ModelRecord, check_model_id
from services.registry.catalog import Catalog

log = logging.getLogger("fleet.registry")

MAX_PAGE_SIZE = 500
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Registry:
    def __init__(self, cache: FleetCache) -> None:
        self.cache = cache

    async def load_catalog(self, catalog: Catalog) -> None:
        for key_hash, workspace in catalog.key_hashes.items():
            await self.cache.api_keys.put(key_hash, workspace)
        for record in catalog.records:
            await self.cache.models.put(record.model_id, record.to_bytes(), record.aliases)
        log.info("catalog loaded", extra={"models": len(catalog.records), "api_keys": len(catalog.key_hashes)})

    async def _lookup(self, model_id: str) -> ModelRecord | None:
        raw = await self.cache.models.get(model_id)
        if raw is None:
            target = await self.cache.models.resolve_alias(model_id)
            if target is not None:
                raw = await self.cache.models.get(target)
        return ModelRecord.from_bytes(raw) if raw is not None else None

    async def resolve(self, model_id: str, workspace: str) -> ModelRecord:
        check_model_id(model_id)
        record = await self._lookup(model_id)
        if record is None:
            raise ModelNotFound(f"model {model_id!r} is not registered; check the id or alias")
        if not record.visible_to(workspace):
            raise PermissionDenied(f"model {model_id!r} belongs to another workspace and is not public")
        return record

    async def authenticate(self, key_sha256: str) -> str:
        if not _HEX64.fullmatch(key_sha256):
            raise InvalidArgument("api_key_sha256 must be a hex sha256 digest")
        workspace = await self.cache.api_keys.workspace_for(key_sha256)
        if workspace is None:
            raise Unauthenticated("the API key is not valid")
        return workspace

    async def list(self, workspace: str, page_size: int, page_token: str) -> tuple[list[ModelRecord], str]:
        """One page of the models ``workspace`` may use, by id; the token is the last id returned."""
        size = min(page_size or 100, MAX_PAGE_SIZE)
        ids = [i for i in await self.cache.models.ids() if i > page_token]
        visible: list[ModelRecord] = []
        for start in range(0, len(ids), size):
            for raw in await self.cache.models.get_many(ids[start : start + size]):
                record = ModelRecord.from_bytes(raw) if raw is not None else None
                if record is not None and record.visible_to(workspace):
                    visible.append(record)
            if len(visible) > size:
                break
        if len(visible) > size:
            return visible[:size], visible[size - 1].model_id
        return visible, ""

    async def register(self, record: ModelRecord, replace: bool) -> ModelRecord:
        existing = await self._lookup(record.model_id)
        if existing is not None and not replace:
            raise AlreadyExists(f"model {record.model_id!r} is already registered; set replace to overwrite")
        if existing is not None and existing.workspace != record.workspace:
            raise PermissionDenied(f"model {record.model_id!r} belongs to another workspace")
        await self.cache.models.put(record.model_id, record.to_bytes(), record.aliases)
        return record

    async def delete(self, model_id: str, workspace: str) -> None:
        check_model_id(model_id)
        record = await self._lookup(model_id)
        if record is None:
            raise ModelNotFound(f"model {model_id!r} is not registered")
        if record.workspace != workspace:
            raise PermissionDenied(f"model {model_id!r} belongs to another workspace")
        await self.cache.models.delete(record.model_id, record.aliases)
