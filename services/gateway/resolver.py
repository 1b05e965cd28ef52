"""Model resolution through the registry, cached briefly in-process per workspace."""

from __future__ import annotations

from cachetools import TTLCache

from fleet.internal.v1 import descriptor_pb2
from services.common.model_record import check_model_id
from services.gateway.registry_client import RegistryClient


class ModelResolver:
    def __init__(self, registry: RegistryClient, ttl_s: float) -> None:
        self.registry = registry
        self._cache: TTLCache[tuple[str, str], descriptor_pb2.ModelDescriptor] | None = (
            TTLCache(10_000, ttl_s) if ttl_s else None
        )

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        check_model_id(model_id)
        key = (workspace, model_id)
        if self._cache is not None and (hit := self._cache.get(key)) is not None:
            return hit
        descriptor = await self.registry.resolve(model_id, workspace)
        if self._cache is not None:
            self._cache[key] = descriptor
        return descriptor

    def forget(self, model_id: str) -> None:
        if self._cache is not None:
            for key in [k for k in self._cache if k[1] == model_id]:
                self._cache.pop(key, None)
