"""Server and client interceptors: request id, error mapping, RPC metrics, call logs.

Domain errors (``FleetError``) are turned into gRPC statuses here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common.context import REQUEST_ID_HEADER, request_id_from, request_id_var
from services.common.errors import FleetError
from services.common.metrics import ERRORS, RPC_DURATION, RPC_IN_FLIGHT

log = logging.getLogger("fleet.rpc")

_QUIET_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _CallScope:
    """Request id, metrics and error translation around one server call."""

    def __init__(self, service: str, method: str, request_id: str) -> None:
        self.service, self.method, self.request_id = service, method.rsplit("/", 1)[-1], request_id
        self.full_method = method
        self.code = grpc.StatusCode.OK
        self.start = 0.0

    def __enter__(self) -> _CallScope:
        self.token = request_id_var.set(self.request_id)
        self.start = time.perf_counter()
        RPC_IN_FLIGHT.labels(self.service, self.method).inc()
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        RPC_IN_FLIGHT.labels(self.service, self.method).dec()
        RPC_DURATION.labels(self.service, self.method, self.code.name).observe(elapsed)
        if not self.full_method.startswith(_QUIET_METHODS):
            log.info(
                "rpc %s %s", self.method, self.code.name,
                extra={"method": self.method, "code": self.code.name, "duration_ms": round(elapsed * 1000, 3)},
            )
        request_id_var.reset(self.token)

    async def fail(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        """Record and answer an exception raised by a handler (always raises)."""
        if isinstance(exc, FleetError):
            self.code = exc.code
            ERRORS.labels(self.service, exc.kind).inc()
            await context.abort(exc.code, exc.message)
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        if isinstance(exc, grpc.aio.AbortError):
            # The handler aborted itself; the status is already on the context.
            self.code = context.code() or grpc.StatusCode.UNKNOWN
            raise exc
        self.code = grpc.StatusCode.INTERNAL
        ERRORS.labels(self.service, "Internal").inc()
        log.error("unhandled error in %s", self.method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error; quote request id {self.request_id}")


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary-unary and stream-stream handlers in a ``_CallScope``."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        request_id = request_id_from(details.invocation_metadata)
        service = self.service

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _CallScope(service, method, request_id) as scope:
                    context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
                    try:
                        return await inner(request, context)
                    except BaseException as exc:  # noqa: BLE001 - translated, never swallowed
                        await scope.fail(exc, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )

        if handler.stream_stream is not None:
            inner_stream = handler.stream_stream

            async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with _CallScope(service, method, request_id) as scope:
                    try:
                        async for item in inner_stream(requests, context):
                            yield item
                    except BaseException as exc:  # noqa: BLE001
                        await scope.fail(exc, context)

            return grpc.stream_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


class RequestIdClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """Adds the current request id to outgoing calls, so one id follows a request across hops."""

    @staticmethod
    def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        request_id = request_id_var.get()
        if request_id == "-":
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, request_id)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with_request_id(details), request)

    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return await continuation(self._with_request_id(details), request_iterator)
