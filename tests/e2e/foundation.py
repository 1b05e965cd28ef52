"""Helpers for the foundation-model tests (CLIP-style embeddings, SAM-style segmentation, PP-OCR)."""

from __future__ import annotations

import cv2
import grpc
import numpy as np

from fleet.client import FleetClient
from fleet.v1 import inference_pb2
from services.demo.scenes import CLEAN_CONFIG, Scene, generate_scene
from tests.e2e.test_inference import encode

CLIP, SAM, OCR = "shapes-clip/1", "shapes-sam/1", "pp-ocr/1"
#: A line PP-OCR (v4 mobile) reads exactly: Hershey duplex at 1.2 (about 30 px high), black on white. The
#: recogniser does not emit spaces between words, so the line has none.
OCR_LINE = "INFERENCE-FLEET-2026"


def scene(seed: int) -> Scene:
    return generate_scene(seed, CLEAN_CONFIG)


def inner_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel of a mask farthest from its edge (well inside the object)."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return float(x), float(y)


def text_image(text: str = OCR_LINE) -> bytes:
    img = np.full((120, 40 + 24 * len(text), 3), 255, np.uint8)
    cv2.putText(img, text, (20, 75), cv2.FONT_HERSHEY_DUPLEX, 1.2, (0, 0, 0), 2, cv2.LINE_AA)
    return encode(img, ".png")


def points(*xy: tuple[float, float], negative: bool = False) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(points=inference_pb2.PointPrompts(
        points=[inference_pb2.PointPrompt(x=x, y=y, negative=negative) for x, y in xy]))


def box(x0: float, y0: float, x1: float, y1: float) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[inference_pb2.BoxPrompt(
        x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0)]))


def texts(*values: str) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(texts=inference_pb2.Texts(values=list(values)))


def infer(client: FleetClient, model_id: str, image: bytes | None = None, timeout: float = 60,
          parameters: inference_pb2.InferenceParameters | None = None,
          **inputs: inference_pb2.InputValue) -> inference_pb2.InferResponse:
    request = inference_pb2.InferRequest(model_id=model_id, inputs=inputs, parameters=parameters)
    if image is not None:
        request.image.encoded = image
    return client.stub.Infer(request, metadata=client.metadata, timeout=timeout)


def refused(client: FleetClient, model_id: str, image: bytes | None = None, **inputs: inference_pb2.InputValue) -> str:
    """The message of an INVALID_ARGUMENT answer (the test fails on any other outcome)."""
    try:
        infer(client, model_id, image, **inputs)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
        return exc.details()
    raise AssertionError(f"{model_id} answered a request it should refuse: {sorted(inputs)}")


def mask_iou(instance: inference_pb2.SegmentedInstance, truth: np.ndarray) -> float:
    """IoU of an answered mask (its RLE) with a scene's mask."""
    rle = instance.rle
    flat = np.zeros(rle.height * rle.width, bool)
    at, value = 0, False
    for count in rle.counts:
        flat[at:at + count] = value
        at, value = at + count, not value
    mask = flat.reshape(rle.width, rle.height).T  # column-major
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))
