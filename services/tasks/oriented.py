"""Oriented boxes: centre, size, angle and the four corners."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout, TaskType
from services.tasks import boxes
from services.tasks.base import COMMON_OUTPUTS, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.results import Detections

_DECODERS = "services.model_worker.processing.decoders"


def envelope(box: inference_pb2.OrientedBox) -> inference_pb2.Detection:
    """The axis-aligned box around an oriented one's corners (centre x, y, width, height)."""
    xs, ys = [c.x for c in box.corners] or [box.x], [c.y for c in box.corners] or [box.y]
    return inference_pb2.Detection(x=(min(xs) + max(xs)) / 2, y=(min(ys) + max(ys)) / 2, width=max(xs) - min(xs),
                                   height=max(ys) - min(ys), confidence=box.confidence, class_name=box.class_name,
                                   class_id=box.class_id, detection_id=box.detection_id)


class OrientedDetection(Task):
    name = TaskType.ORIENTED_DETECTION.value
    proto = model_pb2.TASK_TYPE_ORIENTED_DETECTION
    result_field = "oriented_detection"
    roboflow_task = "oriented-object-detection"
    route = "oriented_object_detection"
    oip_outputs = (*boxes.DETECTION_OUTPUTS, TensorSpec("obb", "FP32", (-1, 5)), TensorSpec("corners", "FP32", (-1, 4, 2)),
                   *COMMON_OUTPUTS)
    summary = "rotated boxes: centre, size, angle"
    layouts = (
        Layout("yolov8-obb", name, 1, "[4+nc+1, N]: cx, cy, w, h, class scores, angle (radians)",
               lambda p: [(4 + p.num_classes + 1, None)], decoder=f"{_DECODERS}:yolov8_obb"),
        Layout("yolo-e2e-obb", name, 1, "[K, 7]: cx, cy, w, h, score, class, angle (radians)",
               lambda p: [(None, 7)], end_to_end=True, decoder=f"{_DECODERS}:e2e_obb"),
    )

    def present(self, result: Detections, spec: ModelSpec, params: Any, height: int,
                width: int) -> inference_pb2.OrientedDetectionResult:
        from services.model_worker.processing.decoders import rbox_corners  # noqa: PLC0415

        assert result.rboxes is not None
        out = inference_pb2.OrientedDetectionResult()
        corners = rbox_corners(result.rboxes).tolist()
        for (cx, cy, w, h, angle), score, cid, quad in zip(result.rboxes.tolist(), result.scores.tolist(),
                                                           result.class_ids.tolist(), corners):
            out.boxes.add(x=cx, y=cy, width=w, height=h, angle=angle, confidence=score,
                          class_name=spec.class_names[cid], class_id=cid, detection_id=str(uuid.uuid4()),
                          corners=[inference_pb2.Point(x=x, y=y) for x, y in quad])
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        from services.model_worker.processing.decoders import rbox_corners  # noqa: PLC0415
        from services.model_worker.visualize import colour  # noqa: PLC0415

        assert result.rboxes is not None
        for quad, cid in zip(rbox_corners(result.rboxes), result.class_ids):
            cv2.polylines(img, [np.round(quad).astype(np.int32)], True, colour(int(cid)), 2, cv2.LINE_AA)
        boxes.draw_boxes(img, result, spec.class_names, boxes=False)

    def summarize(self, result: Detections, spec: ModelSpec) -> Json:
        return boxes.summarize_detections(result, spec)

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        """Rotated boxes: centre, size, angle (radians, as fleet.v1) and the four corners as ``points``."""
        return {"predictions": [{"x": o.x, "y": o.y, "width": o.width, "height": o.height, "angle": o.angle,
                                 "confidence": o.confidence, "class": o.class_name, "class_id": o.class_id,
                                 "detection_id": o.detection_id, "points": [{"x": c.x, "y": c.y} for c in o.corners]}
                                for o in response.oriented_detection.boxes]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        tensors, rows = boxes.detection_tensors(responses, lambda r: [
            (envelope(o), [(o.x, o.y, o.width, o.height, o.angle), *((c.x, c.y) for c in o.corners)])
            for o in r.oriented_detection.boxes])
        n = len(rows)
        obb = np.array([pts[0] for _, pts in rows], np.float32).reshape(n, 5)
        corners = np.array([pts[1:5] for _, pts in rows], np.float32).reshape(n, 4, 2)
        return [*tensors, Tensor("obb", "FP32", [n, 5], obb), Tensor("corners", "FP32", [n, 4, 2], corners)]

    def table(self, response: inference_pb2.InferResponse) -> str:
        rows = [[b.class_name, f"{b.confidence:.3f}", f"{b.x:.1f}", f"{b.y:.1f}", f"{b.width:.1f}", f"{b.height:.1f}",
                 f"{math.degrees(b.angle):.1f}"] for b in response.oriented_detection.boxes]
        return f"{len(rows)} oriented boxes\n" + text_table(boxes.HEADERS + ["angle (deg)"], rows)
