"""The one place domain errors become gRPC statuses, plus request ids, RPC metrics, traces and call logs.

Servicer methods are wrapped with ``@rpc(SERVICE)`` (unary) or ``@rpc_stream(SERVICE)``
(bidirectional streams), ``SERVICE`` being the proto service's full name. A decorator rather
than a ``grpc.aio`` interceptor: the interceptor machinery costs about 0.1 ms per call on this
path, the decorator next to nothing (each method's metric children are bound when it is
decorated; tracing, when off, is one flag check; see ``scripts/rpc_overhead.py``).
It records the standard ``grpc_server_*`` metrics (``services.common.grpc_metrics``), a SERVER
span continuing the caller's ``traceparent`` when tracing is on, and logs each failure with its
message (successful calls only at DEBUG). Outgoing calls carry the request id and the trace
context via ``outgoing_metadata()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.common import tracing
from services.common.context import REQUEST_ID_HEADER, request_id_from, request_id_var
from services.common.errors import FleetError
from services.common.grpc_metrics import (
    BIDI_STREAM, SERVER, SERVER_FAULT_CODES, SERVER_STREAM, UNARY, MethodMetrics, code_of,
)
from services.common.metrics import ERRORS

log = logging.getLogger("fleet.rpc")

S = TypeVar("S")
Unary = Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[Any]]
Stream = Callable[[S, Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
_OK = grpc.StatusCode.OK
_perf = time.perf_counter


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for a call to another service: the request id being handled, the trace context."""
    request_id = request_id_var.get()
    metadata = ((REQUEST_ID_HEADER, request_id),) if request_id != "-" else ()
    if tracing.ACTIVE:
        metadata += tracing.headers()
    return metadata


class _Method:
    """What one decorated method needs per call: its metrics, names and span attributes."""

    def __init__(self, service: str, method: str, grpc_type: str) -> None:
        self.service, self.method = service, method
        self.metrics = MethodMetrics(SERVER, grpc_type, service, method)
        self.span_name = f"{service}/{method}"
        self.span_attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    def start(self, context: grpc.aio.ServicerContext) -> tuple[str, Any]:
        """Count the call; (request id, span and its context token, or None)."""
        metadata = context.invocation_metadata()
        self.metrics.started.inc()
        traced = tracing.start_server_span(self.span_name, metadata, self.span_attributes) if tracing.ACTIVE else None
        return request_id_from(metadata), traced

    def outcome(self, exc: BaseException, context: grpc.aio.ServicerContext) -> tuple[grpc.StatusCode, str]:
        """The status a handler's exception is answered with, and its message."""
        if isinstance(exc, FleetError):
            return exc.code, exc.message
        if isinstance(exc, grpc.aio.AbortError):  # the handler aborted itself
            return context.code() or grpc.StatusCode.UNKNOWN, str(context.details() or "")
        code = code_of(exc)
        return code, "the call was cancelled" if code is grpc.StatusCode.CANCELLED else f"unhandled {type(exc).__name__}"

    async def answer(self, exc: BaseException, context: grpc.aio.ServicerContext, request_id: str) -> None:
        """Answer a handler's exception with its status (always raises)."""
        trailer = ((REQUEST_ID_HEADER, request_id),)
        if isinstance(exc, FleetError):
            ERRORS.labels(self.service, self.method, exc.kind).inc()
            await context.abort(exc.code, exc.message, trailer)
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit, grpc.aio.AbortError)):
            raise exc
        ERRORS.labels(self.service, self.method, "Internal").inc()
        log.error("unhandled error in %s", self.method, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error; quote request id {request_id}", trailer)

    def finish(self, started: float, code: grpc.StatusCode, message: str, traced: Any) -> None:
        elapsed = _perf() - started
        metrics = self.metrics
        metrics.handled(code).inc()
        metrics.seconds.observe(elapsed)
        if traced is not None:
            tracing.end_span(traced[0], traced[1], code.value[0], message if code in SERVER_FAULT_CODES else None)
        if code is _OK:
            if log.isEnabledFor(logging.DEBUG):  # successful calls are counted and timed; logging each is opt-in
                log.debug("rpc %s OK", self.method, extra={"method": self.method, "code": "OK",
                                                           "duration_ms": round(elapsed * 1e3, 3)})
            return
        level = logging.WARNING if code in SERVER_FAULT_CODES else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "rpc %s %s: %s", self.method, code.name, message,
                    extra={"method": self.method, "code": code.name, "details": message,
                           "duration_ms": round(elapsed * 1e3, 3)})


def rpc(service: str) -> Callable[[Unary[S]], Unary[S]]:
    """Wrap a unary servicer method of the proto service ``service`` (its full name): request id,
    metrics, trace span, failure log, FleetError -> status."""

    def decorate(fn: Unary[S]) -> Unary[S]:
        m = _Method(service, fn.__name__, UNARY)
        received, sent = m.metrics.received, m.metrics.sent

        @functools.wraps(fn)
        async def handler(self: S, request: Any, context: grpc.aio.ServicerContext) -> Any:
            request_id, traced = m.start(context)
            token = request_id_var.set(request_id)
            received.inc()
            code, message, started = _OK, "", _perf()
            try:
                response = await fn(self, request, context)
                sent.inc()
                return response
            except BaseException as exc:  # noqa: BLE001 - translated, never swallowed
                code, message = m.outcome(exc, context)
                await m.answer(exc, context, request_id)
            finally:
                m.finish(started, code, message, traced)
                request_id_var.reset(token)

        return handler

    return decorate


async def _counted(messages: AsyncIterator[Any], counter: Any) -> AsyncIterator[Any]:
    async for message in messages:
        counter.inc()
        yield message


def rpc_stream(service: str, server_streaming: bool = False) -> Callable[[Stream[S]], Stream[S]]:
    """Wrap a bidirectional-streaming servicer method (an async generator) the same way; messages
    are counted each way. ``server_streaming``: the method takes one request message, not a stream."""

    def decorate(fn: Stream[S]) -> Stream[S]:
        m = _Method(service, fn.__name__, SERVER_STREAM if server_streaming else BIDI_STREAM)
        received, sent = m.metrics.received, m.metrics.sent

        @functools.wraps(fn)
        async def handler(self: S, requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            request_id, traced = m.start(context)
            token = request_id_var.set(request_id)
            code, message, started = _OK, "", _perf()
            try:
                # Closed with the call: a client gone while a write waited ends the servicer's generator at once.
                if server_streaming:
                    received.inc()
                body = requests if server_streaming else _counted(requests, received)
                async with contextlib.aclosing(fn(self, body, context)) as stream:
                    async for item in stream:
                        sent.inc()
                        yield item
            except BaseException as exc:  # noqa: BLE001
                code, message = m.outcome(exc, context)
                await m.answer(exc, context, request_id)
            finally:
                m.finish(started, code, message, traced)
                with contextlib.suppress(ValueError):  # closed from another task (the generator finalized there)
                    request_id_var.reset(token)

        return handler

    return decorate
