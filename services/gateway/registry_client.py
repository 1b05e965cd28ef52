"""Calls to the registry, with its statuses turned back into domain errors."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import descriptor_pb2, registry_pb2, registry_pb2_grpc
from services.common.channels import insecure_channel
from services.common.rpc import outgoing_metadata
from services.common.rpc_errors import from_rpc_error

CALL_TIMEOUT_S = 5.0


class RegistryClient:
    def __init__(self, address: str, max_message_bytes: int) -> None:
        self.address = address
        self.channel = insecure_channel(address, max_message_bytes)
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    async def authenticate(self, key_sha256: str) -> str:
        try:
            reply = await self.stub.Authenticate(
                registry_pb2.AuthenticateRequest(api_key_sha256=key_sha256), timeout=CALL_TIMEOUT_S,
                metadata=outgoing_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "registry") from None
        return reply.workspace

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        try:
            reply = await self.stub.ResolveModel(
                registry_pb2.ResolveModelRequest(model_id=model_id, workspace=workspace), timeout=CALL_TIMEOUT_S,
                metadata=outgoing_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "registry") from None
        return reply.model

    async def close(self) -> None:
        await self.channel.close()
