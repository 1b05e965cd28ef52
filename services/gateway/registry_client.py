"""Calls to the registry, with its statuses turned back into domain errors."""

from __future__ import annotations

import grpc

from fleet.internal.v1 import descriptor_pb2, registry_pb2, registry_pb2_grpc
from services.common.channels import open_channel
from services.common.rpc import outgoing_metadata
from services.common.rpc_errors import from_rpc_error
from services.common.tls import ClientTls

CALL_TIMEOUT_S = 5.0


class RegistryClient:
    def __init__(self, address: str, max_message_bytes: int, tls: ClientTls | None = None) -> None:
        self.address = address
        self.channel = open_channel(address, max_message_bytes, tls)
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

    async def list_models(self, workspace: str, page_size: int = 500) -> list[descriptor_pb2.ModelDescriptor]:
        """Every model the workspace may use (its own and public ones), all pages."""
        models: list[descriptor_pb2.ModelDescriptor] = []
        token = ""
        while True:
            try:
                reply = await self.stub.ListModels(
                    registry_pb2.ListModelsRequest(workspace=workspace, page_size=page_size, page_token=token),
                    timeout=CALL_TIMEOUT_S, metadata=outgoing_metadata(),
                )
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc, "registry") from None
            models.extend(reply.models)
            token = reply.next_page_token
            if not token:
                return models

    async def close(self) -> None:
        await self.channel.close()
