"""The gateway's composition root."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from importlib.metadata import PackageNotFoundError, version

import grpc

from fleet.v1 import admin_pb2_grpc, gateway_pb2_grpc, workflow_pb2_grpc
from fleet_oip.v2 import grpc_service_pb2_grpc as oip_pb2_grpc
from services.cache import FleetCache
from services.cache.registry_records import Invalidation
from services.common import collector
from services.common.background import lower_this_process
from services.common.errors import CacheUnavailable, Unavailable
from services.common.server import Service
from services.common.tls import HttpsContexts
from services.gateway.admin_servicer import ADMIN_SERVICE_NAME, AdminServicer
from services.gateway.auth import Authenticator
from services.gateway.copies import CopyController
from services.gateway.discovery import from_settings
from services.gateway.gateway import Gateway
from services.gateway.http.app import HttpServer, build_app
from services.gateway.http.context import HttpContext
from services.gateway.http.workflow_forward import HttpForwarder
from services.gateway.workflow_forward import WorkflowForwarder
from services.gateway.workflow_light import LightOrForward
from services.gateway.workflow_servicer import SERVICE_NAME as WORKFLOW_SERVICE_NAME
from services.gateway.workflow_servicer import WorkflowServicer
from services.gateway.workflow_store import StoredWorkflows
from services.gateway.workflows import engine_of
from services.gateway.oip.dataplane import DataPlane
from services.gateway.oip.servicer import SERVICE as OIP_SERVICE_NAME
from services.gateway.oip.servicer import OipServicer
from services.gateway.placement import CopyPolicy
from services.gateway.resolver import ModelResolver
from services.gateway.servicer import SERVICE_NAME, GatewayServicer
from services.gateway.settings import GatewaySettings
from services.gateway.streaming import StreamLimits
from services.gateway.workers import WorkerPool
from services.registry.client import RegistryClient

log = logging.getLogger("fleet.gateway")


def package_version() -> str:
    try:
        return version("inference-fleet")
    except PackageNotFoundError:
        return "0+unknown"


async def wait_for_registry(registry: RegistryClient, wait_s: float) -> None:
    """Block start-up (health NOT_SERVING) until a registry replica reports SERVING."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await registry.check()
        except Unavailable:
            pass
        if time.monotonic() > deadline:
            raise Unavailable(f"the registry at {registry.address} did not become ready within {wait_s}s")
        await asyncio.sleep(0.2)


def build(settings: GatewaySettings) -> Service:
    """The public gateway, or (``role=workflows``) the workflow engine's own process behind one."""
    engine_only = settings.role == "workflows"
    if engine_only:
        nice = lower_this_process(settings.workflows_process_nice)
        log.info("workflow engine process", extra={"nice": nice})
    cache = FleetCache.from_url(settings.redis_url, settings.redis_timeout_s, settings.redis_namespace)
    tls = settings.client_tls()
    registry = RegistryClient(settings.registry_address, settings.max_message_bytes, tls)
    discovery = from_settings(settings.discovery, settings.worker_addresses(), settings.workers_dns,
                              settings.workers_dns_refresh_s, cache.heartbeats)
    workers = WorkerPool(
        discovery, settings.max_message_bytes, settings.worker_probe_interval_s, settings.placement_refresh_s, tls,
        grace_s=settings.heartbeat_grace_s,
    )
    auth = Authenticator(registry, settings.auth_refresh_s, settings.auth_max_stale_s, settings.auth_negative_ttl_s)
    resolver = ModelResolver(registry, settings.model_cache_ttl_s, settings.model_max_stale_s)
    policy = CopyPolicy(settings.max_copies, settings.copy_load_threshold, settings.copy_window_s,
                        settings.copy_release_threshold, settings.copy_release_window_s)
    copies = CopyController(workers, resolver, cache, policy, settings.placement_refresh_s,
                            settings.copy_load_timeout_s)
    gateway = Gateway(resolver, workers, cache, settings.worker_attempts, settings.request_timeout_s,
                      settings.response_cache_ttl_s, copies)
    engine = engine_of(settings)  # one compiled-graph cache and CPU pool for every edge
    stored = StoredWorkflows(registry, settings.model_cache_ttl_s, settings.model_max_stale_s)
    limits = StreamLimits(settings.stream_max_in_flight, settings.stream_max_buffered_bytes)
    forward = http_forward = None
    if settings.forwards_workflows():  # the engine is a process of its own: pass workflow calls on to it
        forward = WorkflowForwarder(settings.workflows_address, settings.max_message_bytes, tls)
        if settings.http_enabled:
            http_forward = HttpForwarder(settings.workflows_http_address, settings.request_timeout_s, tls)

    def invalidated(inv: Invalidation) -> None:
        if inv.kind == "key":
            auth.forget(inv.key_sha256)
        else:
            resolver.invalidate(inv)
            stored.invalidate(inv)

    def resubscribed() -> None:  # messages may have been missed while Redis was away
        auth.revalidate_all()
        resolver.revalidate_all()
        stored.revalidate_all()

    listener = cache.invalidation_listener(invalidated, resubscribed)

    version = package_version()
    plane = DataPlane(gateway, "inference-fleet", version)
    http = None
    if settings.http_enabled:
        context = HttpContext(gateway, plane, auth, version, uuid.uuid4().hex, settings.max_message_bytes,
                              engine, stored, http_forward, settings.workflows_light_in_gateway)
        server_tls = settings.server_tls()
        app = build_app(context, settings.http_body_limit(), workflows_only=engine_only)
        http = HttpServer(app, settings.host, settings.http_port,
                          settings.shutdown_grace_s, HttpsContexts(server_tls).front if server_tls else None)

    def register(server: grpc.aio.Server) -> None:
        servicer = WorkflowServicer(gateway, engine, auth, stored, limits)
        if forward is None:
            workflow_pb2_grpc.add_WorkflowServiceServicer_to_server(servicer, server)
        elif settings.workflows_light_in_gateway:  # light runs here, the others to the engine
            server.add_generic_rpc_handlers((LightOrForward(servicer, forward, engine, auth, stored).handler(),))
        else:
            server.add_generic_rpc_handlers((forward.handler(),))
        if engine_only:
            return
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(GatewayServicer(gateway, auth, version, limits), server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(auth, registry), server)
        if settings.oip_enabled:
            oip_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(OipServicer(plane, auth, limits), server)

    async def startup(port: int) -> None:
        try:
            await cache.ping()
        except CacheUnavailable:
            log.warning("Redis is unavailable at start-up; auth and placement caches are degraded")
        listener.start()
        await wait_for_registry(registry, settings.registry_wait_s)
        await workers.refresh()  # know the fleet before the first request
        workers.start()
        if not engine_only:  # copies are the public gateways' to plan: the engine's model steps only route
            copies.start()
        if http is not None:
            service.ports["http_port"] = await http.start()
        collector.tune(settings.gc_young_threshold, settings.gc_freeze_at_start)  # start-up done: its heap frozen

    async def draining() -> None:
        if http is not None:
            await http.stop()

    async def shutdown() -> None:
        await listener.close()
        await copies.close()
        await workers.close()
        await auth.close()
        await resolver.close()
        await registry.close()
        engine.close()
        for forwarder in (forward, http_forward):
            if forwarder is not None:
                await forwarder.close()
        await stored.close()
        await cache.close()

    names = [WORKFLOW_SERVICE_NAME] if engine_only else [
        SERVICE_NAME, ADMIN_SERVICE_NAME, WORKFLOW_SERVICE_NAME, *([OIP_SERVICE_NAME] if settings.oip_enabled else [])]
    service = Service("workflows" if engine_only else "gateway", settings, register, names, startup, shutdown, draining=draining,
                      dependencies={"redis": cache.ping, "registry": registry.check})
    return service
