"""fleet.v1.GatewayService: authenticate the call once, protobuf <-> domain, delegate."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from fleet.v1 import gateway_pb2, gateway_pb2_grpc, inference_pb2
from services.common import descriptors
from services.common.errors import FleetError
from services.common.rpc import rpc, rpc_stream
from services.common.rpc_errors import error_status
from services.gateway.auth import Authenticator
from services.gateway.gateway import Gateway
from services.gateway.streaming import StreamLimits, infer_stream

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, gateway: Gateway, auth: Authenticator, version: str,
                 stream_limits: StreamLimits | None = None) -> None:
        self.gateway, self.auth, self.version = gateway, auth, version
        self.stream_limits = stream_limits or StreamLimits()

    @rpc(SERVICE_NAME)
    async def Infer(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return await self.gateway.infer(await self.auth.caller_of(context), request, context.time_remaining())

    @rpc(SERVICE_NAME)
    async def InferBatch(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return await self.gateway.infer_batch(await self.auth.caller_of(context), request, context.time_remaining())

    @rpc_stream(SERVICE_NAME)
    async def InferStream(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802
        caller = await self.auth.caller_of(context)

        async def items() -> AsyncIterator[tuple[str, inference_pb2.InferRequest]]:
            async for item in request_iterator:
                yield item.correlation_id, item.request

        outcomes = infer_stream(self.gateway, caller, items(), self.stream_limits, context.time_remaining)
        async with contextlib.aclosing(outcomes):  # closing the call cancels its items at once
            async for correlation_id, outcome in outcomes:
                if isinstance(outcome, FleetError):
                    yield gateway_pb2.InferStreamResponse(correlation_id=correlation_id, error=error_status(outcome))
                else:
                    yield gateway_pb2.InferStreamResponse(correlation_id=correlation_id, response=outcome)

    @rpc(SERVICE_NAME)
    async def AddModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        model, workers = await self.gateway.add_model(await self.auth.caller_of(context), request.model_id, request.copies)
        return gateway_pb2.AddModelResponse(model=descriptors.summary(model), worker_ids=workers)

    @rpc(SERVICE_NAME)
    async def RemoveModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        workers = await self.gateway.remove_model(await self.auth.caller_of(context), request.model_id)
        return gateway_pb2.RemoveModelResponse(worker_ids=workers)

    @rpc(SERVICE_NAME)
    async def ClearModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        unloaded = await self.gateway.clear_models(await self.auth.caller_of(context))
        return gateway_pb2.ClearModelsResponse(unloaded=unloaded)

    @rpc(SERVICE_NAME)
    async def DescribeModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        caller = await self.auth.caller_of(context)
        models = await self.gateway.describe_models(caller)
        return gateway_pb2.DescribeModelsResponse(models=models, placements=self.gateway.placements(caller))

    @rpc(SERVICE_NAME)
    async def GetServerInfo(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        workers = await self.gateway.server_info(await self.auth.caller_of(context))
        return gateway_pb2.GetServerInfoResponse(name="inference-fleet", version=self.version, workers=workers)
