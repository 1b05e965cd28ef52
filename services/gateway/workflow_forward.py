"""fleet.v1.WorkflowService on a public gateway whose workflow engine runs in a process of its own
(``FLEET_GATEWAY_WORKFLOWS_ADDRESS``; docs/workflows.md, "Where the engine runs").

Each call is passed on as it came: its messages as bytes (never decoded here, so images are not copied into
Python objects), the caller's ``authorization`` (the engine authenticates the caller itself: a call cannot
skip authentication by coming this way), the request id and trace context, and the caller's deadline. The
engine's answers come back as they are; its errors keep their status and message (the engine wrote them for
the caller, and marks them with the request id). A failure to reach the engine is UNAVAILABLE with a message
of its own, never gRPC's details (which name internal addresses).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from fleet.v1 import workflow_pb2
from services.common.channels import open_channel
from services.common.context import REQUEST_ID_HEADER
from services.common.errors import FleetError
from services.common.rpc import outgoing_metadata, rpc, rpc_stream
from services.common.rpc_errors import error_for, from_rpc_error
from services.common.tls import ClientTls

SERVICE_NAME = workflow_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name
PEER = "workflow engine"
FORWARDED_METADATA = ("authorization",)  # the trace context and request id come from outgoing_metadata()


def engine_error(exc: grpc.aio.AioRpcError) -> FleetError:
    """The engine's own answer as it gave it (its errors carry the request id in their trailer); anything else
    (no connection, a reset) as ``from_rpc_error`` words it for the caller."""
    answered = any(key == REQUEST_ID_HEADER for key, _ in exc.trailing_metadata() or ())
    if answered:
        return error_for(exc.code(), exc.details() or "")
    return from_rpc_error(exc, PEER)


def _metadata(context: grpc.aio.ServicerContext) -> tuple[tuple[str, str], ...]:
    own = tuple((k, v) for k, v in context.invocation_metadata() or () if k in FORWARDED_METADATA)
    return own + outgoing_metadata()


def workflow_handler(run, validate, stream) -> grpc.GenericRpcHandler:  # noqa: ANN001
    """fleet.v1.WorkflowService's methods on bytes (requests and replies as they travel), for the server."""
    return grpc.method_handlers_generic_handler(SERVICE_NAME, {
        "RunWorkflow": grpc.unary_unary_rpc_method_handler(run),
        "ValidateWorkflow": grpc.unary_unary_rpc_method_handler(validate),
        "RunWorkflowStream": grpc.stream_stream_rpc_method_handler(stream),
    })


class WorkflowForwarder:
    """The three WorkflowService methods as raw pass-through to the engine; ``handler()`` for the server."""

    def __init__(self, address: str, max_message_bytes: int, tls: ClientTls | None = None) -> None:
        self.address = address
        self.channel = open_channel(address, max_message_bytes, tls)
        path = f"/{SERVICE_NAME}/"
        self._run = self.channel.unary_unary(path + "RunWorkflow")  # no (de)serializers: bytes either way
        self._validate = self.channel.unary_unary(path + "ValidateWorkflow")
        self._stream = self.channel.stream_stream(path + "RunWorkflowStream")

    async def _unary(self, method, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: ANN001
        try:
            return await method(request, metadata=_metadata(context), timeout=context.time_remaining())
        except grpc.aio.AioRpcError as exc:
            raise engine_error(exc) from None

    async def run(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        """A ``RunWorkflow`` call's bytes to the engine and its answer's bytes back."""
        return await self._unary(self._run, request, context)

    async def validate(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._unary(self._validate, request, context)

    async def stream(self, request_iterator: AsyncIterator[bytes],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        call = self._stream(request_iterator, metadata=_metadata(context), timeout=context.time_remaining())
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as exc:
            raise engine_error(exc) from None
        finally:
            call.cancel()  # the caller went away first: the engine stops too (a no-op once it ended)

    @rpc(SERVICE_NAME)
    async def RunWorkflow(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802
        return await self.run(request, context)

    @rpc(SERVICE_NAME)
    async def ValidateWorkflow(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802
        return await self.validate(request, context)

    @rpc_stream(SERVICE_NAME)
    async def RunWorkflowStream(self, request_iterator: AsyncIterator[bytes],  # noqa: N802
                                context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async for reply in self.stream(request_iterator, context):
            yield reply

    def handler(self) -> grpc.GenericRpcHandler:
        return workflow_handler(self.RunWorkflow, self.ValidateWorkflow, self.RunWorkflowStream)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.channel.close()
