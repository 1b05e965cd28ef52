"""Model resolution through the registry, cached in-process per workspace (stale-while-revalidate).

While the registry is unavailable, models resolved before keep resolving for ``max_stale_s``.
Registry invalidations (pub/sub) drop the entries they name at once: a model changed or deleted, an
alias moved, a project's ``latest`` changed.
"""

from __future__ import annotations

from fleet.internal.v1 import descriptor_pb2
from services.cache.registry_records import Invalidation
from services.common.model_record import check_model_id
from services.gateway.metrics import RESOLVER_CACHE
from services.gateway.swr import StaleWhileRevalidate
from services.registry.client import RegistryClient


class ModelResolver:
    def __init__(self, registry: RegistryClient, refresh_after_s: float, max_stale_s: float) -> None:
        self.registry = registry
        self._cache: StaleWhileRevalidate[tuple[str, str], descriptor_pb2.ModelDescriptor] = StaleWhileRevalidate(
            "resolver", refresh_after_s, max_stale_s, 10_000, RESOLVER_CACHE)

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        check_model_id(model_id)
        return await self._cache.get((workspace, model_id), lambda: self.registry.resolve(model_id, workspace))

    def invalidate(self, inv: Invalidation) -> None:
        if inv.kind == "model":
            latest = f"{inv.project}/latest"
            self._cache.drop_where(lambda k, d: d.model_id == inv.model_id or k[1] in (inv.model_id, latest))
        elif inv.kind == "alias":
            self._cache.drop((inv.workspace, inv.alias))

    def revalidate_all(self) -> None:
        self._cache.mark_all_due()

    async def close(self) -> None:
        await self._cache.close()
