"""fleet.v1.AdminService: authenticate the admin at the edge, forward to the registry's admin service.

The registry verifies the admin credential again itself: the gateway forwards the sha256 of the
presented token (never the token). A workspace API key gets PERMISSION_DENIED here.
"""

from __future__ import annotations

import grpc

from fleet.keys import hash_api_key
from fleet.v1 import admin_pb2_grpc
from services.common.errors import PermissionDenied
from services.common.rpc import rpc
from services.gateway.auth import Authenticator, bearer_key
from services.registry.client import RegistryClient


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, auth: Authenticator, registry: RegistryClient) -> None:
        self.auth, self.registry = auth, registry

    async def _forward(self, method: str, request, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        key_hash = hash_api_key(bearer_key(context.invocation_metadata()))
        caller = await self.auth.caller_for(key_hash)
        if not caller.admin:
            raise PermissionDenied("the admin plane needs the fleet's admin token, not a workspace API key")
        return await self.registry.admin(method, request, key_hash)

    @rpc("gateway")
    async def ApplyCatalog(self, request, context):  # noqa: N802, ANN001
        return await self._forward("ApplyCatalog", request, context)

    @rpc("gateway")
    async def RegisterModel(self, request, context):  # noqa: N802, ANN001
        return await self._forward("RegisterModel", request, context)

    @rpc("gateway")
    async def DeleteModel(self, request, context):  # noqa: N802, ANN001
        return await self._forward("DeleteModel", request, context)

    @rpc("gateway")
    async def ListModels(self, request, context):  # noqa: N802, ANN001
        return await self._forward("ListModels", request, context)

    @rpc("gateway")
    async def SetAlias(self, request, context):  # noqa: N802, ANN001
        return await self._forward("SetAlias", request, context)

    @rpc("gateway")
    async def DeleteAlias(self, request, context):  # noqa: N802, ANN001
        return await self._forward("DeleteAlias", request, context)

    @rpc("gateway")
    async def CreateApiKey(self, request, context):  # noqa: N802, ANN001
        return await self._forward("CreateApiKey", request, context)

    @rpc("gateway")
    async def ListApiKeys(self, request, context):  # noqa: N802, ANN001
        return await self._forward("ListApiKeys", request, context)

    @rpc("gateway")
    async def RevokeApiKey(self, request, context):  # noqa: N802, ANN001
        return await self._forward("RevokeApiKey", request, context)
