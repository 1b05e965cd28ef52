"""Open Inference Protocol tensors <-> fleet.v1 messages, with neither gRPC nor HTTP in sight.

Inputs (one tensor, named ``image``):
  - ``BYTES`` of shape ``[B]`` (or ``[B, 1]``): encoded images (JPEG, PNG, BMP, WebP), one per batch row;
  - ``UINT8`` of shape ``[H, W, 3]`` or ``[B, H, W, 3]``: raw pixels, RGB (request parameter
    ``color_order: "bgr"`` for BGR).
Options are request parameters: confidence, iou_threshold, max_detections, max_candidates,
class_filter (comma-separated names), class_agnostic_nms, visualize.

Outputs, by task (``OUTPUTS``; every row of every batch image, with ``batch_index`` saying whose):
  detection     boxes FP32 [N, 4] (x1, y1, x2, y2 in original pixels), scores FP32 [N],
                class_ids INT32 [N], class_names BYTES [N], batch_index INT32 [N]
  segmentation  the same, plus polygons BYTES [N] (JSON [[x, y], ...] in original pixels)
  keypoints     the detection tensors, plus keypoints FP32 [N, K, 3] (x, y, confidence per named point)
  oriented      boxes (the axis-aligned envelope), scores, class_ids, class_names, batch_index as for
                detection, plus obb FP32 [N, 5] (centre x, centre y, width, height, angle in radians) and
                corners FP32 [N, 4, 2]
  classification probabilities FP32 [B, C] (by class id), top BYTES [B] (class name),
                top_class_id INT32 [B], top_confidence FP32 [B]
  every task    image_size INT32 [B, 2] (width, height); visualization BYTES [B] (JPEG, with visualize)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from fleet.v1 import inference_pb2, model_pb2
from services.common.errors import InvalidArgument
from services.gateway.params import inference_parameters

INPUT_NAME = "image"
# Parameters Triton's and KServe's clients set on their own; accepted and ignored.
CLIENT_PARAMETERS = frozenset({"sequence_id", "sequence_start", "sequence_end", "priority", "timeout",
                               "binary_data_output", "binary_data", "binary_data_size", "headers"})
OPTION_NAMES = ("confidence", "iou_threshold", "max_detections", "max_candidates", "class_filter",
                "class_agnostic_nms", "visualize")
NUMPY_TYPES = {"UINT8": np.uint8, "INT32": np.int32, "INT64": np.int64, "FP32": np.float32, "FP64": np.float64,
               "BOOL": np.bool_}


@dataclass
class Tensor:
    """One tensor: numeric ``data`` as a numpy array, or a list of bytes for ``BYTES``."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]
    text: bool = False  # BYTES elements are UTF-8 text (else binary, e.g. JPEG)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]


_COMMON = (TensorSpec("image_size", "INT32", (-1, 2)), TensorSpec("visualization", "BYTES", (-1,)))
_DETECTION = (TensorSpec("boxes", "FP32", (-1, 4)), TensorSpec("scores", "FP32", (-1,)),
              TensorSpec("class_ids", "INT32", (-1,)), TensorSpec("class_names", "BYTES", (-1,)),
              TensorSpec("batch_index", "INT32", (-1,)))
OUTPUTS: dict[int, tuple[TensorSpec, ...]] = {
    model_pb2.TASK_TYPE_OBJECT_DETECTION: (*_DETECTION, *_COMMON),
    model_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: (*_DETECTION, TensorSpec("polygons", "BYTES", (-1,)), *_COMMON),
    model_pb2.TASK_TYPE_KEYPOINT_DETECTION: (*_DETECTION, TensorSpec("keypoints", "FP32", (-1, -1, 3)), *_COMMON),
    model_pb2.TASK_TYPE_ORIENTED_DETECTION: (*_DETECTION, TensorSpec("obb", "FP32", (-1, 5)),
                                             TensorSpec("corners", "FP32", (-1, 4, 2)), *_COMMON),
    model_pb2.TASK_TYPE_CLASSIFICATION: (
        TensorSpec("probabilities", "FP32", (-1, -1)), TensorSpec("top", "BYTES", (-1,)),
        TensorSpec("top_class_id", "INT32", (-1,)), TensorSpec("top_confidence", "FP32", (-1,)), *_COMMON),
}
INPUTS = (TensorSpec(INPUT_NAME, "BYTES", (-1,)),)


def model_id_of(name: str, version: str = "") -> str:
    """The fleet's model id from OIP's name and version: ("shapes-det", "1") -> "shapes-det/1"."""
    if not name:
        raise InvalidArgument("the model name is empty")
    if not version:
        return name
    if "/" in name:
        if name.rsplit("/", 1)[1] != version:
            raise InvalidArgument(f"model {name!r} already names a version; version {version!r} contradicts it")
        return name
    return f"{name}/{version}"


def options(parameters: dict[str, object]) -> tuple[inference_pb2.InferenceParameters, bool]:
    """Task parameters and whether pixels are BGR, from request parameters (unknown names refused)."""
    unknown = sorted(set(parameters) - set(OPTION_NAMES) - CLIENT_PARAMETERS - {"color_order"})
    if unknown:
        raise InvalidArgument(f"unknown request parameters {unknown}; accepted: {', '.join(OPTION_NAMES)}, color_order")
    order = str(parameters.get("color_order", "rgb")).lower()
    if order not in ("rgb", "bgr"):
        raise InvalidArgument(f"color_order must be 'rgb' or 'bgr', got {order!r}")
    return inference_parameters(**{k: parameters[k] for k in OPTION_NAMES if k in parameters}), order == "bgr"


def images(inputs: list[Tensor], bgr: bool = False) -> list[inference_pb2.Image]:
    """One fleet.v1 Image per batch row of the single input tensor."""
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        names = [t.name for t in inputs]
        raise InvalidArgument(f"expected one input tensor named {INPUT_NAME!r} (BYTES or UINT8), got {names}")
    tensor = inputs[0]
    if any(d < 0 for d in tensor.shape):
        raise InvalidArgument(f"input shape {tensor.shape} has a negative dimension")
    if tensor.datatype == "BYTES":
        return _encoded(tensor)
    if tensor.datatype == "UINT8":
        return _raw(tensor, bgr)
    raise InvalidArgument(f"input {INPUT_NAME!r} must be BYTES (encoded images) or UINT8 (pixels), "
                          f"not {tensor.datatype}")


def _encoded(tensor: Tensor) -> list[inference_pb2.Image]:
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise InvalidArgument(f"a BYTES image input has shape [B] or [B, 1] with B >= 1, got {shape}")
    items = tensor.data
    if len(items) != shape[0]:
        raise InvalidArgument(f"input shape {shape} says {shape[0]} images, but {len(items)} were sent")
    return [inference_pb2.Image(encoded=bytes(item)) for item in items]


def _raw(tensor: Tensor, bgr: bool) -> list[inference_pb2.Image]:
    shape = tensor.shape
    if len(shape) == 3:
        shape = [1, *shape]
    if len(shape) != 4 or shape[3] != 3 or min(shape) < 1:
        raise InvalidArgument(f"a UINT8 image input has shape [H, W, 3] or [B, H, W, 3], got {tensor.shape}")
    pixels = np.asarray(tensor.data, dtype=np.uint8).reshape(-1)
    batch, height, width, _ = shape
    if pixels.size != batch * height * width * 3:
        raise InvalidArgument(f"input shape {tensor.shape} needs {batch * height * width * 3} bytes, "
                              f"got {pixels.size}")
    order = model_pb2.COLOR_ORDER_BGR if bgr else model_pb2.COLOR_ORDER_RGB
    rows = pixels.reshape(batch, -1)
    return [inference_pb2.Image(raw=inference_pb2.RawImage(data=row.tobytes(), width=width, height=height, channels=3,
                                                           color_order=order)) for row in rows]


# ---- responses -> output tensors ----------------------------------------------------------------
Points = list[tuple[float, ...]]


def _envelope(box: inference_pb2.OrientedBox) -> inference_pb2.Detection:
    """The axis-aligned box around an oriented one's corners (centre x, y, width, height)."""
    xs, ys = [c.x for c in box.corners] or [box.x], [c.y for c in box.corners] or [box.y]
    return inference_pb2.Detection(x=(min(xs) + max(xs)) / 2, y=(min(ys) + max(ys)) / 2, width=max(xs) - min(xs),
                                   height=max(ys) - min(ys), confidence=box.confidence, class_name=box.class_name,
                                   class_id=box.class_id, detection_id=box.detection_id)


def _instances(response: inference_pb2.InferResponse) -> list[tuple[inference_pb2.Detection, Points]]:
    """(box, points) per result row: an outline, keypoints (x, y, confidence), or oriented box + corners."""
    kind = response.WhichOneof("result")
    if kind == "instance_segmentation":
        return [(i.detection, [(p.x, p.y) for p in i.points]) for i in response.instance_segmentation.instances]
    if kind == "keypoint_detection":
        return [(i.detection, [(k.x, k.y, k.confidence) for k in i.keypoints])
                for i in response.keypoint_detection.instances]
    if kind == "oriented_detection":
        return [(_envelope(o), [(o.x, o.y, o.width, o.height, o.angle), *((c.x, c.y) for c in o.corners)])
                for o in response.oriented_detection.boxes]
    if kind == "object_detection":
        return [(d, []) for d in response.object_detection.detections]
    return []


def _point_outputs(task: int, rows: list[tuple[int, inference_pb2.Detection, Points]]) -> list[Tensor]:
    n = len(rows)
    if task == model_pb2.TASK_TYPE_INSTANCE_SEGMENTATION:
        outlines = [json.dumps([[round(x, 2), round(y, 2)] for x, y in pts]).encode() for _, _, pts in rows]
        return [Tensor("polygons", "BYTES", [n], outlines, text=True)]
    if task == model_pb2.TASK_TYPE_KEYPOINT_DETECTION:
        k = len(rows[0][2]) if rows else 0
        return [Tensor("keypoints", "FP32", [n, k, 3], np.array([pts for _, _, pts in rows], np.float32).reshape(n, k, 3))]
    if task == model_pb2.TASK_TYPE_ORIENTED_DETECTION:
        obb = np.array([pts[0] for _, _, pts in rows], np.float32).reshape(n, 5)
        corners = np.array([pts[1:5] for _, _, pts in rows], np.float32).reshape(n, 4, 2)
        return [Tensor("obb", "FP32", [n, 5], obb), Tensor("corners", "FP32", [n, 4, 2], corners)]
    return []


def _detection_outputs(responses: list[inference_pb2.InferResponse], task: int) -> list[Tensor]:
    rows = [(b, d, pts) for b, r in enumerate(responses) for d, pts in _instances(r)]
    n = len(rows)
    boxes = np.array([[d.x - d.width / 2, d.y - d.height / 2, d.x + d.width / 2, d.y + d.height / 2]
                      for _, d, _ in rows], np.float32).reshape(n, 4)
    out = [
        Tensor("boxes", "FP32", [n, 4], boxes),
        Tensor("scores", "FP32", [n], np.array([d.confidence for _, d, _ in rows], np.float32)),
        Tensor("class_ids", "INT32", [n], np.array([d.class_id for _, d, _ in rows], np.int32)),
        Tensor("class_names", "BYTES", [n], [d.class_name.encode() for _, d, _ in rows], text=True),
        Tensor("batch_index", "INT32", [n], np.array([b for b, _, _ in rows], np.int32)),
    ]
    return out + _point_outputs(task, rows)


def _classification_outputs(responses: list[inference_pb2.InferResponse], num_classes: int) -> list[Tensor]:
    b = len(responses)
    probabilities = np.zeros((b, num_classes), np.float32)
    for row, response in enumerate(responses):
        for p in response.classification.predictions:
            if p.class_id < num_classes:
                probabilities[row, p.class_id] = p.confidence
    results = [r.classification for r in responses]
    return [
        Tensor("probabilities", "FP32", [b, num_classes], probabilities),
        Tensor("top", "BYTES", [b], [c.top_class.encode() for c in results], text=True),
        Tensor("top_class_id", "INT32", [b], np.array([c.top_class_id for c in results], np.int32)),
        Tensor("top_confidence", "FP32", [b], np.array([c.top_confidence for c in results], np.float32)),
    ]


def outputs(task: int, num_classes: int, responses: list[inference_pb2.InferResponse],
            requested: list[str]) -> list[Tensor]:
    """The output tensors for one request's responses (one per batch row), limited to ``requested``."""
    known = [spec.name for spec in OUTPUTS.get(task, _COMMON)]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise InvalidArgument(f"unknown outputs {unknown}; this model has {known}")
    if task == model_pb2.TASK_TYPE_CLASSIFICATION:
        tensors = _classification_outputs(responses, num_classes)
    else:
        tensors = _detection_outputs(responses, task)
    b = len(responses)
    tensors.append(Tensor("image_size", "INT32", [b, 2],
                          np.array([[r.image_width, r.image_height] for r in responses], np.int32).reshape(b, 2)))
    if any(r.visualization for r in responses):
        tensors.append(Tensor("visualization", "BYTES", [b], [r.visualization for r in responses]))
    return [t for t in tensors if t.name in requested] if requested else tensors
