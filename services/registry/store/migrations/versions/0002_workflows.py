"""Stored workflows: workflows (one row per workspace's workflow, its current version) and workflow_versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["workspace"], ["workspaces.name"], name="fk_workflows_workspace_workspaces"),
        sa.PrimaryKeyConstraint("workspace", "workflow_id", name="pk_workflows"),
    )
    op.create_table(
        "workflow_versions",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("workspace", "workflow_id", "version", name="pk_workflow_versions"),
    )


def downgrade() -> None:
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
