"""The gateway's composition root."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib.metadata import PackageNotFoundError, version

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleet.v1 import gateway_pb2, gateway_pb2_grpc
from services.cache import FleetCache
from services.common.errors import CacheUnavailable, Unavailable
from services.common.server import Service
from services.gateway.auth import Authenticator
from services.gateway.gateway import Gateway
from services.gateway.registry_client import RegistryClient
from services.gateway.resolver import ModelResolver
from services.gateway.servicer import GatewayServicer
from services.gateway.settings import GatewaySettings
from services.gateway.workers import WorkerPool

log = logging.getLogger("fleet.gateway")
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


def package_version() -> str:
    try:
        return version("inference-fleet")
    except PackageNotFoundError:
        return "0+unknown"


async def wait_for_registry(registry: RegistryClient, wait_s: float) -> None:
    """Block start-up (health NOT_SERVING) until the registry reports SERVING."""
    stub = health_pb2_grpc.HealthStub(registry.channel)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise Unavailable(f"the registry at {registry.address} did not become ready within {wait_s}s")
        await asyncio.sleep(0.2)


def build(settings: GatewaySettings) -> Service:
    cache = FleetCache.from_url(settings.redis_url, settings.redis_timeout_s, settings.redis_namespace)
    registry = RegistryClient(settings.registry_address, settings.max_message_bytes)
    workers = WorkerPool(
        [a.strip() for a in settings.workers.split(",") if a.strip()], settings.max_message_bytes, cache,
        settings.discover_workers, settings.worker_cooldown_s, settings.placement_refresh_s,
    )
    auth = Authenticator(cache, registry, settings.auth_local_ttl_s, settings.auth_negative_ttl_s,
                         settings.auth_redis_ttl_s)
    gateway = Gateway(ModelResolver(registry, settings.model_cache_ttl_s), workers, cache,
                      settings.worker_attempts, settings.request_timeout_s, settings.response_cache_ttl_s)

    def register(server: grpc.aio.Server) -> None:
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
            GatewayServicer(gateway, auth, package_version()), server)

    async def startup(port: int) -> None:
        try:
            await cache.ping()
        except CacheUnavailable:
            log.warning("Redis is unavailable at start-up; auth and placement caches are degraded")
        await wait_for_registry(registry, settings.registry_wait_s)
        workers.start()

    async def shutdown() -> None:
        await workers.close()
        await registry.close()
        await cache.close()

    return Service("gateway", settings, register, [SERVICE_NAME], startup, shutdown)
