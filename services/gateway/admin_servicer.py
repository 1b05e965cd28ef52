"""fleet.v1.AdminService: authenticate the admin at the edge, forward to the registry's admin service.

The registry verifies the admin credential again itself: the gateway forwards the sha256 of the
presented token (never the token). A workspace API key gets PERMISSION_DENIED here. Every method
is the same forwarding call, so they are made from the service's descriptor rather than written out.
"""

from __future__ import annotations

import grpc

from fleet.keys import hash_api_key
from fleet.v1 import admin_pb2, admin_pb2_grpc
from services.common.errors import PermissionDenied
from services.common.rpc import rpc
from services.gateway.auth import Authenticator, bearer_key
from services.registry.client import RegistryClient

ADMIN_SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
METHODS = tuple(admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods_by_name)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, auth: Authenticator, registry: RegistryClient) -> None:
        self.auth, self.registry = auth, registry

    async def forward(self, method: str, request, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        key_hash = hash_api_key(bearer_key(context.invocation_metadata()))
        caller = await self.auth.caller_for(key_hash)
        if not caller.admin:
            raise PermissionDenied("the admin plane needs the fleet's admin token, not a workspace API key")
        return await self.registry.admin(method, request, key_hash)


def _forwarding(method: str):  # type: ignore[no-untyped-def]
    async def handler(self: AdminServicer, request, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        return await self.forward(method, request, context)

    handler.__name__ = handler.__qualname__ = method  # the @rpc metrics and logs name the method
    return rpc(ADMIN_SERVICE_NAME)(handler)


for _method in METHODS:
    setattr(AdminServicer, _method, _forwarding(_method))
