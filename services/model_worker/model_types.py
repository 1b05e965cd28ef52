"""The one registry of model types: for each ``model_type``, its layout (task, expected outputs),
how its raw outputs decode and how its result is presented (protobuf, drawing, inference log).

Adding a layout means one ``services.common.layouts.Layout``, one decoder and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from services.common.layouts import LAYOUTS, Layout, TaskType
from services.common.model_checks import check_output_shapes
from services.common.model_spec import ModelSpec
from services.model_worker.presenters import Presenter, Result
from services.model_worker.presenters.boxes import DetectionPresenter
from services.model_worker.presenters.classification import ClassificationPresenter
from services.model_worker.presenters.keypoints import KeypointPresenter
from services.model_worker.presenters.oriented import OrientedPresenter
from services.model_worker.presenters.segmentation import SegmentationPresenter
from services.model_worker.processing import decoders
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.preprocess import Transform

Decode = Callable[[Sequence[np.ndarray], ModelSpec, Transform, ResolvedParams], Result]

PRESENTERS: dict[TaskType, Presenter] = {
    TaskType.OBJECT_DETECTION: DetectionPresenter(),
    TaskType.INSTANCE_SEGMENTATION: SegmentationPresenter(),
    TaskType.CLASSIFICATION: ClassificationPresenter(),
    TaskType.KEYPOINT_DETECTION: KeypointPresenter(),
    TaskType.ORIENTED_DETECTION: OrientedPresenter(),
}


@dataclass(frozen=True)
class ModelType:
    layout: Layout
    decode: Decode

    @property
    def presenter(self) -> Presenter:
        return PRESENTERS[self.layout.task]


_DECODERS: dict[str, Decode] = {
    "yolov8": decoders.yolov8,
    "yolov5": decoders.yolov5,
    "yolov8-seg": decoders.yolov8_seg,
    "yolov8-cls": decoders.classify,
    "yolov8-pose": decoders.yolov8_pose,
    "yolov8-obb": decoders.yolov8_obb,
    "yolo-e2e": decoders.e2e,
    "yolo-e2e-seg": decoders.e2e_seg,
    "yolo-e2e-pose": decoders.e2e_pose,
    "yolo-e2e-obb": decoders.e2e_obb,
}
if set(_DECODERS) != set(LAYOUTS):  # pragma: no cover - a developer's mistake, caught at import
    raise RuntimeError(f"decoders {sorted(_DECODERS)} and layouts {sorted(LAYOUTS)} disagree")
MODEL_TYPES: dict[str, ModelType] = {name: ModelType(LAYOUTS[name], decode) for name, decode in _DECODERS.items()}


def model_type(spec: ModelSpec) -> ModelType:
    return MODEL_TYPES[spec.model_type]
