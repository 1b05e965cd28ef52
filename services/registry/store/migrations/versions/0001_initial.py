"""Initial schema: workspaces, api_keys, models, aliases.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("name", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_workspaces"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _ts("created_at"), _ts("revoked_at", True), _ts("last_used_at", True),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"], name="fk_api_keys_workspace_workspaces"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("sha256", name="uq_api_keys_sha256"),
    )
    op.create_index("ix_api_keys_workspace", "api_keys", ["workspace"])
    op.create_table(
        "models",
        sa.Column("id", sa.String(97), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _ts("created_at"), _ts("updated_at"), _ts("expires_at", True),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"], name="fk_models_workspace_workspaces"),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
    )
    op.create_index("ix_models_project", "models", ["project"])
    op.create_index("ix_models_workspace", "models", ["workspace"])
    op.create_table(
        "aliases",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(97), nullable=False),
        sa.Column("model_id", sa.String(97), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"], name="fk_aliases_workspace_workspaces"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_aliases_model_id_models", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace", "alias", name="pk_aliases"),
    )
    op.create_index("ix_aliases_model_id", "aliases", ["model_id"])


def downgrade() -> None:
    op.drop_table("aliases")
    op.drop_table("models")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
