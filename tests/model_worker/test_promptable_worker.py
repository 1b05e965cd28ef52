"""The promptable-segmentation task through a real worker with the demo package (shapes-sam): a decoder of the
fleet's own convention (``image_embedding``, low-res masks the worker maps back). SAM's own ONNX decoder
(``image_embeddings``, ``orig_im_size``, masks at the original size): tests/packaging/test_reference_equality.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2
from services.common import descriptors
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec
from tests.model_worker.test_service import start_worker

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "models" / "packages" / "shapes-sam"
IMAGE = ROOT / "models" / "samples" / "shapes-1.jpg"  # 800 x 605; a circle in (518, 214)-(786, 482)
CIRCLE = (518, 214, 786, 482)


def _mask(rle: inference_pb2.RleMask) -> np.ndarray:
    flat = np.repeat(np.arange(len(rle.counts)) % 2 == 1, list(rle.counts))
    return flat.reshape(rle.width, rle.height).T


async def test_the_demo_decoder_masks_the_prompted_shape(tmp_path: Path, redis_url: str, namespace: str) -> None:
    spec = ModelSpec.from_package(PACKAGE)
    model = descriptors.to_proto(ModelRecord(model_id="shapes-sam/1", workspace="demo", spec=spec,
                                             artifact_uri=(PACKAGE / spec.weights.file).as_uri()))
    harness = await start_worker(tmp_path, redis_url, namespace, artifact_roots=str(ROOT / "models"))
    try:
        x0, y0, x1, y1 = CIRCLE
        for i, inputs in enumerate([
            {"points": inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
                inference_pb2.PointPrompt(x=(x0 + x1) / 2, y=(y0 + y1) / 2)]))},
            {"boxes": inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
                inference_pb2.BoxPrompt(x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0)]))},
        ]):
            request = inference_pb2.InferRequest(
                model_id=model.model_id, image=inference_pb2.Image(encoded=IMAGE.read_bytes()), inputs=inputs,
                parameters=inference_pb2.InferenceParameters(mask_format=inference_pb2.MASK_FORMAT_RLE))
            reply = await harness.stub.Infer(worker_pb2.ModelWorkerServiceInferRequest(model=model, request=request))
            result = reply.response.promptable_segmentation
            assert result.embedding_cached == (i > 0)
            best = _mask(result.prompts[0].masks[0].rle)
            assert best.shape == (605, 800)
            truth = np.zeros_like(best)
            yy, xx = np.mgrid[0:605, 0:800]
            truth[((xx - (x0 + x1) / 2) ** 2 + (yy - (y0 + y1) / 2) ** 2) <= ((x1 - x0) / 2) ** 2] = True
            iou = (best & truth).sum() / (best | truth).sum()
            assert iou > 0.8, (i, float(iou))
    finally:
        await harness.runner.stop()
