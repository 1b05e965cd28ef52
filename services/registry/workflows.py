"""Stored workflows: definitions per workspace, with versions, validated before anything is stored.

A workspace runs its own workflows and public ones; another workspace's private workflow answers exactly
as an unknown one (NOT_FOUND), so its existence does not leak. Every change is announced (an ``Invalidation``
of kind "workflow") so gateways drop what they cached.
"""

from __future__ import annotations

import json

from services.cache.registry_records import Invalidation
from services.common.errors import InvalidArgument, NotFound
from services.registry.admin import check_workspace
from services.registry.cached import ReadThrough
from services.registry.store.records import StoredWorkflow
from services.registry.store.store import Store, now_utc
from services.workflows.compiler import Compiler
from services.workflows.definition import NAME
from services.workflows.engine import Limits


def not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow {workflow_id!r} is not stored; check the workspace and the workflow id")


def check_workflow_id(workflow_id: str) -> str:
    if not NAME.fullmatch(workflow_id or ""):
        raise InvalidArgument("workflow_id must be 1-64 letters, digits, '_' or '-', not starting with a digit")
    return workflow_id


def version_number(version_id: str) -> int:
    try:
        number = int(version_id)
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidArgument(f"workflow_version_id must be a version number (1, 2, ...), got {version_id!r}")
    return number


class Workflows:
    def __init__(self, store: Store, lookups: ReadThrough, limits: Limits | None = None) -> None:
        self.store, self.lookups = store, lookups
        limits = limits or Limits()
        self.compiler = Compiler(limits.max_steps, limits.max_definition_bytes)

    async def get(self, workspace: str, owner: str, workflow_id: str, version_id: str = "") -> tuple[str, str]:
        """(definition JSON, version id) of ``owner``'s workflow, for a caller of ``workspace``."""
        async with self.store.read() as tx:
            found = await tx.workflows(owner, workflow_id) if owner and workflow_id else []
            if not found or (found[0].workspace != workspace and not found[0].public):
                raise not_found(workflow_id)
            version = version_number(version_id) if version_id else found[0].current_version
            definition = await tx.workflow_definition(owner, workflow_id, version)
        if definition is None:
            raise NotFound(f"workflow {workflow_id!r} has no version {version_id!r}")
        return definition, str(version)

    async def put(self, workspace: str, workflow_id: str, definition_json: str, public: bool) -> StoredWorkflow:
        check_workspace(workspace)
        check_workflow_id(workflow_id)
        try:
            definition = json.loads(definition_json)
        except ValueError as exc:
            raise InvalidArgument(f"the definition is not JSON: {exc}") from None
        self.compiler.compile(definition)  # refused here: nothing is stored
        text = json.dumps(definition, separators=(",", ":"))
        now = now_utc()
        async with self.store.write() as tx:
            await tx.ensure_workspace(workspace, now)
            await tx.put_workflow(workspace, workflow_id, text, public, now)
            stored = (await tx.workflows(workspace, workflow_id))[0]
        await self.lookups.invalidate([Invalidation("workflow", workspace=workspace, workflow_id=workflow_id)])
        return stored

    async def list(self, workspace: str = "") -> list[StoredWorkflow]:
        async with self.store.read() as tx:
            return await tx.workflows(workspace)

    async def delete(self, workspace: str, workflow_id: str) -> None:
        async with self.store.write() as tx:
            if not await tx.workflows(workspace, workflow_id):
                raise not_found(workflow_id)
            await tx.delete_workflow(workspace, workflow_id)
        await self.lookups.invalidate([Invalidation("workflow", workspace=workspace, workflow_id=workflow_id)])
