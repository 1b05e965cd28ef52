"""The registry's logic on a real database and Redis: resolution, tenancy, keys, caching, its gRPC API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from fleet.internal.v1 import registry_pb2, registry_pb2_grpc
from fleet.keys import hash_api_key
from fleet.v1 import admin_pb2
from services.cache import FleetCache
from services.cache.embedded import EmbeddedRedis
from services.common import descriptors
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from services.common.server import Runner
from services.registry.admin import Admin
from services.registry.catalog import Catalog
from services.registry.client import ADMIN_HEADER
from services.registry.service import Registry
from services.registry.store.store import Store
from tests.conftest import OTHER_KEY, TEST_KEY, write_catalog
from tests.registry.helpers import make_package, parts
from tests.registry_harness import ADMIN_TOKEN, start_registry

THIRD_KEY = "fk_test_third_key"


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    make_package(tmp_path, "det")
    make_package(tmp_path, "private")
    return write_catalog(tmp_path / "catalog.yaml", [
        {"id": "det/1", "workspace": "demo", "package": "det", "public": True, "aliases": ["detector"]},
        {"id": "det/2", "workspace": "demo", "package": "det"},
        {"id": "det/10", "workspace": "demo", "package": "det"},
        {"id": "private/1", "workspace": "demo", "package": "private", "aliases": ["secret"]},
        {"id": "theirs/1", "workspace": "third", "package": "private"},
    ], {"demo": [TEST_KEY], "other": [OTHER_KEY], "third": [THIRD_KEY]})


@pytest.fixture
async def registry(store: Store, cache: FleetCache, catalog_path: Path) -> tuple[Registry, Admin]:
    reg, admin = parts(store, cache, hash_api_key(ADMIN_TOKEN))
    await admin.apply(Catalog.load(catalog_path))
    return reg, admin


async def test_ids_latest_and_workspace_scoped_aliases(registry: tuple[Registry, Admin]) -> None:
    reg, admin = registry
    assert (await reg.resolve("det/1", "other")).model_id == "det/1"  # public: any workspace
    assert (await reg.resolve("detector", "demo")).model_id == "det/1"
    assert (await reg.resolve("det/latest", "demo")).model_id == "det/10"  # numeric order, own versions
    assert (await reg.resolve("det/latest", "other")).model_id == "det/1"  # the highest it may see
    with pytest.raises(NotFound):
        await reg.resolve("detector", "other")  # demo's alias: not other's
    await admin.set_alias("other", "detector", "det/1")
    assert (await reg.resolve("detector", "other")).model_id == "det/1"
    assert await admin.set_alias("demo", "detector", "det/2") == "det/1"  # moved; the old target returned
    assert (await reg.resolve("detector", "demo")).model_id == "det/2"
    assert (await reg.resolve("det/1", "demo")).aliases == ()  # a record lists its own workspace's aliases
    with pytest.raises(NotFound):
        await admin.set_alias("other", "mine", "private/1")  # another workspace's private model
    with pytest.raises(InvalidArgument, match="reserved"):
        await admin.set_alias("demo", "det/latest", "det/1")
    await admin.delete_alias("demo", "detector")
    with pytest.raises(NotFound):
        await reg.resolve("detector", "demo")


async def test_a_foreign_private_model_answers_exactly_like_an_unknown_id(registry: tuple[Registry, Admin]) -> None:
    reg, _ = registry
    answers = []
    for name in ("private/1", "nope/1", "secret", "theirs/latest"):
        with pytest.raises(NotFound) as err:
            await reg.resolve(name, "other")
        answers.append((err.value.code, err.value.message.replace(repr(name), "<id>")))
    assert len(set(answers)) == 1, answers
    with pytest.raises(InvalidArgument):
        await reg.resolve("../../etc/passwd", "demo")


async def test_keys_are_created_listed_and_revoked(registry: tuple[Registry, Admin]) -> None:
    reg, admin = registry
    assert (await reg.authenticate(hash_api_key(TEST_KEY))).workspace == "demo"
    key, secret = await admin.create_key("third", "ci")
    assert secret.startswith("fk_") and key.prefix == secret[:7] and key.sha256 == hash_api_key(secret)
    who = await reg.authenticate(hash_api_key(secret))
    assert (who.workspace, who.key_id, who.admin) == ("third", key.id, False)
    listed = await admin.list_keys("third")
    assert [k.id for k in listed][-1] == key.id and not listed[-1].revoked
    revoked = await admin.revoke_key(key.id)
    assert revoked.revoked and revoked.revoked_at is not None
    with pytest.raises(Unauthenticated):
        await reg.authenticate(hash_api_key(secret))
    assert (await admin.revoke_key(key.id)).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(NotFound, match="fleet keys list"):
        await admin.revoke_key("key_nope")
    admin_who = await reg.authenticate(hash_api_key(ADMIN_TOKEN))
    assert admin_who.admin and admin_who.workspace == ""
    with pytest.raises(Unauthenticated):
        await reg.authenticate(hash_api_key("fk_wrong"))
    with pytest.raises(InvalidArgument):
        await reg.authenticate("not-a-hash")


async def test_register_list_delete(registry: tuple[Registry, Admin]) -> None:
    reg, admin = registry
    base = await reg.resolve("private/1", "demo")
    record = base.model_copy(update={"model_id": "new/1", "aliases": ("fresh",), "workspace": "other"})
    stored = await admin.register(record, replace=False)
    assert stored.source == "admin" and stored.record.aliases == ("fresh",)
    with pytest.raises(AlreadyExists):
        await admin.register(record, replace=False)
    assert (await reg.resolve("fresh", "other")).model_id == "new/1"
    page, token = await reg.list("demo", page_size=2, page_token="")
    assert [r.model_id for r in page] == ["det/1", "det/10"] and token == "det/10"
    page, token = await reg.list("demo", page_size=10, page_token=token)
    assert [r.model_id for r in page] == ["det/2", "private/1"] and token == ""
    assert [r.model_id for r in (await reg.list("other", 10, ""))[0]] == ["det/1", "new/1"]
    await admin.delete_model("new/1")
    for name in ("new/1", "fresh"):
        with pytest.raises(NotFound):
            await reg.resolve(name, "other")


async def test_redis_flushed_or_down_loses_nothing(store: Store, catalog_path: Path, own_redis: EmbeddedRedis) -> None:
    cache = FleetCache.from_url(own_redis.url, timeout_s=0.3, namespace="t")
    try:
        reg, admin = parts(store, cache)
        await admin.apply(Catalog.load(catalog_path))
        deadline = time.monotonic() + 10
        while await cache.registry.model("det/1") is None:  # read through and filled (once the write's
            assert time.monotonic() < deadline               # tombstone, a couple of seconds, is gone)
            assert (await reg.resolve("detector", "demo")).model_id == "det/1"
            await asyncio.sleep(0.1)
        await cache.client.flushall()
        assert (await reg.resolve("detector", "demo")).model_id == "det/1"
        assert (await reg.authenticate(hash_api_key(TEST_KEY))).workspace == "demo"
        own_redis.stop()
        started = time.monotonic()
        for _ in range(20):  # answered from the database, without waiting on Redis each time
            assert (await reg.resolve("det/latest", "demo")).model_id == "det/10"
        assert time.monotonic() - started < 10
        key, secret = await admin.create_key("demo", "while-redis-is-down")
        await admin.revoke_key(key.id)  # the invalidation is kept until Redis answers again
        assert admin.lookups.pending
        own_redis.start()
        for _ in range(50):
            await admin.lookups.retry_pending()
            if not admin.lookups.pending:
                break
            await asyncio.sleep(0.1)
        assert not admin.lookups.pending
        with pytest.raises(Unauthenticated):
            await reg.authenticate(hash_api_key(secret))
    finally:
        await cache.close()


@pytest.fixture
async def registry_server(tmp_path: Path, redis_url: str, namespace: str, catalog_path: Path) -> AsyncIterator[Runner]:
    runner = await start_registry(tmp_path, redis_url, namespace, catalog_path)
    yield runner
    await runner.stop()


async def test_grpc_api_and_admin_verification(registry_server: Runner) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{registry_server.port}") as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        reply = await stub.ResolveModel(registry_pb2.ResolveModelRequest(model_id="det/1", workspace="other"))
        record = descriptors.from_proto(reply.model)
        assert record.model_id == "det/1" and record.spec.class_names == ("circle", "rectangle")
        who = await stub.Authenticate(registry_pb2.AuthenticateRequest(api_key_sha256=hash_api_key(TEST_KEY)))
        assert who.workspace == "demo" and who.key_id.startswith("key_") and not who.admin
        for call, request, code in [
            (stub.ResolveModel, registry_pb2.ResolveModelRequest(model_id="nope/1", workspace="demo"),
             grpc.StatusCode.NOT_FOUND),
            (stub.ResolveModel, registry_pb2.ResolveModelRequest(model_id="private/1", workspace="other"),
             grpc.StatusCode.NOT_FOUND),
            (stub.Authenticate, registry_pb2.AuthenticateRequest(api_key_sha256=hash_api_key("bad")),
             grpc.StatusCode.UNAUTHENTICATED),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(request)
            assert err.value.code() == code
        listed = await stub.ListModels(registry_pb2.ListModelsRequest(workspace="other"))
        assert [m.model_id for m in listed.models] == ["det/1"]

        admin = registry_pb2_grpc.RegistryAdminServiceStub(channel)
        request = registry_pb2.RegistryAdminServiceCreateApiKeyRequest(
            request=admin_pb2.CreateApiKeyRequest(workspace="demo", name="x"))
        for metadata in ((), ((ADMIN_HEADER, hash_api_key(TEST_KEY)),), ((ADMIN_HEADER, ADMIN_TOKEN),)):
            with pytest.raises(grpc.aio.AioRpcError) as err:  # reaching the port is not enough
                await admin.CreateApiKey(request, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        made = await admin.CreateApiKey(request, metadata=((ADMIN_HEADER, hash_api_key(ADMIN_TOKEN)),))
        assert made.response.api_key.startswith("fk_") and made.response.key.workspace == "demo"
