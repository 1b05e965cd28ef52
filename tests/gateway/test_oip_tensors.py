"""OIP tensors <-> fleet.v1 messages, without a fleet: names, shapes, parameters, the BYTES wire format."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2, model_pb2
from services.common.errors import InvalidArgument
from services.gateway.oip import codec, tensors
from services.gateway.oip.tensors import Tensor


def test_model_ids_from_name_and_version() -> None:
    assert tensors.model_id_of("shapes-det", "1") == "shapes-det/1"
    assert tensors.model_id_of("shapes-det/1", "") == "shapes-det/1"
    assert tensors.model_id_of("shapes-det/1", "1") == "shapes-det/1"
    assert tensors.model_id_of("shapes-detector") == "shapes-detector"
    with pytest.raises(InvalidArgument, match="contradicts"):
        tensors.model_id_of("shapes-det/1", "2")


def test_bytes_wire_format_round_trips_and_refuses_truncation() -> None:
    items = [b"", b"abc", bytes(range(256))]
    assert codec.unpack_bytes(codec.pack_bytes(items)) == items
    with pytest.raises(InvalidArgument, match="truncated"):
        codec.unpack_bytes(codec.pack_bytes(items)[:-1])


def test_options_take_known_parameters_and_refuse_others() -> None:
    params, bgr = tensors.options({"confidence": 0.4, "max_detections": 7, "class_filter": "circle, square",
                                   "color_order": "BGR", "priority": 3})
    assert params.confidence == pytest.approx(0.4) and params.max_detections == 7 and bgr
    assert list(params.class_filter) == ["circle", "square"] and not params.HasField("iou_threshold")
    with pytest.raises(InvalidArgument, match="unknown request parameters"):
        tensors.options({"confidance": 0.4})
    with pytest.raises(InvalidArgument, match="max_detections must be a positive whole number"):
        tensors.options({"max_detections": -1})


def test_images_from_bytes_and_pixels() -> None:
    encoded = tensors.images([Tensor("image", "BYTES", [2, 1], [b"a", b"b"])])
    assert [i.encoded for i in encoded] == [b"a", b"b"]
    pixels = np.arange(2 * 4 * 5 * 3, dtype=np.uint8)
    raw = tensors.images([Tensor("image", "UINT8", [2, 4, 5, 3], pixels)], bgr=True)
    assert (raw[1].raw.width, raw[1].raw.height, raw[1].raw.color_order) == (5, 4, model_pb2.COLOR_ORDER_BGR)
    assert raw[1].raw.data == pixels[60:].tobytes()
    for bad, message in [(Tensor("image", "UINT8", [4, 5, 3], pixels), "needs 60 bytes"),
                         (Tensor("image", "UINT8", [4, 5, 4], pixels[:80]), r"\[H, W, 3\]"),
                         (Tensor("image", "BYTES", [0], []), "B >= 1"),
                         (Tensor("img", "BYTES", [1], [b"a"]), "named 'image'")]:
        with pytest.raises(InvalidArgument, match=message):
            tensors.images([bad])


def _detection(x: float, name: str, class_id: int) -> inference_pb2.Detection:
    return inference_pb2.Detection(x=x, y=20, width=10, height=4, confidence=0.5, class_name=name, class_id=class_id)


def test_detection_outputs_cover_every_batch_row() -> None:
    first = inference_pb2.InferResponse(image_width=100, image_height=50)
    first.object_detection.detections.extend([_detection(10, "circle", 0), _detection(30, "square", 1)])
    second = inference_pb2.InferResponse(image_width=64, image_height=64)
    second.object_detection.detections.append(_detection(50, "square", 1))
    out = {t.name: t for t in tensors.outputs(_model(model_pb2.TASK_TYPE_OBJECT_DETECTION, 2), [first, second], [])}
    np.testing.assert_allclose(out["boxes"].data, [[5, 18, 15, 22], [25, 18, 35, 22], [45, 18, 55, 22]])
    assert out["batch_index"].data.tolist() == [0, 0, 1] and out["class_names"].data == [b"circle", b"square", b"square"]
    assert out["image_size"].data.tolist() == [[100, 50], [64, 64]] and "visualization" not in out
    empty = tensors.outputs(_model(model_pb2.TASK_TYPE_OBJECT_DETECTION, 2), [inference_pb2.InferResponse()], ["boxes"])
    assert [(t.name, t.shape) for t in empty] == [("boxes", [0, 4])]
    with pytest.raises(InvalidArgument, match="unknown outputs"):
        tensors.outputs(_model(model_pb2.TASK_TYPE_OBJECT_DETECTION, 2), [first], ["probabilities"])


def test_classification_outputs_by_class_id() -> None:
    response = inference_pb2.InferResponse()
    response.classification.top_class, response.classification.top_class_id = "square", 2
    response.classification.top_confidence = 0.7
    response.classification.predictions.extend([
        inference_pb2.ClassPrediction(class_name="square", class_id=2, confidence=0.7),
        inference_pb2.ClassPrediction(class_name="circle", class_id=0, confidence=0.3)])
    out = {t.name: t for t in tensors.outputs(_model(model_pb2.TASK_TYPE_CLASSIFICATION, 3), [response], [])}
    np.testing.assert_allclose(out["probabilities"].data, [[0.3, 0.0, 0.7]])
    assert out["top"].data == [b"square"] and out["top_class_id"].data.tolist() == [2]
    reply = codec.infer_response(codec.InferResult("m", "1", "id", list(out.values())))
    assert [o.name for o in reply.outputs] == list(out) and len(reply.raw_output_contents) == len(out)
    assert codec.unpack_bytes(reply.raw_output_contents[1]) == [b"square"]


def test_keypoint_outputs_carry_every_named_point() -> None:
    response = inference_pb2.InferResponse(image_width=80, image_height=60)
    for x in (10.0, 40.0):
        instance = response.keypoint_detection.instances.add(detection=_detection(x, "triangle", 2))
        instance.keypoints.extend([inference_pb2.Keypoint(x=x + i, y=5.0 + i, confidence=0.9, name=f"corner-{i}")
                                   for i in range(3)])
    out = {t.name: t for t in tensors.outputs(_model(model_pb2.TASK_TYPE_KEYPOINT_DETECTION, 3), [response], [])}
    assert out["keypoints"].shape == [2, 3, 3]
    np.testing.assert_allclose(out["keypoints"].data[1], [[40, 5, 0.9], [41, 6, 0.9], [42, 7, 0.9]], rtol=1e-6)
    np.testing.assert_allclose(out["boxes"].data, [[5, 18, 15, 22], [35, 18, 45, 22]])
    empty = tensors.outputs(_model(model_pb2.TASK_TYPE_KEYPOINT_DETECTION, 3), [inference_pb2.InferResponse()], ["keypoints"])
    assert [(t.name, t.shape) for t in empty] == [("keypoints", [0, 3, 3])]  # the model's K points, even with no rows


def test_oriented_outputs_give_the_rotated_box_its_corners_and_envelope() -> None:
    response = inference_pb2.InferResponse(image_width=80, image_height=60)
    box = response.oriented_detection.boxes.add(x=20, y=20, width=10, height=4, angle=0.5, confidence=0.8,
                                                class_name="rectangle", class_id=1, detection_id="d1")
    box.corners.extend([inference_pb2.Point(x=x, y=y) for x, y in ((14, 17), (24, 14), (26, 23), (16, 26))])
    out = {t.name: t for t in tensors.outputs(_model(model_pb2.TASK_TYPE_ORIENTED_DETECTION, 3), [response], [])}
    np.testing.assert_allclose(out["obb"].data, [[20, 20, 10, 4, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(out["corners"].data, [[[14, 17], [24, 14], [26, 23], [16, 26]]])
    np.testing.assert_allclose(out["boxes"].data, [[14, 14, 26, 26]])  # the corners' axis-aligned envelope
    assert out["class_names"].data == [b"rectangle"] and out["scores"].data.tolist() == pytest.approx([0.8])


def _model(task_type: int, classes: int) -> descriptor_pb2.ModelDescriptor:
    """A descriptor as the gateway resolves it: its task, classes and (keypoint models) keypoint names."""
    model = descriptor_pb2.ModelDescriptor(task_type=task_type, class_names=[f"c{i}" for i in range(classes)])
    if task_type == model_pb2.TASK_TYPE_KEYPOINT_DETECTION:
        model.keypoints.names.extend(["a", "b", "c"])
    return model
