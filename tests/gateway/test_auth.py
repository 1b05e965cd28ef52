"""Gateway authentication: in-process cache -> Redis (1 h TTL) -> registry, keys only as hashes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.cache import FleetCache
from fleet.keys import hash_api_key
from services.common.errors import Unauthenticated
from services.common.server import Runner
from services.gateway.auth import Authenticator, bearer_key
from services.gateway.registry_client import RegistryClient
from services.registry.server import build
from services.registry.settings import RegistrySettings
from tests.conftest import OTHER_KEY, TEST_KEY, write_catalog


@pytest.fixture
async def registry(tmp_path: Path, redis_url: str, namespace: str) -> AsyncIterator[Runner]:
    catalog = write_catalog(tmp_path / "catalog.yaml", [])
    runner = Runner(build(RegistrySettings(port=0, metrics_port=0, catalog=str(catalog), redis_url=redis_url,
                                           redis_namespace=namespace)))
    await runner.start()
    yield runner
    await runner.stop()


@pytest.fixture
async def client(registry: Runner) -> AsyncIterator[RegistryClient]:
    c = RegistryClient(f"127.0.0.1:{registry.port}", 1 << 20)
    yield c
    await c.close()


def test_bearer_key_parsing() -> None:
    assert bearer_key((("authorization", "Bearer abc"),)) == "abc"
    assert bearer_key((("authorization", "bearer  abc "),)) == "abc"
    for bad in ((), (("authorization", "Basic abc"),), (("authorization", "Bearer "),)):
        with pytest.raises(Unauthenticated, match="authorization: Bearer"):
            bearer_key(bad)


async def test_each_layer_answers_in_turn(cache: FleetCache, client: RegistryClient, registry: Runner,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = Authenticator(cache, client, local_ttl_s=60, negative_ttl_s=5, redis_ttl_s=3600)
    assert await auth.workspace_for(TEST_KEY) == "demo"  # registry, then cached in Redis
    assert await cache.auth.get(hash_api_key(TEST_KEY)) == "demo"
    await registry.stop()
    assert await auth.workspace_for(TEST_KEY) == "demo"  # in-process cache
    fresh = Authenticator(cache, client, local_ttl_s=60, negative_ttl_s=5, redis_ttl_s=3600)
    assert await fresh.workspace_for(TEST_KEY) == "demo"  # Redis, with the registry down
    assert TEST_KEY not in caplog.text


async def test_invalid_keys_are_rejected_and_remembered_briefly(cache: FleetCache, client: RegistryClient) -> None:
    auth = Authenticator(cache, client, local_ttl_s=60, negative_ttl_s=60, redis_ttl_s=3600)
    with pytest.raises(Unauthenticated, match="not valid"):
        await auth.workspace_for("fk_wrong")
    await client.close()  # no registry to ask any more: the rejection is served from memory
    with pytest.raises(Unauthenticated, match="not valid"):
        await auth.workspace_for("fk_wrong")
    assert await cache.auth.get(hash_api_key("fk_wrong")) is None  # never cached in Redis


async def test_redis_down_falls_back_to_the_registry(own_redis, client: RegistryClient) -> None:
    broken = FleetCache.from_url(own_redis.url, timeout_s=0.3)
    own_redis.stop()
    try:
        auth = Authenticator(broken, client, local_ttl_s=0, negative_ttl_s=0, redis_ttl_s=3600)
        assert await auth.workspace_for(OTHER_KEY) == "other"
    finally:
        await broken.close()
