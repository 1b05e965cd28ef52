"""A registry in this process (real gRPC server, real database and Redis), for tests of its clients."""

from __future__ import annotations

from pathlib import Path

from fleet.keys import hash_api_key
from services.common.server import Runner
from services.registry.server import build
from services.registry.settings import RegistrySettings
from services.registry.store import migrate
from services.registry.store.engine import create_engine

ADMIN_TOKEN = "fa_test_admin_token"


async def migrated(url: str) -> str:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def start_registry(tmp_path: Path, redis_url: str, namespace: str, catalog: Path | None = None,
                         database_url: str = "", port: int = 0, **settings: object) -> Runner:
    url = database_url or f"sqlite:///{tmp_path / 'registry.db'}"
    await migrated(url)
    runner = Runner(build(RegistrySettings(
        port=port, metrics_port=0, redis_url=redis_url, redis_namespace=namespace, database_url=url,
        catalog=str(catalog) if catalog else "", admin_token_sha256=hash_api_key(ADMIN_TOKEN), **settings)))
    await runner.start()
    return runner
