"""Schema migrations: the registry refuses an unmigrated or unknown schema and says how to migrate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from services.common.server import Runner
from services.registry.server import build
from services.registry.settings import RegistrySettings
from services.registry.store import migrate
from services.registry.store.engine import create_engine


async def test_unmigrated_and_unknown_schemas_are_refused(database_url: str, redis_url: str, namespace: str) -> None:
    settings = RegistrySettings(port=0, metrics_port=0, database_url=database_url, redis_url=redis_url,
                                redis_namespace=namespace)
    runner = Runner(build(settings))
    try:
        with pytest.raises(migrate.NotMigrated, match="run `fleet-registry migrate`"):
            await runner.start()
    finally:
        await runner.stop()
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # idempotent
        await migrate.check(engine, "db")
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        with pytest.raises(migrate.NotMigrated, match="newer than this registry knows"):
            await migrate.check(engine, "db")
    finally:
        await engine.dispose()


async def test_auto_migrate_opt_in(tmp_path: Path, redis_url: str, namespace: str) -> None:
    settings = RegistrySettings(port=0, metrics_port=0, database_url=f"sqlite:///{tmp_path / 'r.db'}",
                                redis_url=redis_url, redis_namespace=namespace, auto_migrate=True)
    runner = Runner(build(settings))
    await runner.start()
    await runner.stop()


def test_the_migrate_command_and_a_refused_start(tmp_path: Path) -> None:
    env = {**os.environ, "FLEET_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "FLEET_REGISTRY_PORT": "0", "FLEET_REGISTRY_METRICS_PORT": "0", "FLEET_REGISTRY_LOG_FORMAT": "text"}
    refused = subprocess.run([sys.executable, "-m", "services.registry"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "fleet-registry migrate" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    done = subprocess.run([sys.executable, "-m", "services.registry", "migrate"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "(head)" in done.stdout, done.stderr
