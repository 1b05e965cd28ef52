"""Calls to the registry, with its statuses turned back into domain errors."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleet.internal.v1 import descriptor_pb2, registry_pb2, registry_pb2_grpc
from services.common.channels import insecure_channel
from services.common.errors import Unavailable
from services.common.rpc_client import ClientMethod
from services.common.rpc_errors import from_rpc_error

CALL_TIMEOUT_S = 5.0
_SERVICE = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
_AUTHENTICATE, _RESOLVE, _LIST = (ClientMethod(_SERVICE, name) for name in ("Authenticate", "ResolveModel",
                                                                            "ListModels"))


class RegistryClient:
    def __init__(self, address: str, max_message_bytes: int) -> None:
        self.address = address
        self.channel = insecure_channel(address, max_message_bytes)
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def check(self, timeout_s: float = 1.0) -> None:
        """Return if the registry reports SERVING; Unavailable otherwise."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"the registry does not answer its health check ({exc.code().name})") from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise Unavailable("the registry is not serving")

    async def authenticate(self, key_sha256: str) -> str:
        try:
            reply = await _AUTHENTICATE(self.stub.Authenticate, registry_pb2.AuthenticateRequest(
                api_key_sha256=key_sha256), CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "registry") from None
        return reply.workspace

    async def resolve(self, model_id: str, workspace: str) -> descriptor_pb2.ModelDescriptor:
        try:
            reply = await _RESOLVE(self.stub.ResolveModel, registry_pb2.ResolveModelRequest(
                model_id=model_id, workspace=workspace), CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "registry") from None
        return reply.model

    async def list_models(self, workspace: str, page_size: int = 500) -> list[descriptor_pb2.ModelDescriptor]:
        """Every model the workspace may use (its own and public ones), all pages."""
        models: list[descriptor_pb2.ModelDescriptor] = []
        token = ""
        while True:
            try:
                reply = await _LIST(self.stub.ListModels, registry_pb2.ListModelsRequest(
                    workspace=workspace, page_size=page_size, page_token=token), CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                raise from_rpc_error(exc, "registry") from None
            models.extend(reply.models)
            token = reply.next_page_token
            if not token:
                return models

    async def close(self) -> None:
        await self.channel.close()
