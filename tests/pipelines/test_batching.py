"""Frames of several pipelines sharing a model and key travel in one InferBatch (a real gRPC server on
loopback answers as the gateway would and records what it got)."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from fleet.v1 import gateway_pb2_grpc, inference_pb2
from services.pipelines.processors import GatewayBatcher, ModelProcessor
from services.pipelines.spec import Frame, Target


class RecordingGateway(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self) -> None:
        self.batches: list[tuple[str, str, int]] = []

    async def InferBatch(self, request, context):  # noqa: N802
        key = dict(context.invocation_metadata())["authorization"]
        self.batches.append((key, request.model_id, len(request.images)))
        if request.model_id == "missing/1":
            await context.abort(grpc.StatusCode.NOT_FOUND, "model missing/1 not found")
        items = [inference_pb2.InferBatchItem(response=inference_pb2.InferResponse(
            model_id=request.model_id, image_width=image.raw.width, image_height=image.raw.height,
            object_detection=inference_pb2.ObjectDetectionResult())) for image in request.images]
        return inference_pb2.InferBatchResponse(items=items)


def frame(source: str, i: int) -> Frame:
    return Frame(source, i, 0.0, pixels=np.zeros((48, 64, 3), np.uint8))


async def test_frames_of_pipelines_sharing_a_model_share_a_batch() -> None:
    gateway = RecordingGateway()
    server = grpc.aio.server()
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(gateway, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        batcher = GatewayBatcher(gateway_pb2_grpc.GatewayServiceStub(channel), max_frames=8, wait_s=0.05,
                                 timeout_s=5, encoding="raw", max_bytes=1 << 20)
        det = ModelProcessor(batcher, Target(model_id="det/1"))
        outcomes = await asyncio.gather(det.process("k1", [frame("a", 0), frame("b", 0)]),
                                        det.process("k1", [frame("c", 0)]),
                                        det.process("k2", [frame("d", 0)]))
        assert sorted(gateway.batches) == [("Bearer k1", "det/1", 3), ("Bearer k2", "det/1", 1)]
        assert all(o["predictions"]["image"] == {"width": 64, "height": 48} for batch in outcomes for o in batch)
        gateway.batches.clear()
        many = await det.process("k1", [frame("a", i) for i in range(10)])  # more than max_frames
        assert [n for _, _, n in gateway.batches] == [8, 2] and len(many) == 10
        failed = await ModelProcessor(batcher, Target(model_id="missing/1")).process("k1", [frame("a", 0)])
        assert failed[0].code == grpc.StatusCode.NOT_FOUND and "not found" in failed[0].message
    finally:
        await channel.close()
        await server.stop(None)
