"""Who a caller is and whether their model exists: asked of the registry before a pipeline is created."""

from __future__ import annotations

from fleet.keys import hash_api_key
from services.common.errors import InvalidArgument, NotFound, Unauthenticated
from services.pipelines.requests import Requester
from services.registry.client import RegistryClient

MISSING_KEY = "missing API key: send 'authorization: Bearer <your API key>' (or api_key in the body)"


class Access:
    def __init__(self, registry: RegistryClient) -> None:
        self.registry = registry

    async def requester(self, api_key: str | None) -> Requester:
        if not api_key:
            raise Unauthenticated(MISSING_KEY)
        if len(api_key) > 512:
            raise Unauthenticated("the API key is not valid")
        try:
            reply = await self.registry.authenticate(hash_api_key(api_key))
        except Unauthenticated:
            raise Unauthenticated("the API key is not valid") from None
        if reply.admin or not reply.workspace:
            raise Unauthenticated("pipelines run in a workspace: use a workspace API key")
        return Requester(api_key, reply.workspace)

    async def check_model(self, requester: Requester, model_id: str) -> None:
        if not model_id:
            raise InvalidArgument("a pipeline needs a model_id (or a workflow)")
        try:
            await self.registry.resolve(model_id, requester.workspace)
        except NotFound:
            raise NotFound(f"model {model_id} not found in your workspace") from None
