"""Entry point: ``fleet-gateway`` / ``python -m services.gateway``."""

from __future__ import annotations

from services.common import grpc_polling

grpc_polling.choose()  # before anything imports grpc: gRPC core reads the choice once, on import

from services.common.entrypoint import main_for  # noqa: E402 - after the choice above
from services.gateway.server import build
from services.gateway.settings import GatewaySettings, WorkflowEngineSettings

main = main_for("gateway", "The fleet's public gRPC API: authenticates, resolves models, routes to workers.",
                GatewaySettings, build)
workflows_main = main_for(  # ``fleet-workflows``: the same program in the workflows role (docs/workflows.md)
    "workflows", "The fleet's workflow engine, behind the gateways: runs workflows for the callers they forward.",
    WorkflowEngineSettings, build)

if __name__ == "__main__":
    main()
