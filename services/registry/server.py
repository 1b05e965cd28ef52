"""The registry's composition root."""

from __future__ import annotations

import asyncio
import logging

import grpc
import sqlalchemy

from fleet.internal.v1 import pipeline_records_pb2_grpc, registry_pb2_grpc
from services.cache import FleetCache
from services.cache.invalidation import InvalidationListener
from services.common.errors import CacheUnavailable
from services.common.periodic import Periodic
from services.common.server import Service
from services.registry.admin import Admin
from services.registry.cached import CacheTtls, ReadThrough
from services.registry.catalog import Catalog
from services.registry.pipeline_record_servicer import SERVICE_NAME as PIPELINES_SERVICE_NAME
from services.registry.pipeline_record_servicer import PipelineRecordServicer
from services.registry.service import Registry
from services.registry.servicer import ADMIN_SERVICE_NAME, SERVICE_NAME, RegistryAdminServicer, RegistryServicer
from services.registry.settings import RegistrySettings
from services.registry.store import migrate
from services.registry.store.store import Conflict, Store
from services.registry.upstream import Upstream
from services.registry.workflows import Workflows

log = logging.getLogger("fleet.registry")


def build(settings: RegistrySettings) -> Service:
    cache = FleetCache.from_url(settings.redis_url, settings.redis_timeout_s, settings.redis_namespace)
    store = Store.from_url(settings.database_url)
    lookups = ReadThrough(store, cache.registry, CacheTtls(settings.cache_key_ttl_s, settings.cache_model_ttl_s,
                                                           settings.cache_model_ttl_s))
    upstream = (Upstream(settings.upstream_url, settings.upstream_timeout_s, settings.upstream_token,
                         settings.upstream_ttl_s) if settings.upstream_url else None)
    registry = Registry(store, lookups, settings.admin_token_sha256, upstream, settings.upstream_negative_ttl_s)
    admin = Admin(store, lookups, registry)
    workflows = Workflows(store, lookups)
    retry = Periodic("invalidation-retry", 1.0, lookups.retry_pending)
    listener: InvalidationListener = cache.invalidation_listener(registry.forget_missing)

    async def apply_startup_catalog() -> None:
        catalog = Catalog.load(settings.catalog)
        for attempt in range(5):
            try:
                changes = await admin.apply(catalog, prune=settings.catalog_prune)
                break
            except Conflict:  # another replica applied it at the same moment: apply again (idempotent)
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        log.info("start-up catalog applied", extra={"catalog": settings.catalog, "changes": len(changes)})

    def register(server: grpc.aio.Server) -> None:
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(registry, workflows), server)
        registry_pb2_grpc.add_RegistryAdminServiceServicer_to_server(
            RegistryAdminServicer(registry, admin, workflows), server)
        pipeline_records_pb2_grpc.add_PipelineRecordServiceServicer_to_server(PipelineRecordServicer(store), server)

    async def startup(port: int) -> None:
        if settings.auto_migrate:
            await migrate.upgrade(store.engine)
        await migrate.check(store.engine, store.where)
        try:
            await cache.ping()
        except CacheUnavailable:
            log.warning("Redis is unavailable at start-up; answering from the database")
        if settings.catalog:
            await apply_startup_catalog()
        listener.start()
        retry.start()

    async def shutdown() -> None:
        await retry.stop()
        await listener.close()
        await registry.close()
        await store.close()
        await cache.close()

    async def database() -> None:
        async with store.engine.connect() as conn:
            await conn.execute(sqlalchemy.text("SELECT 1"))

    return Service("registry", settings, register, [SERVICE_NAME, ADMIN_SERVICE_NAME, PIPELINES_SERVICE_NAME],
                   startup, shutdown, dependencies={"redis": cache.ping, "database": database})
