"""InferCrops on a real worker with the demo detector and classifier: one call answers what ``Infer`` on the image
and ``InferBatch`` on crops cut by the workflow engine's rule answer; a worker missing either model runs nothing
(``not_loaded``, for the gateway to run the steps one by one); more detections than ``max_crops`` classify none."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2, model_pb2
from services.common.crop_boxes import crop_box
from services.demo.scenes import generate_scene
from tests.conftest import PACKAGES
from tests.e2e.test_inference import SEEDS, encode
from tests.model_worker.test_service import WorkerHarness, descriptor, start_worker

pytestmark = pytest.mark.skipif(not (PACKAGES / "shapes-cls" / "model.json").exists(), reason="demo models not built")


def engine_crops(jpeg: bytes, detections) -> list[inference_pb2.Image]:  # noqa: ANN001
    """Crops as the workflow engine cuts and sends them: BGR pixels from OpenCV, raw, by ``crop_box``."""
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = pixels.shape[:2]
    out = []
    for d in detections:
        x0, y0, x1, y1 = crop_box({"x": d.x, "y": d.y, "width": d.width, "height": d.height}, w, h)
        crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        out.append(inference_pb2.Image(raw=inference_pb2.RawImage(
            data=crop.tobytes(), width=x1 - x0, height=y1 - y0, channels=3, color_order=model_pb2.COLOR_ORDER_BGR)))
    return out


async def crops_call(h: WorkerHarness, plan: worker_pb2.CropPlan) -> worker_pb2.ModelWorkerServiceInferCropsResponse:
    return await h.stub.InferCrops(worker_pb2.ModelWorkerServiceInferCropsRequest(plan=plan))


async def test_a_crop_plan_answers_as_the_steps_one_by_one(tmp_path: Path, redis_url: str, namespace: str) -> None:
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=str(PACKAGES))
    try:
        det = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
        cls = descriptor(PACKAGES / "shapes-cls", "shapes-cls/1")
        scene = encode(generate_scene(SEEDS[3]).image)
        params = inference_pb2.InferenceParameters(confidence=0.3)
        plan = worker_pb2.CropPlan(detector=det, classifier=cls, max_crops=64, request=inference_pb2.InferRequest(
            model_id=det.model_id, image=inference_pb2.Image(encoded=scene), parameters=params))

        assert (await crops_call(h, plan)).not_loaded and not h.worker.manager.models()  # neither held: nothing ran
        await h.stub.LoadModel(worker_pb2.LoadModelRequest(model=det))
        only_one = await crops_call(h, plan)
        assert only_one.not_loaded and not only_one.HasField("detections")
        assert list(only_one.not_loaded_models) == ["shapes-cls/1"]
        await h.stub.LoadModel(worker_pb2.LoadModelRequest(model=cls))

        fused = await crops_call(h, plan)
        alone = await h.infer(det, inference_pb2.Image(encoded=scene), confidence=0.3)
        found = alone.object_detection.detections
        assert not fused.not_loaded and not fused.crops_skipped and len(found) > 1

        def boxes(ds) -> list[tuple]:  # noqa: ANN001
            return [(d.class_name, d.x, d.y, d.width, d.height, round(d.confidence, 5)) for d in ds]

        assert boxes(fused.detections.object_detection.detections) == boxes(found)
        one_by_one = (await h.stub.InferBatch(worker_pb2.ModelWorkerServiceInferBatchRequest(
            model=cls, request=inference_pb2.InferBatchRequest(model_id=cls.model_id,
                                                               images=engine_crops(scene, found))))).response
        assert len(fused.crops.items) == len(one_by_one.items) == len(found)
        for mine, theirs in zip(fused.crops.items, one_by_one.items):
            a, b = mine.response, theirs.response
            assert (a.image_width, a.image_height) == (b.image_width, b.image_height)  # the same pixels cut
            assert a.classification.top_class == b.classification.top_class
            assert a.classification.top_confidence == pytest.approx(b.classification.top_confidence, abs=1e-4)

        plan.max_crops = len(found) - 1
        skipped = await crops_call(h, plan)
        assert skipped.crops_skipped and not skipped.crops.items
        assert len(skipped.detections.object_detection.detections) == len(found)
    finally:
        await h.runner.stop()
