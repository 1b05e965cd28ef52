"""Stored workflows through the registry, cached in-process like model descriptors (stale-while-revalidate):
invalidated when the registry announces a change, served stale while the registry is unavailable."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import Counter

from services.cache.registry_records import Invalidation
from services.common.errors import NotFound
from services.gateway.caller import Caller
from services.gateway.swr import StaleWhileRevalidate
from services.registry.client import RegistryClient

WORKFLOW_CACHE = Counter("fleet_gateway_workflow_cache_total", "Stored-workflow lookups by result: hit, miss, "
                         "stale (served while the registry is down).", ["result"])
for _result in ("hit", "miss", "stale"):
    WORKFLOW_CACHE.labels(_result)

Key = tuple[str, str, str, str]  # caller's workspace, owner, workflow id, version ("" current)


class StoredWorkflows:
    def __init__(self, registry: RegistryClient | None, refresh_after_s: float, max_stale_s: float) -> None:
        self.registry = registry
        self._cache: StaleWhileRevalidate[Key, tuple[dict[str, Any], str, str]] = StaleWhileRevalidate(
            "workflows", refresh_after_s, max_stale_s, 2_000, WORKFLOW_CACHE)

    async def definition(self, caller: Caller, owner: str, workflow_id: str,
                         version_id: str = "") -> tuple[dict[str, Any], str]:
        """(definition, metrics label) of a stored workflow the caller may run; NotFound otherwise."""
        definition, label, _ = await self.resolve(caller, owner, workflow_id, version_id)
        return definition, label

    async def resolve(self, caller: Caller, owner: str, workflow_id: str,
                      version_id: str = "") -> tuple[dict[str, Any], str, str]:
        """(definition, metrics label, the version it is) of a stored workflow the caller may run."""
        workspace = caller.in_workspace().workspace
        if self.registry is None:
            raise NotFound(f"workflow {workflow_id!r} is not stored; check the workspace and the workflow id")
        key = (workspace, owner, workflow_id, version_id or "")

        async def fetch() -> tuple[dict[str, Any], str, str]:
            assert self.registry is not None
            reply = await self.registry.get_workflow(workspace, owner, workflow_id, version_id or "")
            return json.loads(reply.definition_json), f"{owner}/{workflow_id}", reply.version_id

        return await self._cache.get(key, fetch)

    def invalidate(self, inv: Invalidation) -> None:
        if inv.kind == "workflow":
            self._cache.drop_where(lambda k, _: k[1] == inv.workspace and k[2] == inv.workflow_id)

    def revalidate_all(self) -> None:
        self._cache.mark_all_due()

    async def close(self) -> None:
        await self._cache.close()
