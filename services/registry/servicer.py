"""fleet.v1.RegistryService: protobuf <-> domain, nothing more."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import registry_pb2, registry_pb2_grpc
from services.common import descriptors
from services.common.rpc import rpc
from services.registry.service import Registry


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @rpc("registry")
    async def ResolveModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        record = await self.registry.resolve(request.model_id, request.workspace)
        return registry_pb2.ResolveModelResponse(model=descriptors.to_proto(record))

    @rpc("registry")
    async def Authenticate(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        workspace = await self.registry.authenticate(request.api_key_sha256)
        return registry_pb2.AuthenticateResponse(workspace=workspace)

    @rpc("registry")
    async def ListModels(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        records, token = await self.registry.list(request.workspace, request.page_size, request.page_token)
        return registry_pb2.ListModelsResponse(
            models=[descriptors.to_proto(r) for r in records], next_page_token=token
        )

    @rpc("registry")
    async def RegisterModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        record = await self.registry.register(descriptors.from_proto(request.model), request.replace)
        return registry_pb2.RegisterModelResponse(model=descriptors.to_proto(record))

    @rpc("registry")
    async def DeleteModel(self, request, context: grpc.aio.ServicerContext):  # noqa: N802
        await self.registry.delete(request.model_id, request.workspace)
        return registry_pb2.DeleteModelResponse()
