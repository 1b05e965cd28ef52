"""fleet.v1 answers in the Roboflow inference server's JSON shapes (one presenter per result kind)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2, model_pb2

Json = dict[str, object]

# Roboflow's task names, which its clients use to pick a route.
TASK_NAMES = {
    model_pb2.TASK_TYPE_OBJECT_DETECTION: "object-detection",
    model_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: "instance-segmentation",
    model_pb2.TASK_TYPE_CLASSIFICATION: "classification",
    model_pb2.TASK_TYPE_KEYPOINT_DETECTION: "keypoint-detection",
    model_pb2.TASK_TYPE_ORIENTED_DETECTION: "oriented-object-detection",
}
# The /infer/<route> for each task.
TASK_ROUTES = {
    model_pb2.TASK_TYPE_OBJECT_DETECTION: "object_detection",
    model_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: "instance_segmentation",
    model_pb2.TASK_TYPE_CLASSIFICATION: "classification",
    model_pb2.TASK_TYPE_KEYPOINT_DETECTION: "keypoints_detection",
}


def _box(d: inference_pb2.Detection) -> Json:
    return {"x": d.x, "y": d.y, "width": d.width, "height": d.height, "confidence": d.confidence,
            "class": d.class_name, "class_id": d.class_id, "detection_id": d.detection_id}


def _detections(response: inference_pb2.InferResponse) -> Json:
    return {"predictions": [_box(d) for d in response.object_detection.detections]}


def _instances(response: inference_pb2.InferResponse) -> Json:
    return {"predictions": [{**_box(i.detection), "points": [{"x": p.x, "y": p.y} for p in i.points]}
                            for i in response.instance_segmentation.instances]}


def _keypoints(response: inference_pb2.InferResponse) -> Json:
    return {"predictions": [{**_box(i.detection), "keypoints": [
        {"x": k.x, "y": k.y, "confidence": k.confidence, "class_id": n, "class": k.name}
        for n, k in enumerate(i.keypoints)]} for i in response.keypoint_detection.instances]}


def _oriented(response: inference_pb2.InferResponse) -> Json:
    """Rotated boxes: centre, size, angle (radians, as fleet.v1) and the four corners as ``points``."""
    return {"predictions": [{"x": o.x, "y": o.y, "width": o.width, "height": o.height, "angle": o.angle,
                             "confidence": o.confidence, "class": o.class_name, "class_id": o.class_id,
                             "detection_id": o.detection_id, "points": [{"x": c.x, "y": c.y} for c in o.corners]}
                            for o in response.oriented_detection.boxes]}


def _classification(response: inference_pb2.InferResponse) -> Json:
    c = response.classification
    if c.multi_label:
        return {"predictions": {p.class_name: {"confidence": p.confidence, "class_id": p.class_id}
                                for p in c.predictions},
                "predicted_classes": [p.class_name for p in c.predicted_classes]}
    return {"predictions": [{"class": p.class_name, "class_id": p.class_id, "confidence": p.confidence}
                            for p in c.predictions],
            "top": c.top_class, "confidence": c.top_confidence}


PRESENTERS: dict[str, Callable[[inference_pb2.InferResponse], Json]] = {
    "object_detection": _detections,
    "instance_segmentation": _instances,
    "classification": _classification,
    "keypoint_detection": _keypoints,
    "oriented_detection": _oriented,
}


def inference_json(response: inference_pb2.InferResponse) -> Json:
    """A Roboflow inference response: inference_id, time (s), image {width, height}, predictions, ..."""
    kind = response.WhichOneof("result")
    body: Json = {
        "inference_id": response.inference_id,
        "time": response.timings.gateway_ms / 1e3,
        "image": {"width": response.image_width, "height": response.image_height},
        **(PRESENTERS[kind](response) if kind in PRESENTERS else {"predictions": []}),
    }
    if response.visualization:
        body["visualization"] = base64.b64encode(response.visualization).decode("ascii")
    return body


def model_json(model_id: str, model: descriptor_pb2.ModelDescriptor | None, task_type: int) -> Json:
    """One entry of /model/registry, as inference-sdk's ModelDescription reads it."""
    entry: Json = {"model_id": model_id, "task_type": TASK_NAMES.get(task_type, "unknown")}
    if model is not None:
        entry.update(batch_size=model.max_batch_size or 1, input_height=model.input.height,
                     input_width=model.input.width)
    return entry
