"""Outbound unary calls to other fleet services: ``grpc_client_*`` metrics, a CLIENT span, metadata.

Each client module (the gateway's worker and registry clients) declares one ``ClientMethod`` per
RPC it makes and calls through it; the call's errors come back unchanged (``grpc.aio.AioRpcError``)
for the client to translate into domain errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.common import tracing
from services.common.grpc_metrics import CLIENT, UNARY, MethodMetrics
from services.common.rpc import outgoing_metadata

_perf = time.perf_counter


class ClientMethod:
    """One RPC of another service's contract, as this process calls it."""

    def __init__(self, service: str, method: str) -> None:
        self.metrics = MethodMetrics(CLIENT, UNARY, service, method)
        self.span_name = f"{service}/{method}"
        self.span_attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    async def __call__(self, stub_method: Callable[..., Awaitable[Any]], request: Any, timeout_s: float,
                       metadata: tuple[tuple[str, str], ...] = ()) -> Any:
        """``await stub_method(request)`` with the request id, the trace context and ``metadata``."""
        m = self.metrics
        m.started.inc()
        traced = tracing.start_client_span(self.span_name, self.span_attributes) if tracing.ACTIVE else None
        code, started = grpc.StatusCode.OK, _perf()
        try:
            m.sent.inc()
            reply = await stub_method(request, timeout=timeout_s, metadata=outgoing_metadata() + metadata)
            m.received.inc()
            return reply
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = grpc.StatusCode.UNKNOWN
            raise
        finally:
            m.handled(code).inc()
            m.seconds.observe(_perf() - started)
            if traced is not None:
                tracing.end_span(traced[0], traced[1], code.value[0], None if code is grpc.StatusCode.OK else code.name)
