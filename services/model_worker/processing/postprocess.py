"""Raw model outputs of one image -> Detections or Classification.

Layouts (batch dimension removed), as Ultralytics exports them:

- ``yolov8``: ``[4 + nc, N]``: cx, cy, w, h in input pixels, then per-class scores.
- ``yolov5``: ``[N, 5 + nc]``: cx, cy, w, h, objectness, per-class probabilities.
- ``yolov8-seg``: ``[4 + nc + nm, N]`` plus prototypes ``[nm, H/4, W/4]``.
- ``yolov8-cls``: ``[nc]`` probabilities (sigmoid scores when the package is multi-label).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.common.errors import ModelLoadError
from services.common.model_spec import ModelSpec, TaskType
from services.model_worker.processing.masks import instance_masks
from services.model_worker.processing.nms import cxcywh_to_xyxy, nms, top_candidates
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.preprocess import Transform
from services.model_worker.processing.results import Classification, Detections

Shape = Sequence[int | str | None]


def expected_output_shapes(spec: ModelSpec, num_masks: int | None = None) -> list[tuple[int | None, ...]]:
    """Per-image output shapes the spec implies (None where any size is fine)."""
    nc = spec.num_classes
    if spec.model_type == "yolov8":
        return [(4 + nc, None)]
    if spec.model_type == "yolov5":
        return [(None, 5 + nc)]
    if spec.model_type == "yolov8-seg":
        nm = num_masks
        return [(4 + nc + nm if nm else None, None), (nm, spec.input.height // 4, spec.input.width // 4)]
    return [(nc,)]


def check_output_shapes(spec: ModelSpec, shapes: Sequence[Shape]) -> None:
    """Raise ModelLoadError unless per-image output shapes fit the declared model type.

    ``shapes`` exclude the batch dimension; symbolic dimensions (str/None) match anything.
    """
    num_masks = None
    if spec.model_type == "yolov8-seg" and len(shapes) == 2 and shapes[1] and isinstance(shapes[1][0], int):
        num_masks = shapes[1][0]
    expected = expected_output_shapes(spec, num_masks)
    problem = len(shapes) != len(expected)
    for got, want in zip(shapes, expected):
        if len(got) != len(want):
            problem = True
            continue
        for g, w in zip(got, want):
            if isinstance(g, int) and w is not None and g != w:
                problem = True
    if spec.model_type == "yolov8-seg" and num_masks is not None and isinstance(shapes[0][0], int):
        problem = problem or shapes[0][0] != 4 + spec.num_classes + num_masks
    if problem:
        raise ModelLoadError(
            f"model outputs {[list(s) for s in shapes]} (batch dimension removed) do not match model_type "
            f"{spec.model_type!r} with {spec.num_classes} classes, which expects {[list(e) for e in expected]} "
            "(None = any size); check model_type and class_names in model.json"
        )


def _restrict(scores: np.ndarray, params: ResolvedParams) -> np.ndarray:
    """Zero the scores of classes outside the class filter (scores: (N, nc))."""
    if params.allowed_class_ids is None:
        return scores
    masked = np.zeros_like(scores)
    masked[:, params.allowed_class_ids] = scores[:, params.allowed_class_ids]
    return masked


def _detect(
    boxes_cxcywh: np.ndarray, class_scores: np.ndarray, params: ResolvedParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best class per candidate, confidence filter, NMS: (kept indices, xyxy, scores, class ids)."""
    class_scores = _restrict(class_scores, params)
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(class_scores.shape[0]), class_ids]
    cand = top_candidates(scores, params.confidence, params.max_candidates)
    boxes = cxcywh_to_xyxy(boxes_cxcywh[cand])
    keep = nms(boxes, scores[cand], class_ids[cand], params.iou_threshold, params.max_detections,
               params.class_agnostic_nms)
    return cand[keep], boxes[keep], scores[cand][keep].astype(np.float32), class_ids[cand][keep].astype(np.int64)


def _yolov8(output: np.ndarray, spec: ModelSpec, transform: Transform, params: ResolvedParams) -> Detections:
    rows = output.T  # (N, 4 + nc)
    nc = spec.num_classes
    _, boxes, scores, class_ids = _detect(rows[:, :4], rows[:, 4 : 4 + nc], params)
    return Detections(transform.boxes_to_original(boxes), scores, class_ids)


def _yolov5(output: np.ndarray, spec: ModelSpec, transform: Transform, params: ResolvedParams) -> Detections:
    nc = spec.num_classes
    class_scores = output[:, 5 : 5 + nc] * output[:, 4:5]
    _, boxes, scores, class_ids = _detect(output[:, :4], class_scores, params)
    return Detections(transform.boxes_to_original(boxes), scores, class_ids)


def _yolov8_seg(
    output: np.ndarray, protos: np.ndarray, spec: ModelSpec, transform: Transform, params: ResolvedParams
) -> Detections:
    rows = output.T  # (N, 4 + nc + nm)
    nc = spec.num_classes
    kept, boxes, scores, class_ids = _detect(rows[:, :4], rows[:, 4 : 4 + nc], params)
    original = transform.boxes_to_original(boxes)
    coeffs = rows[kept, 4 + nc :]
    masks = instance_masks(coeffs, protos, original, transform, spec.input)
    return Detections(original, scores, class_ids, masks)


def _classify(output: np.ndarray, spec: ModelSpec, params: ResolvedParams) -> Classification:
    probs = output.reshape(-1)[: spec.num_classes].astype(np.float32)
    ids = np.arange(spec.num_classes) if params.allowed_class_ids is None else params.allowed_class_ids
    order = ids[np.argsort(-probs[ids], kind="stable")]
    predicted = np.zeros((0,), np.int64)
    if spec.multi_label:
        predicted = order[probs[order] >= params.confidence].astype(np.int64)
    return Classification(order.astype(np.int64), probs[order], spec.multi_label, predicted)


def postprocess(
    outputs: Sequence[np.ndarray], spec: ModelSpec, transform: Transform, params: ResolvedParams
) -> Detections | Classification:
    """Decode one image's raw outputs (batch dimension removed) into a result."""
    check_output_shapes(spec, [o.shape for o in outputs])
    if spec.task_type == TaskType.CLASSIFICATION:
        return _classify(outputs[0], spec, params)
    if spec.model_type == "yolov5":
        return _yolov5(outputs[0], spec, transform, params)
    if spec.model_type == "yolov8-seg":
        return _yolov8_seg(outputs[0], outputs[1], spec, transform, params)
    return _yolov8(outputs[0], spec, transform, params)
