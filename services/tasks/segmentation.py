"""Instance segmentation: boxes with mask outlines, every part and hole, or an RLE mask."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout, TaskType, protos_shape, with_masks
from services.tasks import boxes
from services.tasks.base import COMMON_OUTPUTS, CliParameter, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.params import ResolvedParams
    from services.model_worker.processing.results import Detections

_DECODERS = "services.model_worker.processing.decoders"


def points_wire(polygon: np.ndarray, field: int = 2) -> bytes:
    """The serialized repeated Point field number ``field`` for an (N, 2) outline, to merge into a message.

    One ``points`` entry (field 2 of SegmentedInstance, or field 1 of Polygon: length-delimited) holds a
    Point: x (field 1, fixed32 float) and y (field 2, fixed32 float), 12 bytes on the wire. Encoding
    outlines with numpy is ~25x faster than building a Point message per vertex.
    """
    import numpy as np  # noqa: PLC0415 - the worker's

    wire = np.empty(len(polygon), np.dtype([("field", "u1"), ("length", "u1"), ("x_tag", "u1"), ("x", "<f4"),
                                            ("y_tag", "u1"), ("y", "<f4")]))
    wire["field"], wire["length"], wire["x_tag"], wire["y_tag"] = (field << 3) | 2, 10, 0x0D, 0x15
    wire["x"], wire["y"] = polygon[:, 0], polygon[:, 1]
    return wire.tobytes()


def add_instance(instances: Any, detection: inference_pb2.Detection, mask: Any, mask_format: Any, height: int,
                 width: int) -> inference_pb2.SegmentedInstance:
    """A SegmentedInstance for ``mask`` (an ``InstanceMask``) in the format asked for, added to ``instances``."""
    import numpy as np  # noqa: PLC0415

    from services.model_worker.processing.params import MaskFormat  # noqa: PLC0415

    inst = instances.add(detection=detection)
    inst.MergeFromString(points_wire(np.asarray(mask.polygon()).reshape(-1, 2)))
    if mask_format == MaskFormat.POLYGONS:
        for points, hole in mask.parts():
            inst.parts.add(hole=hole).MergeFromString(points_wire(points, field=1))
    elif mask_format == MaskFormat.RLE:
        inst.rle.height, inst.rle.width = height, width
        inst.rle.counts.extend(mask.rle(height, width).tolist())
    return inst


#: ``fleet infer --mask-format``: how masks come back (instance and promptable segmentation alike).
MASK_FORMAT = CliParameter("--mask-format", "mask_format", "segmentation: the largest outline (default), every part "
                           "and hole, or an RLE mask", choices=("outline", "polygons", "rle"), default="outline")


class InstanceSegmentation(Task):
    name = TaskType.INSTANCE_SEGMENTATION.value
    proto = model_pb2.TASK_TYPE_INSTANCE_SEGMENTATION
    result_field = "instance_segmentation"
    roboflow_task = "instance-segmentation"
    route = "instance_segmentation"
    oip_outputs = (*boxes.DETECTION_OUTPUTS, TensorSpec("polygons", "BYTES", (-1,)), *COMMON_OUTPUTS)
    summary = "boxes with instance masks"
    cli_parameters = (MASK_FORMAT,)
    layouts = (
        Layout("yolov8-seg", name, 2, "[4+nc+nm, N] boxes, scores, mask coefficients; [nm, H/4, W/4] prototypes",
               lambda p: [(with_masks(p, 4 + p.num_classes), None), protos_shape(p)],
               decoder=f"{_DECODERS}:yolov8_seg", prototypes=True),
        Layout("yolo-e2e-seg", name, 2,
               "[K, 6+nm]: x1, y1, x2, y2, score, class, mask coefficients; [nm, H/4, W/4] prototypes",
               lambda p: [(None, with_masks(p, 6)), protos_shape(p)], end_to_end=True,
               decoder=f"{_DECODERS}:e2e_seg", prototypes=True),
    )

    def present(self, result: Detections, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.InstanceSegmentationResult:
        out = inference_pb2.InstanceSegmentationResult()
        for det, mask in zip(boxes.detection_messages(result, spec.class_names), result.masks or []):
            add_instance(out.instances, det, mask, params.mask_format, height, width)
        return out

    def draw(self, img: np.ndarray, result: Detections, spec: ModelSpec) -> None:
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        from services.model_worker.visualize import colour  # noqa: PLC0415

        overlay = img.copy()
        for mask, cid in zip(result.masks or [], result.class_ids):
            h, w = mask.mask.shape
            region = overlay[mask.y0 : mask.y0 + h, mask.x0 : mask.x0 + w]
            region[mask.mask[: region.shape[0], : region.shape[1]]] = colour(int(cid))
        cv2.addWeighted(overlay, 0.4, img, 0.6, 0, dst=img)
        for mask, cid in zip(result.masks or [], result.class_ids):
            for points, _ in mask.parts():
                if len(points) >= 3:
                    cv2.polylines(img, [points.astype(np.int32)], True, colour(int(cid)), 1, cv2.LINE_AA)
        boxes.draw_boxes(img, result, spec.class_names)

    def summarize(self, result: Detections, spec: ModelSpec) -> Json:
        return boxes.summarize_detections(result, spec)

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        return {"predictions": [{**boxes.box_json(i.detection), "points": [{"x": p.x, "y": p.y} for p in i.points]}
                                for i in response.instance_segmentation.instances]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        tensors, rows = boxes.detection_tensors(responses, lambda r: [
            (i.detection, [(p.x, p.y) for p in i.points]) for i in r.instance_segmentation.instances])
        outlines = [json.dumps([[round(x, 2), round(y, 2)] for x, y in pts]).encode() for _, pts in rows]
        return [*tensors, Tensor("polygons", "BYTES", [len(rows)], outlines, text=True)]

    def table(self, response: inference_pb2.InferResponse) -> str:
        insts = response.instance_segmentation.instances
        rows = [row + [str(len(i.points)), str(len(i.parts)) if i.parts else "", "yes" if i.HasField("rle") else ""]
                for row, i in zip(boxes.box_rows(i.detection for i in insts), insts)]
        return f"{len(rows)} instances\n" + text_table(boxes.HEADERS + ["outline points", "parts", "rle"], rows)
