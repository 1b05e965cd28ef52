"""Schema migrations (Alembic, shipped in this package): upgrade, and the check the registry runs at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.errors import FailedPrecondition

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATE_COMMAND = "fleet-registry migrate"


class NotMigrated(FailedPrecondition):
    """The database has no schema, or an older one than this registry needs."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (idempotent)."""
    cfg = alembic_config()

    def run(connection) -> None:  # noqa: ANN001
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def check(engine: AsyncEngine, where: str) -> None:
    """Raise NotMigrated unless the schema is at this registry's head revision."""
    current, head = await current_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        raise NotMigrated(f"the registry database {where} has no schema: run `{MIGRATE_COMMAND}` "
                          "(or set FLEET_REGISTRY_AUTO_MIGRATE=true)")
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise NotMigrated(f"the registry database {where} is at revision {current}, newer than this registry "
                          f"knows (head {head}): upgrade the registry")
    raise NotMigrated(f"the registry database {where} is at revision {current}, older than {head}: "
                      f"run `{MIGRATE_COMMAND}` (or set FLEET_REGISTRY_AUTO_MIGRATE=true)")
