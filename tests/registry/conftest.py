"""Databases for registry tests: a SQLite file, and a database of its own on the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.registry.store import migrate
from services.registry.store.store import Store

PG_HOST, PG_PORT, PG_ADMIN_DB = "127.0.0.1", 5432, "test"


def _pg_admin(sql: str) -> bool:
    """Run one statement on the machine's PostgreSQL (autocommit); False when it does not answer."""
    import asyncpg  # noqa: PLC0415

    async def go() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=PG_ADMIN_DB, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(go())
    except (OSError, asyncio.TimeoutError) as exc:
        print(f"PostgreSQL on {PG_HOST}:{PG_PORT} does not answer ({type(exc).__name__}): skipping its cases")
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, unmigrated database: a SQLite file, or a fresh one on the machine's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return postgres_database(request)


def postgres_database(request: pytest.FixtureRequest) -> str:
    """A database of this test's own on the machine's PostgreSQL, dropped when the test ends."""
    name = f"fleet_test_{uuid.uuid4().hex[:12]}"
    if not _pg_admin(f'CREATE DATABASE "{name}"'):
        pytest.skip(f"PostgreSQL on {PG_HOST}:{PG_PORT} does not answer")
    request.addfinalizer(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = Store.from_url(database_url)
    await migrate.upgrade(s.engine)
    yield s
    await s.close()
