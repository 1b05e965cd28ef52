"""Object detection: boxes with classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout, TaskType
from services.tasks import boxes
from services.tasks.base import COMMON_OUTPUTS, Json, Task, text_table

if TYPE_CHECKING:
    import numpy as np

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.results import Detections

_DECODERS = "services.model_worker.processing.decoders"


class ObjectDetection(Task):
    name = TaskType.OBJECT_DETECTION.value
    proto = model_pb2.TASK_TYPE_OBJECT_DETECTION
    result_field = "object_detection"
    roboflow_task = "object-detection"
    route = "object_detection"
    oip_outputs = (*boxes.DETECTION_OUTPUTS, *COMMON_OUTPUTS)
    summary = "boxes with classes"
    cli_parameters = boxes.NMS_FLAGS
    oip_request_parameters = boxes.NMS_PARAMETERS
    layouts = (
        Layout("yolov8", name, 1, "[4+nc, N]: cx, cy, w, h, class scores",
               lambda p: [(4 + p.num_classes, None)], decoder=f"{_DECODERS}:yolov8"),
        Layout("yolov5", name, 1, "[N, 5+nc]: cx, cy, w, h, objectness, class probabilities",
               lambda p: [(None, 5 + p.num_classes)], decoder=f"{_DECODERS}:yolov5"),
        Layout("yolo-e2e", name, 1, "[K, 6]: x1, y1, x2, y2, score, class (NMS-free)",
               lambda p: [(None, 6)], end_to_end=True, decoder=f"{_DECODERS}:e2e"),
    )

    def present(self, result: Detections, spec: ModelSpec, params: Any, height: int,
                width: int) -> inference_pb2.ObjectDetectionResult:
        return inference_pb2.ObjectDetectionResult(detections=boxes.detection_messages(result, spec.class_names))

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        boxes.draw_boxes(img, result, spec.class_names)

    def summarize(self, result: Detections, spec: ModelSpec) -> Json:
        return boxes.summarize_detections(result, spec)

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        return {"predictions": [boxes.box_json(d) for d in response.object_detection.detections]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        tensors, _ = boxes.detection_tensors(responses, lambda r: [(d, []) for d in r.object_detection.detections])
        return tensors

    def table(self, response: inference_pb2.InferResponse) -> str:
        rows = boxes.box_rows(response.object_detection.detections)
        return f"{len(rows)} detections\n" + text_table(boxes.HEADERS, rows)
