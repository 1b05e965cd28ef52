"""Applying a catalog to the store: one transaction, idempotent, with the diff it makes.

Without ``prune`` an apply only adds and changes. With ``prune`` it also removes, in the workspaces
this catalog declares, what an earlier catalog apply created and this catalog no longer lists
(models, aliases, and API-key hashes, which are revoked rather than deleted, so a removed key never
works again); other workspaces are left alone, so teams may each apply their own catalog. Things made through the admin
plane (``fleet keys create``, RegisterModel, ``fleet models alias``) and upstream copies are never
pruned. A revoked key stays revoked even when a catalog lists its hash again.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.cache.registry_records import Invalidation
from services.common.model_record import ModelRecord
from services.registry.catalog import Catalog, CatalogError
from services.registry.store.records import CATALOG, Alias, ApiKey
from services.registry.store.store import Store, Tx, now_utc


@dataclass(frozen=True)
class Change:
    action: str  # added | changed | removed
    kind: str    # workspace | key | model | alias
    name: str
    detail: str = ""

    def __str__(self) -> str:
        sign = {"added": "+", "changed": "~", "removed": "-"}[self.action]
        return f"{sign} {self.kind} {self.name}" + (f" ({self.detail})" if self.detail else "")


def catalog_key_id(sha256: str) -> str:
    """Keys a catalog declares get an id derived from their hash (the same on every registry)."""
    return f"key_{sha256[:12]}"


def _differences(old: ModelRecord, new: ModelRecord) -> list[str]:
    fields = []
    for name in ("workspace", "public", "artifact_uri"):
        if getattr(old, name) != getattr(new, name):
            fields.append(name)
    if old.spec != new.spec:
        fields.append("spec")
    return fields


class _Plan:
    def __init__(self, tx: Tx, catalog: Catalog, prune: bool, write: bool) -> None:
        self.tx, self.catalog, self.prune, self.write = tx, catalog, prune, write
        self.changes: list[Change] = []
        self.invalidations: list[Invalidation] = []
        self.now = now_utc()

    def _change(self, action: str, kind: str, name: str, detail: str = "") -> None:
        self.changes.append(Change(action, kind, name, detail))

    async def run(self) -> None:
        aliases = await self.tx.aliases()  # before models are pruned (which takes their aliases along)
        await self._workspaces()
        await self._keys()
        kept = await self._models()
        await self._aliases(kept, aliases)

    async def _workspaces(self) -> None:
        existing = await self.tx.workspaces()
        for name in sorted(self.catalog.workspaces - existing):
            self._change("added", "workspace", name)
            if self.write:
                await self.tx.ensure_workspace(name, self.now)

    async def _keys(self) -> None:
        current = {k.sha256: k for k in await self.tx.keys()}
        for sha, workspace in sorted(self.catalog.keys.items(), key=lambda kv: (kv[1], kv[0])):
            key = current.get(sha)
            if key is not None:
                if key.workspace != workspace:
                    raise CatalogError(f"API key {key.id} belongs to workspace {key.workspace!r}, not {workspace!r}; "
                                       "a key never changes workspace (revoke it and declare a new one)")
                continue
            key_id = catalog_key_id(sha)
            self._change("added", "key", key_id, f"workspace {workspace}")
            if self.write:
                await self.tx.insert_key(ApiKey(key_id, "", sha, workspace, "catalog", CATALOG, self.now))
        if not self.prune:
            return
        for key in current.values():
            if (key.source == CATALOG and not key.revoked and key.workspace in self.catalog.workspaces
                    and key.sha256 not in self.catalog.keys):
                self._change("removed", "key", key.id, f"workspace {key.workspace}; revoked")
                self.invalidations.append(Invalidation("key", key_sha256=key.sha256))
                if self.write:
                    await self.tx.revoke_key(key.id, self.now)

    async def _models(self) -> set[str]:
        """Apply models; returns the ids that exist afterwards."""
        current = {m.record.model_id: m for m in await self.tx.models()}
        for model_id, record in sorted(self.catalog.models.items()):
            stored = current.get(model_id)
            if stored is None:
                self._change("added", "model", model_id, f"workspace {record.workspace}")
            elif fields := _differences(stored.record, record):
                self._change("changed", "model", model_id, ", ".join(fields))
            elif stored.source == CATALOG:
                continue
            self.invalidations.append(Invalidation("model", model_id=model_id))
            if self.write:
                await self.tx.put_model(record, CATALOG, self.now)
        kept = set(current) | set(self.catalog.models)
        if self.prune:
            for model_id, stored in sorted(current.items()):
                if (stored.source == CATALOG and stored.record.workspace in self.catalog.workspaces
                        and model_id not in self.catalog.models):
                    self._change("removed", "model", model_id)
                    self.invalidations.append(Invalidation("model", model_id=model_id))
                    kept.discard(model_id)
                    if self.write:
                        await self.tx.delete_model(model_id)
        return kept

    async def _aliases(self, kept: set[str], aliases: list[Alias]) -> None:
        current = {(a.workspace, a.alias): a for a in aliases}
        problems = []
        for (workspace, alias), model_id in sorted(self.catalog.aliases.items()):
            line = self.catalog.lines.get(("alias", workspace, alias), 0)
            if model_id not in kept:
                problems.append(f"{self.catalog.source}:{line}: alias {alias!r} of {workspace!r} names {model_id}, "
                                "which is not registered")
                continue
            target = self.catalog.models.get(model_id) or (await self.tx.model(model_id)).record  # type: ignore[union-attr]
            if not target.visible_to(workspace):
                problems.append(f"{self.catalog.source}:{line}: alias {alias!r} of {workspace!r} names {model_id}, "
                                "a private model of another workspace")
                continue
            existing = current.get((workspace, alias))
            name = f"{workspace}/{alias}" if "/" not in alias else f"{workspace}:{alias}"
            if existing is None:
                self._change("added", "alias", name, f"-> {model_id}")
            elif existing.model_id != model_id:
                self._change("changed", "alias", name, f"{existing.model_id} -> {model_id}")
                self.invalidations.append(Invalidation("model", model_id=existing.model_id))
            elif existing.source == CATALOG:
                continue
            self.invalidations += [Invalidation("alias", workspace=workspace, alias=alias),
                                   Invalidation("model", model_id=model_id)]
            if self.write:
                await self.tx.set_alias(workspace, alias, model_id, CATALOG, self.now)
        if problems:
            raise CatalogError("\n".join(problems))
        for (workspace, alias), existing in sorted(current.items()):
            gone = existing.model_id not in kept
            if gone or (self.prune and existing.source == CATALOG and workspace in self.catalog.workspaces
                        and (workspace, alias) not in self.catalog.aliases):
                name = f"{workspace}/{alias}" if "/" not in alias else f"{workspace}:{alias}"
                self._change("removed", "alias", name, f"was -> {existing.model_id}")
                self.invalidations.append(Invalidation("alias", workspace=workspace, alias=alias))
                if self.write and not gone:
                    await self.tx.delete_alias(workspace, alias)


async def apply_catalog(store: Store, catalog: Catalog, prune: bool = False,
                        dry_run: bool = False) -> tuple[list[Change], list[Invalidation]]:
    """The changes the catalog makes (made unless ``dry_run``) and the cache entries they invalidate."""
    async with (store.read() if dry_run else store.write()) as tx:
        plan = _Plan(tx, catalog, prune, write=not dry_run)
        await plan.run()
    return plan.changes, plan.invalidations
