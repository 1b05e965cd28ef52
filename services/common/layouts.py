"""Output layouts (``model_type``): what each one serves and which ONNX outputs it expects.

The facts every part of the fleet shares: ``model.json`` validation (``model_spec``), the worker's
load-time check, and ``fleet package``, which infers a layout from an export's output shapes.
How each layout is decoded and presented lives in the worker (``services.model_worker.model_types``),
keyed by the same names. Shapes exclude the batch dimension; ``None`` matches any size.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Shape = Sequence[int | str | None]
Expected = list[tuple[int | None, ...]]


class TaskType(str, enum.Enum):
    OBJECT_DETECTION = "object-detection"
    INSTANCE_SEGMENTATION = "instance-segmentation"
    CLASSIFICATION = "classification"
    KEYPOINT_DETECTION = "keypoint-detection"
    ORIENTED_DETECTION = "oriented-detection"


@dataclass(frozen=True)
class LayoutParams:
    """What the expected shapes depend on."""

    num_classes: int
    width: int
    height: int
    num_keypoints: int = 0
    keypoint_dims: int = 3
    num_masks: int | None = None  # from the prototypes' shape; None: not known yet


@dataclass(frozen=True)
class Layout:
    name: str
    task: TaskType
    outputs: int
    summary: str
    expected: Callable[[LayoutParams], Expected]
    end_to_end: bool = False  # NMS done inside the model: [K, 6 + extra] rows

    def check(self, params: LayoutParams, shapes: Sequence[Shape]) -> str | None:
        """None when ``shapes`` fit this layout, else what was expected (for an error message)."""
        if self.task == TaskType.INSTANCE_SEGMENTATION and len(shapes) == 2 and shapes[1]:
            first = shapes[1][0]
            params = LayoutParams(**{**params.__dict__, "num_masks": first if isinstance(first, int) else None})
        expected = self.expected(params)
        fits = len(shapes) == len(expected) and all(
            len(got) == len(want) and all(not isinstance(g, int) or w is None or g == w for g, w in zip(got, want))
            for got, want in zip(shapes, expected)
        )
        return None if fits else str([list(e) for e in expected])


def _protos(p: LayoutParams) -> tuple[int | None, ...]:
    return (p.num_masks, p.height // 4, p.width // 4)


def _masks(p: LayoutParams, base: int) -> int | None:
    return base + p.num_masks if p.num_masks else None


def _kpt(p: LayoutParams) -> int:
    return p.num_keypoints * p.keypoint_dims


_LAYOUTS = (
    Layout("yolov8", TaskType.OBJECT_DETECTION, 1, "[4+nc, N]: cx, cy, w, h, class scores",
           lambda p: [(4 + p.num_classes, None)]),
    Layout("yolov5", TaskType.OBJECT_DETECTION, 1, "[N, 5+nc]: cx, cy, w, h, objectness, class probabilities",
           lambda p: [(None, 5 + p.num_classes)]),
    Layout("yolov8-seg", TaskType.INSTANCE_SEGMENTATION, 2,
           "[4+nc+nm, N] boxes, scores, mask coefficients; [nm, H/4, W/4] prototypes",
           lambda p: [(_masks(p, 4 + p.num_classes), None), _protos(p)]),
    Layout("yolov8-cls", TaskType.CLASSIFICATION, 1, "[nc]: class probabilities", lambda p: [(p.num_classes,)]),
    Layout("yolov8-pose", TaskType.KEYPOINT_DETECTION, 1,
           "[4+nc+K*D, N]: cx, cy, w, h, class scores, then x, y (, visibility) per keypoint",
           lambda p: [(4 + p.num_classes + _kpt(p), None)]),
    Layout("yolov8-obb", TaskType.ORIENTED_DETECTION, 1, "[4+nc+1, N]: cx, cy, w, h, class scores, angle (radians)",
           lambda p: [(4 + p.num_classes + 1, None)]),
    Layout("yolo-e2e", TaskType.OBJECT_DETECTION, 1, "[K, 6]: x1, y1, x2, y2, score, class (NMS-free)",
           lambda p: [(None, 6)], end_to_end=True),
    Layout("yolo-e2e-seg", TaskType.INSTANCE_SEGMENTATION, 2,
           "[K, 6+nm]: x1, y1, x2, y2, score, class, mask coefficients; [nm, H/4, W/4] prototypes",
           lambda p: [(None, _masks(p, 6)), _protos(p)], end_to_end=True),
    Layout("yolo-e2e-pose", TaskType.KEYPOINT_DETECTION, 1,
           "[K, 6+K*D]: x1, y1, x2, y2, score, class, then x, y (, visibility) per keypoint",
           lambda p: [(None, 6 + _kpt(p))], end_to_end=True),
    Layout("yolo-e2e-obb", TaskType.ORIENTED_DETECTION, 1, "[K, 7]: cx, cy, w, h, score, class, angle (radians)",
           lambda p: [(None, 7)], end_to_end=True),
)
LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in _LAYOUTS}
