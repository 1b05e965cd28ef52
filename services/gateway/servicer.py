"""fleet.v1.GatewayService: protobuf <-> domain, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from fleet.v1 import gateway_pb2, gateway_pb2_grpc, inference_pb2
from services.common.errors import FleetError
from services.common.rpc import rpc, rpc_stream
from services.gateway.auth import bearer_key
from services.gateway.gateway import Gateway
from services.gateway.streaming import infer_stream

MAX_STREAM_IN_FLIGHT = 64


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, gateway: Gateway, version: str) -> None:
        self.gateway, self.version = gateway, version

    @rpc("gateway")
    async def Infer(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return await self.gateway.infer(bearer_key(context.invocation_metadata()), request, context.time_remaining())

    @rpc("gateway")
    async def InferBatch(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        return await self.gateway.infer_batch(bearer_key(context.invocation_metadata()), request,
                                              context.time_remaining())

    @rpc_stream("gateway")
    async def InferStream(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802
        async def items() -> AsyncIterator[tuple[str, inference_pb2.InferRequest]]:
            async for item in request_iterator:
                yield item.correlation_id, item.request

        outcomes = infer_stream(self.gateway, bearer_key(context.invocation_metadata()), items(),
                                MAX_STREAM_IN_FLIGHT, None)
        async for correlation_id, outcome in outcomes:
            if isinstance(outcome, FleetError):
                yield gateway_pb2.InferStreamResponse(
                    correlation_id=correlation_id,
                    error=inference_pb2.ErrorStatus(code=outcome.code.value[0], message=outcome.message),
                )
            else:
                yield gateway_pb2.InferStreamResponse(correlation_id=correlation_id, response=outcome)

    @rpc("gateway")
    async def AddModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        model, workers = await self.gateway.add_model(bearer_key(context.invocation_metadata()), request.model_id)
        return gateway_pb2.AddModelResponse(model=model, worker_ids=workers)

    @rpc("gateway")
    async def RemoveModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        workers = await self.gateway.remove_model(bearer_key(context.invocation_metadata()), request.model_id)
        return gateway_pb2.RemoveModelResponse(worker_ids=workers)

    @rpc("gateway")
    async def ClearModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        unloaded = await self.gateway.clear_models(bearer_key(context.invocation_metadata()))
        return gateway_pb2.ClearModelsResponse(unloaded=unloaded)

    @rpc("gateway")
    async def DescribeModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        models = await self.gateway.describe_models(bearer_key(context.invocation_metadata()))
        return gateway_pb2.DescribeModelsResponse(models=models)

    @rpc("gateway")
    async def GetServerInfo(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        workers = await self.gateway.server_info(bearer_key(context.invocation_metadata()))
        return gateway_pb2.GetServerInfoResponse(name="inference-fleet", version=self.version, workers=workers)
