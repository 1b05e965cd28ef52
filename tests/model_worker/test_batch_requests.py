"""Several images in one worker request: answered in order, equal to one-by-one requests, sharing
ONNX Runtime runs, and a corrupt image failing only itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest

from services.demo.scenes import CLEAN_CONFIG, generate_scene
from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2
from tests.conftest import PACKAGES
from tests.model_worker.test_service import WorkerHarness, descriptor, start_worker

SEEDS = range(9_100_000, 9_100_006)


@pytest.fixture
async def harness(tmp_path: Path, redis_url: str, namespace: str) -> AsyncIterator[WorkerHarness]:
    """A worker allowed to read the committed demo packages."""
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=f"{tmp_path},{PACKAGES}")
    yield h
    await h.runner.stop()


def encoded(seed: int) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(generate_scene(seed, CLEAN_CONFIG).image, cv2.COLOR_RGB2BGR))[1].tobytes()


async def batch(h: WorkerHarness, model, images: list[inference_pb2.Image], **params: object):  # noqa: ANN001
    request = inference_pb2.InferBatchRequest(model_id=model.model_id, images=images,
                                              parameters=inference_pb2.InferenceParameters(**params))
    reply = await h.stub.InferBatch(worker_pb2.ModelWorkerServiceInferBatchRequest(model=model, request=request))
    return reply.response.items


def summary(response: inference_pb2.InferResponse) -> list[tuple]:
    kind = response.WhichOneof("result")
    if kind == "instance_segmentation":
        return [(i.detection.class_id, round(i.detection.x, 3), round(i.detection.y, 3), len(i.points))
                for i in response.instance_segmentation.instances]
    return [(d.class_id, round(d.x, 3), round(d.y, 3), round(d.width, 3), round(d.confidence, 5))
            for d in response.object_detection.detections]


@pytest.mark.parametrize("package", ["shapes-det", "shapes-seg"])
async def test_a_batch_equals_one_by_one_requests_and_shares_runs(harness: WorkerHarness, package: str) -> None:
    model = descriptor(PACKAGES / package, f"{package}/1")
    images = [inference_pb2.Image(encoded=encoded(s)) for s in SEEDS]
    items = await batch(harness, model, images, confidence=0.3)
    assert len(items) == len(images) and all(i.HasField("response") for i in items)
    for image, item in zip(images, items):
        alone = await harness.infer(model, image, confidence=0.3)
        assert summary(item.response) == summary(alone) and summary(alone)
        assert (item.response.image_width, item.response.image_height) == (alone.image_width, alone.image_height)
    assert max(i.response.timings.batch_size for i in items) > 1  # the images shared ONNX Runtime runs
    assert len({i.response.inference_id for i in items}) == len(items)


async def test_a_corrupt_or_missing_image_fails_only_itself(harness: WorkerHarness) -> None:
    model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
    good = [encoded(s) for s in SEEDS[:3]]
    images = [inference_pb2.Image(encoded=good[0]), inference_pb2.Image(encoded=b"\xff\xd8 not a jpeg"),
              inference_pb2.Image(encoded=good[1]), inference_pb2.Image(),
              inference_pb2.Image(raw=inference_pb2.RawImage(data=b"\0" * 5, width=4, height=4, channels=3)),
              inference_pb2.Image(encoded=good[2])]
    items = await batch(harness, model, images)
    assert [i.WhichOneof("outcome") for i in items] == ["response", "error", "response", "error", "error", "response"]
    assert all(i.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] for i in items if i.HasField("error"))
    assert "not a recognisable image" in items[1].error.message and "no image" in items[3].error.message
    for item, data in zip([items[0], items[2], items[5]], good):
        assert summary(item.response) == summary(await harness.infer(model, inference_pb2.Image(encoded=data)))


async def test_bad_parameters_or_too_many_images_fail_the_whole_request(harness: WorkerHarness) -> None:
    model = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await batch(harness, model, [inference_pb2.Image(encoded=encoded(SEEDS[0]))], confidence=2.0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await batch(harness, model, [inference_pb2.Image(encoded=b"x")] * 65)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 64 images" in err.value.details()


def test_rle_and_parts_of_a_mask_decode_back_to_the_mask() -> None:
    from pycocotools import mask as mask_utils

    from services.model_worker.processing.results import InstanceMask

    mask = np.zeros((40, 50), bool)
    mask[5:30, 5:20] = True
    mask[10:15, 10:14] = False  # a hole
    mask[20:35, 30:45] = True  # a second part
    inst = InstanceMask(7, 3, mask)
    rle = inst.rle(60, 70)
    decoded = mask_utils.decode(mask_utils.frPyObjects({"counts": rle.tolist(), "size": [60, 70]}, 60, 70))
    np.testing.assert_array_equal(decoded.astype(bool), inst.full(60, 70))
    parts = inst.parts()
    assert sorted(hole for _, hole in parts) == [False, False, True]
    redrawn = np.zeros((60, 70), np.uint8)
    for points, hole in sorted(parts, key=lambda p: p[1]):
        cv2.fillPoly(redrawn, [np.round(points).astype(np.int32)], 0 if hole else 1)
    assert (redrawn.astype(bool) != inst.full(60, 70)).sum() < 0.1 * mask.sum()  # outlines sit on boundary pixels
