"""Queries on the registry's tables, one ``Tx`` per transaction; no transport, no cache.

    async with store.write() as tx:       # one transaction, committed on exit
        await tx.put_model(record, ADMIN, now)
    async with store.read() as tx:
        stored = await tx.model("shapes-det/1")

Any database failure inside the block is raised as ``DatabaseUnavailable`` (gRPC UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import grpc
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.errors import FleetError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from services.registry.store import tables as t
from services.registry.store.engine import DatabaseUnavailable, create_engine, safe_url
from services.registry.store.records import Alias, ApiKey, StoredModel, StoredWorkflow


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def split_model_id(model_id: str) -> tuple[str, str]:
    project, _, version = model_id.partition("/")
    return project, version


class Conflict(FleetError):
    """Two writers raced on one row; the caller may retry."""

    code = grpc.StatusCode.ABORTED


class Tx:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    def _insert(self, table):  # noqa: ANN001, ANN202 - the dialect's INSERT with ON CONFLICT
        return (pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert)(table)

    # ---- workspaces ---------------------------------------------------------------------------
    async def workspaces(self) -> set[str]:
        return set((await self.conn.execute(select(t.workspaces.c.name))).scalars())

    async def ensure_workspace(self, name: str, now: datetime) -> None:
        await self.conn.execute(self._insert(t.workspaces).values(name=name, created_at=now)
                                .on_conflict_do_nothing(index_elements=["name"]))

    # ---- API keys -----------------------------------------------------------------------------
    @staticmethod
    def _key(row: Row) -> ApiKey:
        return ApiKey(row.id, row.prefix, row.sha256, row.workspace, row.name, row.source, _aware(row.created_at),
                      _aware(row.revoked_at), _aware(row.last_used_at))

    async def key_by_hash(self, sha256: str) -> ApiKey | None:
        row = (await self.conn.execute(select(t.api_keys).where(t.api_keys.c.sha256 == sha256))).first()
        return self._key(row) if row else None

    async def key_by_id(self, key_id: str) -> ApiKey | None:
        row = (await self.conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        return self._key(row) if row else None

    async def keys(self, workspace: str | None = None) -> list[ApiKey]:
        query = select(t.api_keys).order_by(t.api_keys.c.workspace, t.api_keys.c.created_at, t.api_keys.c.id)
        if workspace:
            query = query.where(t.api_keys.c.workspace == workspace)
        return [self._key(r) for r in await self.conn.execute(query)]

    async def insert_key(self, key: ApiKey) -> None:
        await self.conn.execute(t.api_keys.insert().values(
            id=key.id, prefix=key.prefix, sha256=key.sha256, workspace=key.workspace, name=key.name,
            source=key.source, created_at=key.created_at, revoked_at=key.revoked_at))

    async def revoke_key(self, key_id: str, when: datetime) -> None:
        await self.conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                                .values(revoked_at=when))

    async def touch_key(self, key_id: str, when: datetime) -> None:
        await self.conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=when))

    # ---- models -------------------------------------------------------------------------------
    async def _model_rows(self, query) -> list[StoredModel]:  # noqa: ANN001
        rows = list(await self.conn.execute(query))
        if not rows:
            return []
        alias_rows = await self.conn.execute(
            select(t.aliases.c.model_id, t.aliases.c.alias, t.aliases.c.workspace)
            .where(t.aliases.c.model_id.in_([r.id for r in rows])).order_by(t.aliases.c.alias))
        owner = {r.id: r.workspace for r in rows}
        names: dict[str, list[str]] = {}
        for a in alias_rows:
            if owner[a.model_id] == a.workspace:
                names.setdefault(a.model_id, []).append(a.alias)
        return [StoredModel(
            ModelRecord(model_id=r.id, workspace=r.workspace, artifact_uri=r.artifact_uri,
                        spec=ModelSpec.model_validate_json(r.spec), public=r.public,
                        aliases=tuple(names.get(r.id, ()))),
            r.source, _aware(r.created_at), _aware(r.updated_at), _aware(r.expires_at),
        ) for r in rows]

    async def model(self, model_id: str) -> StoredModel | None:
        found = await self._model_rows(select(t.models).where(t.models.c.id == model_id))
        return found[0] if found else None

    async def project_models(self, project: str) -> list[StoredModel]:
        return await self._model_rows(select(t.models).where(t.models.c.project == project))

    async def models(self, after: str = "", limit: int | None = None, visible_to: str | None = None,
                     workspace: str | None = None) -> list[StoredModel]:
        """Models by id after ``after``: those ``visible_to`` may use, or those owned by ``workspace``."""
        query = select(t.models).where(t.models.c.id > after).order_by(t.models.c.id)
        if visible_to is not None:
            query = query.where((t.models.c.workspace == visible_to) | t.models.c.public.is_(True))
        if workspace:
            query = query.where(t.models.c.workspace == workspace)
        if limit is not None:
            query = query.limit(limit)
        return await self._model_rows(query)

    async def put_model(self, record: ModelRecord, source: str, now: datetime,
                        expires_at: datetime | None = None) -> None:
        project, version = split_model_id(record.model_id)
        values = dict(project=project, version=version, workspace=record.workspace, public=record.public,
                      spec=record.spec.model_dump_json(), artifact_uri=record.artifact_uri,
                      sha256=record.spec.sha256, source=source, updated_at=now, expires_at=expires_at)
        await self.conn.execute(self._insert(t.models).values(id=record.model_id, created_at=now, **values)
                                .on_conflict_do_update(index_elements=["id"], set_=values))

    async def delete_model(self, model_id: str) -> None:
        await self.conn.execute(delete(t.aliases).where(t.aliases.c.model_id == model_id))
        await self.conn.execute(delete(t.models).where(t.models.c.id == model_id))

    # ---- aliases ------------------------------------------------------------------------------
    async def alias(self, workspace: str, alias: str) -> str | None:
        return (await self.conn.execute(select(t.aliases.c.model_id).where(
            t.aliases.c.workspace == workspace, t.aliases.c.alias == alias))).scalar()

    async def aliases(self, workspace: str | None = None, model_ids: Iterable[str] | None = None) -> list[Alias]:
        query = select(t.aliases).order_by(t.aliases.c.workspace, t.aliases.c.alias)
        if workspace:
            query = query.where(t.aliases.c.workspace == workspace)
        if model_ids is not None:
            query = query.where(t.aliases.c.model_id.in_(list(model_ids)))
        return [Alias(r.workspace, r.alias, r.model_id, r.source) for r in await self.conn.execute(query)]

    async def set_alias(self, workspace: str, alias: str, model_id: str, source: str, now: datetime) -> None:
        values = dict(model_id=model_id, source=source, updated_at=now)
        await self.conn.execute(self._insert(t.aliases).values(workspace=workspace, alias=alias, **values)
                                .on_conflict_do_update(index_elements=["workspace", "alias"], set_=values))

    async def delete_alias(self, workspace: str, alias: str) -> None:
        await self.conn.execute(delete(t.aliases).where(t.aliases.c.workspace == workspace,
                                                        t.aliases.c.alias == alias))

    # ---- video pipelines' definitions ---------------------------------------------------------
    async def put_pipeline(self, pipeline_id: str, workspace: str, definition: str, now: datetime) -> None:
        values = dict(workspace=workspace, definition=definition, updated_at=now)
        await self.conn.execute(self._insert(t.pipelines).values(id=pipeline_id, created_at=now, **values)
                                .on_conflict_do_update(index_elements=["id"], set_=values))

    async def pipeline(self, pipeline_id: str) -> tuple[str, str] | None:
        """(workspace, definition) of a pipeline, None when there is none."""
        row = (await self.conn.execute(select(t.pipelines.c.workspace, t.pipelines.c.definition)
                                       .where(t.pipelines.c.id == pipeline_id))).first()
        return (row.workspace, row.definition) if row else None

    async def delete_pipeline(self, pipeline_id: str) -> bool:
        return (await self.conn.execute(delete(t.pipelines).where(t.pipelines.c.id == pipeline_id))).rowcount > 0

    async def pipeline_ids(self, workspace: str = "") -> list[str]:
        query = select(t.pipelines.c.id).order_by(t.pipelines.c.id)
        if workspace:
            query = query.where(t.pipelines.c.workspace == workspace)
        return list((await self.conn.execute(query)).scalars())
    # ---- workflows ----------------------------------------------------------------------------
    async def workflows(self, workspace: str = "", workflow_id: str = "") -> list[StoredWorkflow]:
        w, v = t.workflows, t.workflow_versions
        counts = (select(v.c.workspace, v.c.workflow_id, func.count().label("n"))
                  .group_by(v.c.workspace, v.c.workflow_id).subquery())
        query = (select(w, counts.c.n).join(counts, (counts.c.workspace == w.c.workspace)
                                           & (counts.c.workflow_id == w.c.workflow_id))
                 .order_by(w.c.workspace, w.c.workflow_id))
        if workspace:
            query = query.where(w.c.workspace == workspace)
        if workflow_id:
            query = query.where(w.c.workflow_id == workflow_id)
        return [StoredWorkflow(r.workspace, r.workflow_id, r.public, r.current_version, r.n, _aware(r.updated_at))
                for r in await self.conn.execute(query)]

    async def workflow_definition(self, workspace: str, workflow_id: str, version: int) -> str | None:
        v = t.workflow_versions
        return (await self.conn.execute(select(v.c.definition).where(
            v.c.workspace == workspace, v.c.workflow_id == workflow_id, v.c.version == version))).scalar()

    async def put_workflow(self, workspace: str, workflow_id: str, definition: str, public: bool,
                           now: datetime) -> int:
        """Store ``definition`` as the workflow's next version, made current; returns that version."""
        existing = await self.workflows(workspace, workflow_id)
        version = existing[0].current_version + 1 if existing else 1
        last = (await self.conn.execute(select(func.max(t.workflow_versions.c.version)).where(
            t.workflow_versions.c.workspace == workspace, t.workflow_versions.c.workflow_id == workflow_id))).scalar()
        version = max(version, (last or 0) + 1)
        await self.conn.execute(t.workflow_versions.insert().values(
            workspace=workspace, workflow_id=workflow_id, version=version, definition=definition, created_at=now))
        values = dict(public=public, current_version=version, updated_at=now)
        await self.conn.execute(self._insert(t.workflows).values(
            workspace=workspace, workflow_id=workflow_id, created_at=now, **values)
            .on_conflict_do_update(index_elements=["workspace", "workflow_id"], set_=values))
        return version

    async def delete_workflow(self, workspace: str, workflow_id: str) -> None:
        for table in (t.workflow_versions, t.workflows):
            await self.conn.execute(delete(table).where(table.c.workspace == workspace,
                                                        table.c.workflow_id == workflow_id))


class Store:
    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine, self.where = engine, safe_url(url)

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(create_engine(url), url)

    @asynccontextmanager
    async def _tx(self, begin: bool) -> AsyncIterator[Tx]:
        try:
            async with (self.engine.begin() if begin else self.engine.connect()) as conn:
                yield Tx(conn)
        except IntegrityError as exc:
            raise Conflict(f"a concurrent change conflicted ({type(exc.orig).__name__}); try again") from exc
        except (SQLAlchemyError, DBAPIError, OSError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"the registry database is unavailable ({type(exc).__name__})") from exc

    def read(self):  # noqa: ANN201 - an async context manager yielding Tx
        return self._tx(begin=False)

    def write(self):  # noqa: ANN201
        return self._tx(begin=True)

    async def close(self) -> None:
        await self.engine.dispose()
