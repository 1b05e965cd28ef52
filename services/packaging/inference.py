"""Decide a model package from an export: layout, classes, input size, batch, keypoints, defaults.

Nothing is guessed silently: when the export does not say (no class names, a dynamic size without
``imgsz``, outputs that fit several layouts or none) the package is refused with what to pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.errors import ModelPackageError
from services.common.layouts import LAYOUTS, Layout, LayoutParams, TaskType
from services.tasks import registry as _tasks  # noqa: F401 - registers every task's layouts in LAYOUTS
from services.packaging.exports import ExportInfo

#: Ultralytics' ``task`` metadata -> our task.
ULTRALYTICS_TASKS = {
    "detect": TaskType.OBJECT_DETECTION, "segment": TaskType.INSTANCE_SEGMENTATION,
    "classify": TaskType.CLASSIFICATION, "pose": TaskType.KEYPOINT_DETECTION, "obb": TaskType.ORIENTED_DETECTION,
}
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
DEFAULT_MAX_BATCH = 16


@dataclass(frozen=True)
class Overrides:
    """What the user told ``fleet package`` (None: read it from the export)."""

    name: str | None = None
    task: TaskType | None = None
    model_type: str | None = None
    class_names: tuple[str, ...] | None = None
    imgsz: tuple[int, int] | None = None  # height, width
    max_batch_size: int | None = None


def _names(info: ExportInfo, given: tuple[str, ...] | None) -> tuple[str, ...]:
    if given:
        return given
    names = info.parsed.get("names")
    if isinstance(names, dict) and names and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise ModelPackageError(f"the export's names have gaps in their class indices: {sorted(names)}")
        return tuple(str(names[i]) for i in range(len(names)))
    if isinstance(names, list | tuple) and names:
        return tuple(str(n) for n in names)
    raise ModelPackageError("the export records no class names (Ultralytics and YOLOv5 write `names` into the "
                            "ONNX metadata); pass --names with one name per class, in class-index order")


def _size(info: ExportInfo, given: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width): the static input shape, else the export's imgsz, else --imgsz; all must agree."""
    shape = info.inputs[0].shape
    static = (shape[2], shape[3]) if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]) else None
    recorded = info.parsed.get("imgsz")
    if isinstance(recorded, int):
        recorded = (recorded, recorded)
    recorded = tuple(recorded) if isinstance(recorded, list | tuple) and len(recorded) == 2 else None
    for a, b, what in ((static, recorded, "the export's imgsz"), (static, given, "--imgsz"),
                       (recorded, given, "--imgsz")):
        if a and b and tuple(a) != tuple(b):
            raise ModelPackageError(f"the input size {list(a)} (height, width) disagrees with {what} {list(b)}")
    size = static or recorded or given
    if size is None:
        raise ModelPackageError("the input size is dynamic and the export records no imgsz; pass --imgsz "
                                "HEIGHT,WIDTH with the size it was trained and exported at")
    return int(size[0]), int(size[1])


def _keypoints(info: ExportInfo, class_names: tuple[str, ...]) -> dict[str, Any] | None:
    shape = info.parsed.get("kpt_shape")
    if not (isinstance(shape, list | tuple) and len(shape) == 2 and shape[1] in (2, 3)):
        return None
    count, dims = int(shape[0]), int(shape[1])
    if count == len(COCO_KEYPOINTS) and class_names == ("person",):
        return {"names": list(COCO_KEYPOINTS), "skeleton": [list(e) for e in COCO_SKELETON], "dims": dims}
    return {"names": [f"keypoint-{i}" for i in range(count)], "skeleton": [], "dims": dims}


def _candidates(info: ExportInfo, task: TaskType | None, model_type: str | None) -> list[Layout]:
    if model_type is not None:
        if model_type not in LAYOUTS:
            raise ModelPackageError(f"--model-type {model_type!r} is not one of {sorted(LAYOUTS)}")
        return [LAYOUTS[model_type]]
    layouts = [lay for lay in LAYOUTS.values() if task is None or lay.task == task]
    if info.ultralytics:
        layouts = [lay for lay in layouts if lay.name != "yolov5"]  # Ultralytics writes v8 layouts
    end2end = info.parsed.get("end2end")
    if isinstance(end2end, bool):
        layouts = [lay for lay in layouts if lay.end_to_end == end2end]
    return layouts


def _certainty(layout: Layout, params: LayoutParams, shapes: list[tuple]) -> int:
    """How many output sizes are known and equal to a size the layout requires."""
    if layout.prototypes and isinstance(shapes[1][0], int):
        params = LayoutParams(**{**params.__dict__, "num_masks": shapes[1][0]})
    return sum(isinstance(g, int) and g == w for got, want in zip(shapes, layout.expected(params))
               for g, w in zip(got, want))


def _layout(info: ExportInfo, params: LayoutParams, task: TaskType | None, model_type: str | None) -> Layout:
    shapes = [o.per_image for o in info.outputs]
    fitting: list = []
    for layout in _candidates(info, task, model_type):
        if layout.task == TaskType.KEYPOINT_DETECTION and not params.num_keypoints:
            continue  # without kpt_shape a keypoint layout cannot be told from a detection one
        used = shapes[: layout.outputs]
        kp = params if layout.task == TaskType.KEYPOINT_DETECTION else LayoutParams(**{
            **params.__dict__, "num_keypoints": 0})
        if len(used) == layout.outputs and layout.check(kp, used) is None:
            fitting.append((_certainty(layout, kp, used), layout))
    if fitting:  # a symbolic size fits anything: prefer the layouts that fit more known sizes
        best = max(score for score, _ in fitting)
        fitting = [lay for score, lay in fitting if score == best]
    described = ", ".join(f"{o.name} {list(o.shape)}" for o in info.outputs)
    if not fitting:
        hint = f"the model type {model_type!r}" if model_type else "any supported layout"
        raise ModelPackageError(
            f"the outputs ({described}) with {params.num_classes} classes do not fit {hint}; supported: "
            + "; ".join(f"{lay.name} {lay.summary}" for lay in LAYOUTS.values()))
    if len(fitting) > 1:
        raise ModelPackageError(
            f"the outputs ({described}) fit several layouts: {[lay.name for lay in fitting]}; the export does "
            "not say which (no Ultralytics task metadata); pass --model-type")
    return fitting[0]


def describe(info: ExportInfo, overrides: Overrides) -> dict[str, Any]:
    """The model.json document (without ``weights``) for an export."""
    if len(info.inputs) != 1 or len(info.inputs[0].shape) != 4 or info.inputs[0].shape[1] not in (3, None):
        shapes = [list(i.shape) for i in info.inputs]
        raise ModelPackageError(f"a vision model needs one input [batch, 3, height, width]; this one has {shapes}")
    task = overrides.task or ULTRALYTICS_TASKS.get(str(info.metadata.get("task", "")))
    names = _names(info, overrides.class_names)
    height, width = _size(info, overrides.imgsz)
    keypoints = _keypoints(info, names)
    params = LayoutParams(len(names), width, height, len(keypoints["names"]) if keypoints else 0,
                          keypoints["dims"] if keypoints else 3)
    layout = _layout(info, params, task, overrides.model_type)
    if layout.task == TaskType.KEYPOINT_DETECTION and keypoints is None:
        raise ModelPackageError("a keypoint model needs the export's kpt_shape metadata ([points, 2 or 3])")
    batch = info.inputs[0].shape[0]
    fixed = batch if isinstance(batch, int) else None
    max_batch = overrides.max_batch_size or fixed or DEFAULT_MAX_BATCH
    if fixed and max_batch > fixed:
        raise ModelPackageError(f"the export has a fixed batch of {fixed}; --max-batch-size {max_batch} cannot exceed it")
    ultralytics = info.ultralytics
    classify = layout.task == TaskType.CLASSIFICATION
    document: dict[str, Any] = {
        "format_version": 1,
        "name": overrides.name or info.path.stem,
        "task_type": layout.task,
        "model_type": layout.name,
        "class_names": list(names),
        "input": {"name": info.inputs[0].name, "width": width, "height": height,
                  "resize_mode": "center-crop" if classify and ultralytics else "letterbox" if not classify
                  else "stretch", "interpolation": "linear", "anchor": "center", "color_order": "rgb",
                  "pad_value": 114, "scale": 1.0 / 255.0, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
        "outputs": [o.name for o in info.outputs[: layout.outputs]],
        "batch": {"max_batch_size": max_batch},
        # Ultralytics' predict defaults (conf 0.25, iou 0.7, max_det 300); YOLOv5's detect.py uses iou 0.45.
        "defaults": {"confidence": 0.25, "iou_threshold": 0.45 if layout.name == "yolov5" else 0.7,
                     "max_detections": 300},
        "provenance": {"source": info.path.name, "exporter": info.producer,
                       "metadata": {k: v for k, v in info.metadata.items() if k != "names"}},
    }
    if keypoints is not None and layout.task == TaskType.KEYPOINT_DETECTION:
        document["keypoints"] = keypoints
    return document
