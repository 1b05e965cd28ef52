"""Running a service: gRPC server, health, reflection, metrics endpoint, graceful shutdown.

Each service builds a ``Service`` in its composition root (``<service>/server.py``) and
calls ``run``. Health (the overall service ``""`` and each service's own name: readiness)
reports NOT_SERVING until ``startup`` has finished, preloads included, and again from the
moment shutdown begins; in-flight calls get ``shutdown_grace_s`` to finish. The health name
``LIVENESS_SERVICE`` is SERVING from the moment the server starts until the process exits, so a
liveness probe fails only when the process or its event loop no longer answers, never because a
model is loading or the service is draining.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import disable_created_metrics, start_http_server

from services.common.channels import add_port, server_options
from services.common.dependencies import Check, DependencyMonitor
from services.common.labels import MODEL_LABELS
from services.common.metrics import READY
from services.common.settings import ServiceSettings

log = logging.getLogger("fleet.server")

Hook = Callable[[], Awaitable[None]]
StartupHook = Callable[[int], Awaitable[None]]  # receives the bound gRPC port

LIVENESS_SERVICE = "liveness"
"""Health service name for liveness probes: SERVING whenever the process answers at all."""


@dataclass
class Service:
    """What a service plugs into the shared runner."""

    name: str
    settings: ServiceSettings
    register: Callable[[grpc.aio.Server], None]
    service_names: list[str]
    startup: StartupHook | None = None
    shutdown: Hook | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # Ports of other listeners (e.g. "http_port"), filled by ``startup``; written to the ready file.
    ports: dict[str, int] = field(default_factory=dict)
    # Called as shutdown begins, alongside the gRPC server's graceful stop (e.g. to drain another listener).
    draining: Hook | None = None
    # On SIGTERM, after health turns NOT_SERVING and before the server stops taking calls: announce that the
    # service is going away and keep serving while its callers move elsewhere (a worker's drain notice).
    drain_notice: Hook | None = None
    dependencies: dict[str, Check] = field(default_factory=dict)  # checked for fleet_dependency_up


class Runner:
    """Owns the gRPC server and the health state of one service process."""

    def __init__(self, service: Service) -> None:
        self.service = service
        s = service.settings
        self.server = grpc.aio.server(options=server_options(s.max_message_bytes))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service.register(self.server)
        reflection.enable_server_reflection(
            [*service.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.tls = s.server_tls()
        self.port = add_port(self.server, f"{s.host}:{s.port}", self.tls)
        # Kubernetes' gRPC probes speak plaintext without a client certificate: with TLS on the main
        # port, a port of its own serves only the health service (the same state) to them.
        self.health_server: grpc.aio.Server | None = None
        self.health_port = 0
        if s.health_port:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = add_port(self.health_server, f"{s.host}:{s.health_port}", None)
        self.metrics_port = 0
        self._httpd: object | None = None
        self.dependencies = DependencyMonitor(service.dependencies, s.dependency_check_interval_s,
                                              s.dependency_check_timeout_s)
        self._stop = asyncio.Event()
        self._served = False  # became SERVING (only then is there anything to drain)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self.service.service_names):
            await self.health.set(name, status)
        READY.labels(self.service.name).set(1 if serving else 0)

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        s = self.service.settings
        MODEL_LABELS.configure(s.metrics_max_models)
        disable_created_metrics()  # no *_created series beside every counter and histogram (half the series)
        self._httpd, _ = start_http_server(s.metrics_port, addr=s.host)
        self.metrics_port = self._httpd.server_port
        await self.set_serving(False)
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        if self.health_server is not None:
            await self.health_server.start()
        await self.server.start()
        log.info("%s listening", self.service.name, extra={
            "port": self.port, "metrics_port": self.metrics_port, "health_port": self.health_port,
            "tls": "off" if self.tls is None else ("mtls" if self.tls.client_ca else "tls"),
        })
        await self.dependencies.start()
        if self.service.startup:
            await self.service.startup(self.port)
        await self.set_serving(True)
        self._served = True
        if s.ready_file:
            tmp = f"{s.ready_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"port": self.port, "metrics_port": self.metrics_port, **self.service.ports,
                           "pid": os.getpid()}, fh)
            os.replace(tmp, s.ready_file)
        log.info("%s ready", self.service.name)

    async def stop(self) -> None:
        grace = self.service.settings.shutdown_grace_s
        log.info("%s shutting down", self.service.name, extra={"grace_s": grace})
        await self.set_serving(False)
        if self.service.drain_notice and self._served:
            await self.service.drain_notice()
        await asyncio.gather(self.server.stop(grace), *([self.service.draining()] if self.service.draining else []))
        await self.dependencies.stop()
        if self.service.shutdown:
            await self.service.shutdown()
        if self.health_server is not None:  # liveness answers until the very end
            await self.health_server.stop(None)
        if self._httpd is not None:
            await asyncio.to_thread(self._httpd.shutdown)  # type: ignore[attr-defined]
            self._httpd.server_close()  # type: ignore[attr-defined]
        log.info("%s stopped", self.service.name)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()


def run(build: Callable[[], Service]) -> None:
    """Build a service inside the event loop and run it until SIGTERM or SIGINT."""

    async def main() -> None:
        await Runner(build()).run()

    asyncio.run(main())
