"""The registry's composition root."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import registry_pb2, registry_pb2_grpc
from services.cache import FleetCache
from services.common.server import Service
from services.registry.catalog import Catalog
from services.registry.service import Registry
from services.registry.servicer import RegistryServicer
from services.registry.settings import RegistrySettings

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


def build(settings: RegistrySettings) -> Service:
    cache = FleetCache.from_url(settings.redis_url, settings.redis_timeout_s, settings.redis_namespace)
    registry = Registry(cache)

    def register(server: grpc.aio.Server) -> None:
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(registry), server)

    async def startup(port: int) -> None:
        await cache.ping()
        if settings.catalog:
            await registry.load_catalog(Catalog.load(settings.catalog))

    return Service("registry", settings, register, [SERVICE_NAME], startup, cache.close)
