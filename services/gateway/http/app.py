"""The HTTP API: one FastAPI app (OpenAPI at /docs) and the uvicorn server that runs it on the gateway's loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.errors import FleetError
from services.gateway.http import errors, kserve, roboflow, workflow_forward, workflow_light, workflows
from services.gateway.http.context import HttpContext
from services.gateway.http.middleware import EdgeMiddleware
from services.tasks import registry as tasks

log = logging.getLogger("fleet.gateway.http")

DESCRIPTION = """The fleet's HTTP front door, on the same authentication, routing, caches and workers as
its gRPC API: the Roboflow inference server's routes (what `inference-sdk` and `curl` users call) and
KServe v2 REST (Open Inference Protocol). API keys: `Authorization: Bearer <key>`, or `api_key` in the
query or the JSON body. Errors: HTTP 400, 401, 403, 404, 413, 429, 503, 504 with the gRPC API's message."""


def build_app(ctx: HttpContext, max_body_bytes: int, workflows_only: bool = False) -> FastAPI:
    """The HTTP API; ``workflows_only``: the workflow routes alone (the engine's own process)."""
    app = FastAPI(title="Inference Fleet HTTP API", version=ctx.version, description=DESCRIPTION)
    app.add_exception_handler(FleetError, errors.fleet_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, errors.validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, errors.http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, errors.unexpected_error)
    app.add_middleware(EdgeMiddleware, max_body_bytes=max_body_bytes)
    if workflows_only:
        app.include_router(workflows.router(ctx))
        return app
    app.include_router(kserve.router(ctx))
    app.include_router(roboflow.router(ctx))
    for task in tasks.all_tasks():  # routes of a task's own (the Roboflow core models'), plug-ins' too
        routes = task.http_routes(ctx)
        if routes is not None:
            app.include_router(routes)
    forward = ctx.workflows_forward
    if forward is None:
        app.include_router(workflows.router(ctx))
    elif ctx.workflows_light_in_gateway:  # light runs here, the others to the engine's process
        app.include_router(workflow_light.router(ctx, forward))
    else:
        app.include_router(workflow_forward.router(forward))
    app.include_router(roboflow.legacy_router(ctx))  # its /{project}/{version} catches what the others did not
    return app


class _Server(uvicorn.Server):
    """uvicorn on a loop it does not own: the gateway's runner handles signals and shutdown."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]  # noqa: ANN202
        yield


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int, grace_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.requested_port, self.grace_s = host, port, grace_s
        self.config = uvicorn.Config(app, host=host, port=port, lifespan="off", access_log=False, log_config=None,
                                     timeout_graceful_shutdown=max(1, round(grace_s)) if grace_s else None)
        if ssl_context is not None:  # HTTPS with the gRPC port's certificate (re-read when its files change)
            self.config.load()
            self.config.ssl = ssl_context
        self.server = _Server(self.config)
        self.port = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind, serve in the background, and return the bound port once accepting."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and
        # with Nagle on, a response's body waits behind its headers for the client's delayed ACK (about 40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        self._task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise RuntimeError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("http listening", extra={"port": self.port})
        return self.port

    async def stop(self) -> None:
        """Stop accepting; in-flight requests get the grace period (then are cut)."""
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.grace_s + 5)
        except TimeoutError:
            self.server.force_exit = True
            await self._task
        self._task = None
