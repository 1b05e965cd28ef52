"""Entry point: ``fleet-worker`` / ``python -m services.model_worker``."""

from __future__ import annotations

from services.common import grpc_polling

grpc_polling.choose()  # before anything imports grpc: gRPC core reads the choice once, on import

from services.common.entrypoint import main_for  # noqa: E402 - after the choice above
from services.model_worker.server import build
from services.model_worker.settings import WorkerSettings

main = main_for("worker", "A model worker: holds ONNX Runtime sessions under an LRU and runs inferences.",
                WorkerSettings, build)

if __name__ == "__main__":
    main()
