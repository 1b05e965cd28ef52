"""What every HTTP route needs: the gateway core, the OIP data plane, authentication, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from services.gateway.auth import Authenticator, bearer_token
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.gateway.http.workflow_forward import HttpForwarder
from services.gateway.oip.dataplane import DataPlane
from services.gateway.workflow_store import StoredWorkflows
from services.workflows.engine import WorkflowEngine

MISSING_KEY = ("missing API key: send the header 'Authorization: Bearer <your API key>' or the api_key "
               "query parameter")


@dataclass
class HttpContext:
    gateway: Gateway
    plane: DataPlane
    auth: Authenticator
    version: str
    instance_id: str
    max_image_bytes: int
    workflows: WorkflowEngine = field(default_factory=WorkflowEngine)
    stored_workflows: StoredWorkflows = field(default_factory=lambda: StoredWorkflows(None, 10.0, 3600.0))
    workflows_forward: HttpForwarder | None = None  # set: the workflow routes go to the engine's own process
    workflows_light_in_gateway: bool = True  # ...but for light runs, run here (http.workflow_light)

    async def caller(self, request: Request, body_key: str | None = None) -> Caller:
        """Authenticate once: ``Authorization: Bearer`` header, else ``api_key`` in the query, else in the body."""
        key = bearer_token(request.headers.get("authorization"))
        return await self.auth.authenticate_key(key or request.query_params.get("api_key") or body_key, MISSING_KEY)

    def timeout_s(self, request: Request) -> float | None:
        """The caller's deadline from ``X-Request-Timeout`` (seconds), else the gateway's default."""
        value = request.headers.get("x-request-timeout", "")
        try:
            return max(0.001, float(value)) if value else None
        except ValueError:
            return None
