"""Async gRPC callers for the benchmark: the public gateway API and a worker directly."""

from __future__ import annotations

import grpc

from fleet.client import build_request
from fleet.internal.v1 import descriptor_pb2, worker_pb2, worker_pb2_grpc
from fleet.v1 import gateway_pb2_grpc, inference_pb2

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
TIMEOUT_S = 120.0


def aio_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=[
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ])


def worker_request(descriptor: descriptor_pb2.ModelDescriptor, jpeg: bytes) -> worker_pb2.ModelWorkerServiceInferRequest:
    """What the gateway sends a worker for one image: the resolved descriptor and the public request."""
    return worker_pb2.ModelWorkerServiceInferRequest(model=descriptor, request=build_request(descriptor.model_id, jpeg))


class GatewayCaller:
    """``async with``: one channel to the gateway, authenticated with the bench's API key."""

    def __init__(self, address: str, api_key: str) -> None:
        self.address, self.metadata = address, (("authorization", f"Bearer {api_key}"),)

    async def __aenter__(self) -> GatewayCaller:
        self.channel = aio_channel(self.address)
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def infer(self, model_id: str, jpeg: bytes) -> inference_pb2.InferResponse:
        return await self.stub.Infer(build_request(model_id, jpeg), metadata=self.metadata, timeout=TIMEOUT_S)


class WorkerCaller:
    """``async with``: one channel straight to a worker, sending the resolved descriptor itself."""

    def __init__(self, address: str, descriptor: descriptor_pb2.ModelDescriptor) -> None:
        self.address, self.descriptor = address, descriptor

    async def __aenter__(self) -> WorkerCaller:
        self.channel = aio_channel(self.address)
        self.stub = worker_pb2_grpc.ModelWorkerServiceStub(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def infer(self, jpeg: bytes) -> inference_pb2.InferResponse:
        reply = await self.stub.Infer(worker_request(self.descriptor, jpeg), timeout=TIMEOUT_S)
        return reply.response


def timings(response: inference_pb2.InferResponse) -> dict[str, float]:
    """What a response says about where its time went (ms), its batch and whether it loaded the model."""
    t = response.timings
    return {"decode_ms": t.decode_ms, "preprocess_ms": t.preprocess_ms, "queue_ms": t.queue_ms,
            "inference_ms": t.inference_ms, "postprocess_ms": t.postprocess_ms, "worker_ms": t.worker_ms,
            "gateway_ms": t.gateway_ms, "batch_size": float(t.batch_size), "cold_start": float(t.cold_start)}
