"""What the box-based tasks share: boxes as messages, drawings, Roboflow JSON, OIP tensors and table rows, and
the options the edges offer for them (non-maximum suppression's and the class filter).

Detection, instance segmentation, keypoints and oriented boxes all answer boxes with classes; each of
their modules adds its own part to these.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2
from services.tasks.base import CliParameter, Json, OipParameter, TensorSpec

if TYPE_CHECKING:
    import numpy as np

    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.results import Detections

DETECTION_OUTPUTS = (TensorSpec("boxes", "FP32", (-1, 4)), TensorSpec("scores", "FP32", (-1,)),
                     TensorSpec("class_ids", "INT32", (-1,)), TensorSpec("class_names", "BYTES", (-1,)),
                     TensorSpec("batch_index", "INT32", (-1,)))
HEADERS = ["class", "confidence", "x", "y", "width", "height"]

# ---- the options: fleet infer's flags, OIP's request parameters ---------------------------------------------------
# Each is one InferenceParameters field, honoured by every box task (and the class filter by classification too);
# object detection, registered first, declares them for the family (an edge offers each once, whoever declares it).

#: ``fleet infer``'s flags, in the order its help lists them.
NMS_FLAGS = (
    CliParameter("--iou", "iou_threshold", "NMS IoU threshold", type=float, metavar="IOU"),
    CliParameter("--max-detections", "max_detections", None, type=int),
    CliParameter("--class", "class_filter", "keep only this class (repeatable)", action="append"),
    CliParameter("--agnostic", "class_agnostic_nms", "class-agnostic NMS (default: the model's)",
                 action="store_const", const=True),
)
#: OIP request parameters, in the order an answer to an unknown one lists them.
NMS_PARAMETERS = (OipParameter("iou_threshold", "number"), OipParameter("max_detections", "whole"),
                  OipParameter("max_candidates", "whole"), OipParameter("class_filter", "names"),
                  OipParameter("class_agnostic_nms", "bool"))

# ---- the worker --------------------------------------------------------------------------------------


def detection_messages(result: Detections, names: tuple[str, ...]) -> list[inference_pb2.Detection]:
    out = []
    for (x0, y0, x1, y1), score, cid in zip(result.boxes_xyxy.tolist(), result.scores.tolist(),
                                            result.class_ids.tolist()):
        out.append(inference_pb2.Detection(
            x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0, confidence=score,
            class_name=names[cid], class_id=cid, detection_id=str(uuid.uuid4()),
        ))
    return out


def draw_boxes(img: np.ndarray, result: Detections, names: tuple[str, ...], boxes: bool = True) -> None:
    """Class labels at each box's corner, and the boxes themselves unless ``boxes`` is false."""
    import cv2  # noqa: PLC0415 - the worker's

    from services.model_worker.visualize import colour, label  # noqa: PLC0415

    for box, score, cid in zip(result.boxes_xyxy, result.scores, result.class_ids):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if boxes:
            cv2.rectangle(img, (x0, y0), (x1, y1), colour(int(cid)), 2)
        label(img, f"{names[cid]} {score:.2f}", x0, y0, colour(int(cid)))


def summarize_detections(result: Detections, spec: ModelSpec) -> dict[str, Any]:
    return {"detections": len(result),
            "classes": sorted({spec.class_names[c] for c in result.class_ids.tolist()})}


# ---- Roboflow JSON -----------------------------------------------------------------------------------


def box_json(d: inference_pb2.Detection) -> Json:
    return {"x": d.x, "y": d.y, "width": d.width, "height": d.height, "confidence": d.confidence,
            "class": d.class_name, "class_id": d.class_id, "detection_id": d.detection_id}


# ---- OIP ---------------------------------------------------------------------------------------------
Points = list[tuple[float, ...]]
Row = tuple[inference_pb2.Detection, Points]  # a box and the task's points (outline, keypoints, corners)


def detection_tensors(responses: Sequence[inference_pb2.InferResponse],
                      rows_of: Callable[[inference_pb2.InferResponse], Iterable[Row]]) -> tuple[list[Tensor], list[Row]]:
    """The detection tensors over every response's rows (``batch_index`` says whose), and the rows."""
    import numpy as np  # noqa: PLC0415 - the gateway's

    from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

    indexed = [(b, row) for b, r in enumerate(responses) for row in rows_of(r)]
    rows = [row for _, row in indexed]
    n = len(rows)
    boxes = np.array([[d.x - d.width / 2, d.y - d.height / 2, d.x + d.width / 2, d.y + d.height / 2]
                      for d, _ in rows], np.float32).reshape(n, 4)
    tensors = [
        Tensor("boxes", "FP32", [n, 4], boxes),
        Tensor("scores", "FP32", [n], np.array([d.confidence for d, _ in rows], np.float32)),
        Tensor("class_ids", "INT32", [n], np.array([d.class_id for d, _ in rows], np.int32)),
        Tensor("class_names", "BYTES", [n], [d.class_name.encode() for d, _ in rows], text=True),
        Tensor("batch_index", "INT32", [n], np.array([b for b, _ in indexed], np.int32)),
    ]
    return tensors, rows


# ---- the CLI -----------------------------------------------------------------------------------------


def box_rows(detections: Iterable[inference_pb2.Detection]) -> list[list[str]]:
    return [[d.class_name, f"{d.confidence:.3f}", f"{d.x:.1f}", f"{d.y:.1f}", f"{d.width:.1f}", f"{d.height:.1f}"]
            for d in detections]
