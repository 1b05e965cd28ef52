"""Keypoint detection: boxes with named keypoints and the package's skeleton."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout, TaskType, keypoint_values
from services.tasks import boxes
from services.tasks.base import COMMON_OUTPUTS, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.results import Detections

_DECODERS = "services.model_worker.processing.decoders"
#: Keypoints (and edges) below this confidence are not drawn (Ultralytics' plotting uses 0.5).
DRAW_CONFIDENCE = 0.5


class KeypointDetection(Task):
    name = TaskType.KEYPOINT_DETECTION.value
    proto = model_pb2.TASK_TYPE_KEYPOINT_DETECTION
    result_field = "keypoint_detection"
    roboflow_task = "keypoint-detection"
    route = "keypoints_detection"
    oip_outputs = (*boxes.DETECTION_OUTPUTS, TensorSpec("keypoints", "FP32", (-1, -1, 3)), *COMMON_OUTPUTS)
    summary = "boxes with named keypoints"
    layouts = (
        Layout("yolov8-pose", name, 1, "[4+nc+K*D, N]: cx, cy, w, h, class scores, then x, y (, visibility) per "
               "keypoint", lambda p: [(4 + p.num_classes + keypoint_values(p), None)],
               decoder=f"{_DECODERS}:yolov8_pose"),
        Layout("yolo-e2e-pose", name, 1,
               "[K, 6+K*D]: x1, y1, x2, y2, score, class, then x, y (, visibility) per keypoint",
               lambda p: [(None, 6 + keypoint_values(p))], end_to_end=True, decoder=f"{_DECODERS}:e2e_pose"),
    )

    def present(self, result: Detections, spec: ModelSpec, params: Any, height: int,
                width: int) -> inference_pb2.KeypointDetectionResult:
        assert spec.keypoints is not None and result.keypoints is not None
        names = spec.keypoints.names
        out = inference_pb2.KeypointDetectionResult(
            skeleton=[inference_pb2.SkeletonEdge(start=a, end=b) for a, b in spec.keypoints.skeleton])
        for det, points in zip(boxes.detection_messages(result, spec.class_names), result.keypoints.tolist()):
            out.instances.add(detection=det, keypoints=[
                inference_pb2.Keypoint(x=x, y=y, confidence=c, name=name) for (x, y, c), name in zip(points, names)])
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        import cv2  # noqa: PLC0415

        from services.model_worker.visualize import colour  # noqa: PLC0415

        assert spec.keypoints is not None and result.keypoints is not None
        boxes.draw_boxes(img, result, spec.class_names)
        for points, cid in zip(result.keypoints, result.class_ids):
            bgr = colour(int(cid))
            seen = points[:, 2] >= DRAW_CONFIDENCE
            for a, b in spec.keypoints.skeleton:
                if seen[a] and seen[b]:
                    cv2.line(img, tuple(int(round(v)) for v in points[a, :2]),
                             tuple(int(round(v)) for v in points[b, :2]), bgr, 2, cv2.LINE_AA)
            for (x, y, _), ok in zip(points, seen):
                if ok:
                    cv2.circle(img, (int(round(x)), int(round(y))), 4, (255, 255, 255), cv2.FILLED, cv2.LINE_AA)
                    cv2.circle(img, (int(round(x)), int(round(y))), 4, bgr, 1, cv2.LINE_AA)

    def summarize(self, result: Detections, spec: ModelSpec) -> Json:
        entry = boxes.summarize_detections(result, spec)
        if result.keypoints is not None:
            entry["keypoints"] = int((result.keypoints[..., 2] >= DRAW_CONFIDENCE).sum())
        return entry

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        return {"predictions": [{**boxes.box_json(i.detection), "keypoints": [
            {"x": k.x, "y": k.y, "confidence": k.confidence, "class_id": n, "class": k.name}
            for n, k in enumerate(i.keypoints)]} for i in response.keypoint_detection.instances]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        tensors, rows = boxes.detection_tensors(responses, lambda r: [
            (i.detection, [(k.x, k.y, k.confidence) for k in i.keypoints]) for i in r.keypoint_detection.instances])
        n, k = len(rows), len(model.keypoints.names)
        points = np.array([pts for _, pts in rows], np.float32).reshape(n, k, 3)
        return [*tensors, Tensor("keypoints", "FP32", [n, k, 3], points)]

    def table(self, response: inference_pb2.InferResponse) -> str:
        insts = response.keypoint_detection.instances
        rows = [row + ["  ".join(f"{k.name or i}=({k.x:.1f},{k.y:.1f},{k.confidence:.2f})"
                                 for i, k in enumerate(inst.keypoints))]
                for row, inst in zip(boxes.box_rows(i.detection for i in insts), insts)]
        return f"{len(rows)} instances\n" + text_table(boxes.HEADERS + ["keypoints (x, y, confidence)"], rows)
