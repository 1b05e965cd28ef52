"""Entry point: ``fleet-pipelines`` / ``python -m services.pipelines``."""

from __future__ import annotations

from services.common import grpc_polling

grpc_polling.choose()  # before anything imports grpc: gRPC core reads the choice once, on import

from services.common.entrypoint import main_for  # noqa: E402 - after the choice above
from services.pipelines.server import build
from services.pipelines.settings import PipelinesSettings

main = main_for("pipelines", "Video pipelines: sources read, frames run through the fleet, results to sinks.",
                PipelinesSettings, build)

if __name__ == "__main__":
    main()
