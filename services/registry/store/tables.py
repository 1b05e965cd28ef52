"""The registry's schema (SQLAlchemy Core). Changing it needs a new Alembic revision in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "pk": "pk_%(table_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s", "ix": "ix_%(table_name)s_%(column_0_name)s",
})


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


workspaces = Table(
    "workspaces", metadata,
    Column("name", String(64), primary_key=True),
    _ts("created_at"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),
    # The first characters of the key (never enough to use it), shown by `fleet keys list`; empty for
    # keys a catalog declared by hash only.
    Column("prefix", String(16), nullable=False, default=""),
    Column("sha256", String(64), nullable=False),
    Column("workspace", String(64), ForeignKey("workspaces.name"), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    # "catalog": declared by a catalog (prunable); "admin": created with `fleet keys create`.
    Column("source", String(16), nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
    _ts("last_used_at", nullable=True),
    UniqueConstraint("sha256"),
    Index("ix_api_keys_workspace", "workspace"),
)

models = Table(
    "models", metadata,
    Column("id", String(97), primary_key=True),
    Column("project", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("workspace", String(64), ForeignKey("workspaces.name"), nullable=False),
    Column("public", Boolean, nullable=False, default=False),
    # The validated model.json (services.common.model_spec.ModelSpec) as JSON text.
    Column("spec", Text, nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    # "catalog", "admin" (RegisterModel) or "upstream" (cached from FLEET_REGISTRY_UPSTREAM_URL).
    Column("source", String(16), nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    # Upstream records are looked up again after this time (null: never expires).
    _ts("expires_at", nullable=True),
    Index("ix_models_project", "project"),
    Index("ix_models_workspace", "workspace"),
)

# Video pipelines' definitions (the pipelines service's JSON, opaque here); their leases live in Redis.
pipelines = Table(
    "pipelines", metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace", String(64), ForeignKey("workspaces.name"), nullable=False),
    Column("definition", Text, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
    Index("ix_pipelines_workspace", "workspace"),
)

aliases = Table(
    "aliases", metadata,
    Column("workspace", String(64), ForeignKey("workspaces.name"), primary_key=True),
    Column("alias", String(97), primary_key=True),
    Column("model_id", String(97), ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(16), nullable=False),
    _ts("updated_at"),
    Index("ix_aliases_model_id", "model_id"),
)

workflows = Table(
    "workflows", metadata,
    Column("workspace", String(64), ForeignKey("workspaces.name"), primary_key=True),
    Column("workflow_id", String(64), primary_key=True),
    Column("public", Boolean, nullable=False, default=False),
    Column("current_version", Integer, nullable=False),
    _ts("created_at"),
    _ts("updated_at"),
)

workflow_versions = Table(
    "workflow_versions", metadata,
    Column("workspace", String(64), primary_key=True),
    Column("workflow_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    # The validated definition's JSON text.
    Column("definition", Text, nullable=False),
    _ts("created_at"),
)
